"""SENet (Hu, Shen and Sun, CVPR 2018): let the network weigh its own channels, per image.

A squeeze-and-excitation (SE) block takes a block's output maps, *squeezes* each channel to one
number (its global average), passes those numbers through a tiny two-layer bottleneck (C -> C/r
-> C, ReLU between) and a sigmoid, and *excites*: multiplies every channel by its weight in
(0, 1). The weights depend on the image, so the block is channel attention: a coat can turn up
other channels than a sneaker does. It costs about 2C^2/r parameters and almost no arithmetic.

SE plugs into any block. Here it sits in ResNet's blocks (imported from ``resnet.py``), on the
residual branch just before the shortcut is added, as in the paper's SE-ResNet module:

* ``SEResidual``: the basic block + SE, for the small Fashion-MNIST network;
* ``SEBottleneck``: the bottleneck block + SE, for SE-ResNet-50 (the ImageNet configuration).

SE-ResNet-50 with reduction 16 has 28,088,024 parameters here: ResNet-50's 25,557,032, plus
2,514,944 weights and 16,048 biases in its 16 SE blocks. The paper reports about 28.1 million.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .resnet import Bottleneck, Residual, STAGE_CHANNELS
from .resnet import stem as imagenet_stem


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 mean(x)))``, one weight per channel and image.

    ``reduce`` and ``expand`` are the paper's two fully connected layers, written as 1x1
    convolutions on the 1x1 squeezed map (the same weights and biases). ``gate``'s output, shape
    (N, C, 1, 1), is the channel weights: hook it to see what the block turns up or down.

    Args:
        channels: C, the channels of the maps to weigh.
        reduction: r; the bottleneck has ``max(1, C // r)`` units.
        hidden: the bottleneck's units, when they are not a fraction of C (RegNetY sizes its SE
            blocks by the block's *input* channels); overrides ``reduction``.
    """

    def __init__(self, channels: int, reduction: int = 16, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(1, channels // reduction)
        self.squeeze = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.gate(self.expand(F.relu(self.reduce(self.squeeze(x)))))
        return x * weights


class SEResidual(Residual):
    """ResNet's basic block with an SE block on the residual branch: ``relu(SE(F(x)) + x)``.

    Takes ``Residual``'s arguments (convolutions without bias by default here) and ``reduction``.
    """

    def __init__(self, in_channels: int, out_channels: int, use_1x1conv: bool = False, stride: int = 1,
                 bias: bool = False, reduction: int = 16):
        super().__init__(in_channels, out_channels, use_1x1conv, stride, bias)
        self.se = SqueezeExcitation(out_channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(y + self.shortcut(x))


class SEBottleneck(Bottleneck):
    """ResNet's bottleneck block with an SE block on the residual branch, after the last BatchNorm."""

    def __init__(self, in_channels: int, width: int, use_1x1conv: bool = False, stride: int = 1,
                 reduction: int = 16):
        super().__init__(in_channels, width, use_1x1conv, stride)
        self.se = SqueezeExcitation(width * self.expansion, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        return F.relu(y + self.shortcut(x))


def se_stage(block: type, in_channels: int, width: int, num_blocks: int, stride: int, reduction: int) -> nn.Sequential:
    """``num_blocks`` SE blocks of one kind; the first projects its shortcut and applies ``stride``."""
    out_channels = width * block.expansion
    blocks = [block(in_channels, width, use_1x1conv=True, stride=stride, reduction=reduction)]
    blocks += [block(out_channels, width, reduction=reduction) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def se_resnet(block: type, blocks_per_stage: tuple[int, ...], widths: tuple[int, ...], strides: tuple[int, ...],
              stem: nn.Module, stem_channels: int, num_classes: int, reduction: int = 16) -> nn.Sequential:
    """An SE-ResNet: ``stem``, stages b2, b3, ... of ``block``, global average pooling, a classifier.

    Stage i has blocks of ``widths[i]`` and starts with stride ``strides[i]`` (2 halves the map).
    Layers read "b3.0.se.gate" (stage b3, its first block, the SE block's channel weights).
    """
    stages, channels = OrderedDict(b1=stem), stem_channels
    for i, (n, width, stride) in enumerate(zip(blocks_per_stage, widths, strides)):
        stages[f"b{i + 2}"] = se_stage(block, channels, width, n, stride, reduction)
        channels = width * block.expansion
    return nn.Sequential(OrderedDict(**stages, pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(),
                                     fc=nn.Linear(channels, num_classes)))


@register("se_resnet", "fashion", input_shape=(1, 1, 28, 28), reference_params=669_594, modern={"lr": 0.1})
def se_resnet_fashion(reduction: int = 8) -> nn.Sequential:
    """A small SE-ResNet for native 28x28 Fashion-MNIST: a 3x3 stem at 28x28, then two stages of
    two basic blocks + SE at 14x14 (64 channels) and 7x7 (128 channels).

    Reduction 8 rather than the paper's 16: with 64 channels, 16 would leave an SE bottleneck of
    only 4 units.
    """
    stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
    return se_resnet(SEResidual, (2, 2), (64, 128), (2, 2), stem, 32, num_classes=10, reduction=reduction)


@register("se_resnet50", "paper", input_shape=(1, 3, 224, 224), reference_params=28_088_024)
def se_resnet50_paper(reduction: int = 16) -> nn.Sequential:
    """SE-ResNet-50: ResNet-50 (as torchvision's) with an SE block of reduction 16 in each of its
    16 bottleneck blocks; 28,088,024 parameters (the paper: about 28.1 million)."""
    return se_resnet(SEBottleneck, (3, 4, 6, 3), STAGE_CHANNELS, (1, 2, 2, 2), imagenet_stem(3, bias=False), 64,
                     num_classes=1000, reduction=reduction)
