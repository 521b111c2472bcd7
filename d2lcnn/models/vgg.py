"""VGG (Simonyan and Zisserman, 2014): a network designed as a list of identical blocks.

A VGG block is a few 3x3 convolutions (padding 1, so the map keeps its size), each followed by
ReLU, then a 2x2 max pool that halves the map. A network is a list of (number of convolutions,
output channels) pairs, one per block, and three fully connected layers. VGG-11 and VGG-16 differ
only in that list.

Every layer names its ``in_channels`` (the book's d2l-en 1.0 code uses ``LazyConv2d`` and
``LazyLinear``, which learn them at the first forward pass), so the parameter count is known
before any input is seen.
"""

from __future__ import annotations

from torch import nn

from . import register

VGG11 = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
VGG16 = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions with ReLU, then a 2x2 max pool: size halves, channels set."""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(conv_arch, in_channels: int = 1, num_classes: int = 10, hidden: int = 4096,
        dropout: float = 0.5, adaptive_pool: bool = False) -> nn.Sequential:
    """A VGG network from ``conv_arch``, a sequence of (num_convs, out_channels) per block.

    After five blocks a 224x224 image is a 7x7 map. ``adaptive_pool`` adds torchvision's
    ``AdaptiveAvgPool2d((7, 7))`` so that other input sizes also fit the classifier.
    """
    blocks = []
    for num_convs, out_channels in conv_arch:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    pool = [nn.AdaptiveAvgPool2d((7, 7))] if adaptive_pool else []
    return nn.Sequential(
        *blocks, *pool, nn.Flatten(),
        nn.Linear(in_channels * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def narrow(conv_arch, ratio: int):
    """The same architecture with every channel count divided by ``ratio`` (the book uses 4)."""
    return tuple((num_convs, channels // ratio) for num_convs, channels in conv_arch)


@register("vgg11", "fashion", input_shape=(1, 1, 224, 224), reference_params=43_093_322,
          book={"batch_size": 128, "lr": 0.05, "resize": 224, "epochs": 10})
def vgg11(ratio: int = 4, conv_arch=VGG11, adaptive_pool: bool = False) -> nn.Sequential:
    """The book's VGG-11 with channels divided by ``ratio`` (4), 1-channel 224x224, 10 classes.

    ``ratio=1`` is full-width VGG-11 on 224x224x1: 128,806,154 parameters, three times the
    book's 43,093,322; 102,764,544 of them are the first fully connected layer's
    (512 * 7 * 7 * 4096 + 4096). Any other ``conv_arch`` (e.g. ``VGG16``) narrows the same way.
    ``adaptive_pool`` lets other image sizes fit (lesson 04's CPU setting trains at 64x64).
    """
    return vgg(narrow(conv_arch, ratio), adaptive_pool=adaptive_pool)


@register("vgg11", "paper", input_shape=(1, 3, 224, 224), reference_params=132_863_336)
def vgg11_paper() -> nn.Sequential:
    """VGG-11 (configuration A of the paper), as torchvision builds it: 132,863,336 parameters."""
    return vgg(VGG11, in_channels=3, num_classes=1000, adaptive_pool=True)


@register("vgg16", "paper", input_shape=(1, 3, 224, 224), reference_params=138_357_544)
def vgg16_paper() -> nn.Sequential:
    """VGG-16 (configuration D of the paper), as torchvision builds it: 138,357,544 parameters."""
    return vgg(VGG16, in_channels=3, num_classes=1000, adaptive_pool=True)
