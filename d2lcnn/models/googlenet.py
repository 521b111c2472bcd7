"""GoogLeNet / Inception v1 (Szegedy et al., 2014): parallel branches joined by concatenation.

An Inception block looks at its input through four branches at once: a 1x1 convolution, a 3x3
and a 5x5 convolution (each after a 1x1 "bottleneck" that cuts the channels first), and a 3x3
max pool followed by a 1x1 convolution. Their outputs are stacked along the channels. The 1x1
bottlenecks are what keep the block cheap.

Every layer names its ``in_channels`` / ``in_features`` (the book's d2l-en 1.0 code uses lazy
layers, which learn them at the first forward pass), so the parameter count is known before any
input is seen.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Sequential:
    """A convolution followed by ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs), nn.ReLU())


class Inception(nn.Module):
    """Four parallel branches whose outputs are concatenated along the channels.

    Args:
        c1: channels of the 1x1 branch.
        c2: (bottleneck, output) channels of the 3x3 branch.
        c3: (bottleneck, output) channels of the 5x5 branch.
        c4: channels of the 1x1 convolution after the 3x3 max pool.
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int):
        super().__init__()
        self.branch1 = conv_relu(in_channels, c1, 1)
        self.branch2 = nn.Sequential(conv_relu(in_channels, c2[0], 1), conv_relu(c2[0], c2[1], 3, padding=1))
        self.branch3 = nn.Sequential(conv_relu(in_channels, c3[0], 1), conv_relu(c3[0], c3[1], 5, padding=2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv_relu(in_channels, c4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def googlenet(in_channels: int = 1, num_classes: int = 10, dropout: float = 0.0) -> nn.Sequential:
    """The five stages b1..b5 of GoogLeNet, then global average pooling and one linear layer.

    The stages are named as in the book, so layers read "b3.0.branch2" (stage b3, its first
    Inception block, the 3x3 branch).
    """
    b1 = nn.Sequential(conv_relu(in_channels, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, stride=2, padding=1))
    b2 = nn.Sequential(conv_relu(64, 64, 1), conv_relu(64, 192, 3, padding=1), nn.MaxPool2d(3, stride=2, padding=1))
    b3 = nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32),
                       Inception(256, 128, (128, 192), (32, 96), 64),
                       nn.MaxPool2d(3, stride=2, padding=1))
    b4 = nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64),
                       Inception(512, 160, (112, 224), (24, 64), 64),
                       Inception(512, 128, (128, 256), (24, 64), 64),
                       Inception(512, 112, (144, 288), (32, 64), 64),
                       Inception(528, 256, (160, 320), (32, 128), 128),
                       nn.MaxPool2d(3, stride=2, padding=1))
    b5 = nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128),
                       Inception(832, 384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    head = {"dropout": nn.Dropout(dropout)} if dropout else {}
    return nn.Sequential(OrderedDict(b1=b1, b2=b2, b3=b3, b4=b4, b5=b5, **head, fc=nn.Linear(1024, num_classes)))


@register("googlenet", "fashion", input_shape=(1, 1, 96, 96), reference_params=5_977_530,
          book={"batch_size": 128, "lr": 0.1, "resize": 96, "epochs": 10})
def googlenet_fashion() -> nn.Sequential:
    """The book's GoogLeNet for 1-channel 96x96 Fashion-MNIST and 10 classes."""
    return googlenet(1, 10)


@register("googlenet", "paper", input_shape=(1, 3, 224, 224), reference_params=6_998_552)
def googlenet_paper() -> nn.Sequential:
    """GoogLeNet as in the paper, without its two auxiliary classifiers: 5x5 branches, no
    BatchNorm, dropout 0.4 before the classifier. The paper's two local response normalisations
    (after the stem's first convolution and before its second pool) are left out: they have no
    parameters, so the count is the same, and later networks dropped them as unhelpful.

    Our count is 6,998,552; torchvision's ``googlenet`` (no aux) has 6,624,904. Its "5x5"
    branches use 3x3 convolutions (a long-standing quirk it keeps for its pretrained weights):
    380,928 fewer weights. It also replaces each convolution's bias by BatchNorm (a scale and a
    shift per channel): 7,280 more. 6,998,552 - 380,928 + 7,280 = 6,624,904.
    """
    return googlenet(3, 1000, dropout=0.4)
