"""ResNet (He, Zhang, Ren and Sun, 2015): learn a change to the input, not a new output.

A residual block computes ``relu(F(x) + x)``: two 3x3 convolutions with BatchNorm learn the
change F, and the input is added back through a shortcut. When the block changes the channels or
halves the map, a 1x1 convolution (stride 2) projects the shortcut to the new shape. Because the
identity is always one step away, networks of 18, 34 or 152 layers still train.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import register


class Residual(nn.Module):
    """The basic residual block: two 3x3 conv + BatchNorm, added to a (projected) shortcut.

    Args:
        use_1x1conv: project the shortcut with a 1x1 convolution (needed when the shape changes).
        stride: 2 halves the map (in the first convolution and the projection).
        bias: convolutions with biases as in the book; the paper's have none (BatchNorm follows),
            and its projection is followed by BatchNorm too.
    """

    def __init__(self, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1,
                 bias: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if use_1x1conv:
            project = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)
            self.shortcut = project if bias else nn.Sequential(project, nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


def resnet_stage(in_channels: int, out_channels: int, num_blocks: int, first_stage: bool = False,
                 bias: bool = True) -> nn.Sequential:
    """``num_blocks`` residual blocks; all but the first stage start by halving the map."""
    blocks = []
    for i in range(num_blocks):
        if i == 0 and not first_stage:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2, bias=bias))
        else:
            blocks.append(Residual(out_channels, out_channels, bias=bias))
    return nn.Sequential(*blocks)


def resnet(blocks_per_stage: tuple[int, int, int, int], in_channels: int = 1, num_classes: int = 10,
           bias: bool = True) -> nn.Sequential:
    """A ResNet of basic blocks: a 7x7 stem, four stages of 64-128-256-512 channels, a classifier.

    Named as in the book: the stem is b1, the stages b2..b5 ("b3.0.conv1" is the first
    convolution of the first block of stage b3).
    """
    stem = nn.Sequential(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=bias), nn.BatchNorm2d(64),
                         nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    channels = (64, 64, 128, 256, 512)
    stages = {f"b{i + 2}": resnet_stage(channels[i], channels[i + 1], n, first_stage=i == 0, bias=bias)
              for i, n in enumerate(blocks_per_stage)}
    return nn.Sequential(OrderedDict(b1=stem, **stages, pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(),
                                     fc=nn.Linear(512, num_classes)))


@register("resnet18", "fashion", input_shape=(1, 1, 96, 96), reference_params=11_178_378,
          book={"batch_size": 256, "lr": 0.05, "resize": 96, "epochs": 10}, modern={"lr": 0.1})
def resnet18_fashion() -> nn.Sequential:
    """The book's ResNet-18 for 1-channel 96x96 Fashion-MNIST and 10 classes."""
    return resnet((2, 2, 2, 2))


@register("resnet18", "paper", input_shape=(1, 3, 224, 224), reference_params=11_689_512)
def resnet18_paper() -> nn.Sequential:
    """ResNet-18 as in the paper and torchvision (bias-free convolutions): 11,689,512 parameters."""
    return resnet((2, 2, 2, 2), in_channels=3, num_classes=1000, bias=False)


@register("resnet34", "paper", input_shape=(1, 3, 224, 224), reference_params=21_797_672)
def resnet34_paper() -> nn.Sequential:
    """ResNet-34 as in the paper and torchvision: 21,797,672 parameters."""
    return resnet((3, 4, 6, 3), in_channels=3, num_classes=1000, bias=False)
