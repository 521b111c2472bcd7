"""Network in Network (Lin, Chen and Yan, 2013): 1x1 convolutions and global average pooling.

A NiN block is one ordinary convolution followed by two 1x1 convolutions, all with ReLU: the
1x1 convolutions are a small fully connected network applied at every pixel. The network ends
without fully connected layers: its last block outputs one map per class, and global average
pooling turns each map into that class's score.

Every layer names its ``in_channels`` / ``in_features`` (the book's d2l-en 1.0 code uses lazy
layers, which learn them at the first forward pass), so the parameter count is known before any
input is seen.
"""

from __future__ import annotations

from torch import nn

from . import register


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    """A convolution, then two 1x1 convolutions (a per-pixel MLP), each followed by ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )


def nin(in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5) -> nn.Sequential:
    """The book's NiN: AlexNet-like block sizes, a class map per class, global average pooling."""
    return nn.Sequential(
        nin_block(in_channels, 96, kernel_size=11, stride=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, stride=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, stride=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout),
        nin_block(384, num_classes, kernel_size=3, stride=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )


@register("nin", "fashion", input_shape=(1, 1, 224, 224), reference_params=1_992_166,
          book={"batch_size": 128, "lr": 0.1, "resize": 224, "epochs": 10})
def nin_fashion(dropout: float = 0.5) -> nn.Sequential:
    """The book's NiN for 1-channel 224x224 Fashion-MNIST and 10 classes."""
    return nin(1, 10, dropout)


@register("nin", "paper", input_shape=(1, 3, 224, 224), reference_params=7_439_608)
def nin_paper() -> nn.Sequential:
    """The book's NiN design at ImageNet size (3 channels, 1,000 classes).

    Neither the paper (which reports CIFAR, SVHN and MNIST results) nor torchvision gives an
    ImageNet parameter count for this design; the pinned count is ours.
    """
    return nin(3, 1000)
