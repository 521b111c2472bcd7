"""DenseNet (Huang, Liu, van der Maaten and Weinberger, 2017): every layer sees all earlier maps.

A ResNet block *adds* its input to what it computes; a dense block *concatenates* it. Layer i of a
dense block receives the input and the maps of layers 1..i-1 stacked along the channels, and
adds ``growth_rate`` new channels of its own. Features are computed once and reused by every
later layer, so each layer can be thin (the book's: 32 channels) and the whole network small:
the book's DenseNet has 758,226 parameters, ResNet-18 11 million.

The channels grow linearly through a block (64 -> 64 + 4 * 32 = 192 in the book's first block),
so between blocks a *transition layer* (BatchNorm, ReLU, 1x1 convolution, 2x2 average pooling)
halves both the channels and the map.

Two layer kinds, as in the paper:

* the plain dense layer (the book's): BatchNorm, ReLU, 3x3 convolution, "pre-activation" order;
* DenseNet-B (DenseNet-121 and the other ImageNet models): a 1x1 convolution to
  ``bottleneck * growth_rate`` channels first, so that the 3x3 convolution never sees the
  hundreds of concatenated channels directly.

The price of concatenation is memory: a naive implementation stores every concatenated input
for the backward pass, so a block's stored activations grow with the square of its depth (the
DenseNet lesson measures it).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register
from .resnet import stem


def dense_layer(in_channels: int, growth_rate: int, bottleneck: int | None = None,
                bias: bool = True) -> nn.Sequential:
    """One layer of a dense block: ``in_channels`` in, ``growth_rate`` new channels out.

    Pre-activation order (BatchNorm, ReLU, convolution), as in the paper. With ``bottleneck``
    (DenseNet-B) a 1x1 convolution first narrows the input to ``bottleneck * growth_rate``
    channels. ``bias``: the book's convolutions have biases; the paper's do not.
    """
    layers = OrderedDict()
    channels = in_channels
    if bottleneck:
        layers.update(norm1=nn.BatchNorm2d(channels), relu1=nn.ReLU(),
                      conv1=nn.Conv2d(channels, bottleneck * growth_rate, 1, bias=bias))
        channels = bottleneck * growth_rate
        layers.update(norm2=nn.BatchNorm2d(channels), relu2=nn.ReLU(),
                      conv2=nn.Conv2d(channels, growth_rate, 3, padding=1, bias=bias))
    else:
        layers.update(norm=nn.BatchNorm2d(channels), relu=nn.ReLU(),
                      conv=nn.Conv2d(channels, growth_rate, 3, padding=1, bias=bias))
    return nn.Sequential(layers)


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; each one's output is concatenated to its input.

    The block outputs ``in_channels + num_layers * growth_rate`` channels at the input's size.
    Its layers are named ``layer1``, ``layer2``, ... ("dense2.layer3.conv" is the convolution of
    the third layer of the second block).
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bottleneck: int | None = None,
                 bias: bool = True):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"layer{i + 1}", dense_layer(in_channels + i * growth_rate, growth_rate,
                                                         bottleneck, bias))
        self.in_channels, self.growth_rate = in_channels, growth_rate
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat([x, layer(x)], dim=1)   # keep everything, add growth_rate channels
        return x


def transition(in_channels: int, out_channels: int, bias: bool = True) -> nn.Sequential:
    """Between dense blocks: BatchNorm, ReLU, a 1x1 convolution to ``out_channels``, 2x2 average pool."""
    return nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(in_channels), relu=nn.ReLU(),
                                     conv=nn.Conv2d(in_channels, out_channels, 1, bias=bias),
                                     pool=nn.AvgPool2d(2, stride=2)))


def densenet(layers_per_block: tuple[int, ...], growth_rate: int = 32, in_channels: int = 1,
             stem_channels: int = 64, num_classes: int = 10, bottleneck: int | None = None,
             compression: float = 0.5, bias: bool = True) -> nn.Sequential:
    """A DenseNet: ResNet's 7x7 stem, dense blocks with transitions between them, a classifier.

    Each transition keeps ``compression`` of the channels (the paper's DenseNet-BC: 0.5, which
    the book uses too). Named: ``b1`` (the stem), ``dense1``, ``trans1``, ``dense2``, ...,
    then ``norm``, ``relu``, ``pool``, ``flatten``, ``fc``.
    """
    parts = OrderedDict(b1=stem(in_channels, bias))
    channels = stem_channels
    for i, n in enumerate(layers_per_block, start=1):
        block = DenseBlock(n, channels, growth_rate, bottleneck, bias)
        parts[f"dense{i}"] = block
        channels = block.out_channels
        if i < len(layers_per_block):
            parts[f"trans{i}"] = transition(channels, int(channels * compression), bias)
            channels = int(channels * compression)
    parts.update(norm=nn.BatchNorm2d(channels), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d((1, 1)),
                 flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
    return nn.Sequential(parts)


@register("densenet", "fashion", input_shape=(1, 1, 96, 96), reference_params=758_226,
          book={"batch_size": 256, "lr": 0.1, "resize": 96, "epochs": 10}, modern={"lr": 0.1})
def densenet_fashion() -> nn.Sequential:
    """The book's DenseNet for 1-channel 96x96 Fashion-MNIST: 64 stem channels, growth 32, 4-4-4-4 layers."""
    return densenet((4, 4, 4, 4), growth_rate=32)


@register("densenet121", "paper", input_shape=(1, 3, 224, 224), reference_params=7_978_856)
def densenet121_paper() -> nn.Sequential:
    """DenseNet-121 (DenseNet-BC, growth 32, 6-12-24-16 layers, 1x1 bottlenecks of 4 x 32 channels).

    Bias-free convolutions; 7,978,856 parameters, as torchvision's ``densenet121``. 121 = the
    stem convolution + 2 convolutions in each of 58 dense layers + 3 transitions + the classifier.
    """
    return densenet((6, 12, 24, 16), growth_rate=32, in_channels=3, num_classes=1000, bottleneck=4, bias=False)
