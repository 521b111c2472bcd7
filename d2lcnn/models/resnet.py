"""ResNet (He, Zhang, Ren and Sun, 2015): learn a change to the input, not a new output.

A residual block computes ``relu(F(x) + x)``: a few convolutions with BatchNorm learn the change
F, and the input is added back through a shortcut. When the block changes the channels or halves
the map, a 1x1 convolution (stride 2) projects the shortcut to the new shape. Because the
identity is always one step away, networks of 18, 34, 50 or 152 layers still train.

Two blocks, named as in the paper:

* ``Residual`` (the paper's "basic block"): two 3x3 convolutions. ResNet-18 and -34.
* ``Bottleneck``: a 1x1 convolution cuts the channels by 4, a 3x3 convolution works on the thin
  map, a 1x1 convolution widens it back. Three layers for the price of two 3x3 ones at full
  width, which is what makes ResNet-50 (and 101, 152) affordable.

A *wide* ResNet (Zagoruyko and Komodakis, 2016) keeps the depth and widens the blocks instead:
wide ResNet-50-2 is ResNet-50 with the bottleneck's thin middle twice as wide (``widen=2``),
the stage outputs unchanged; 68,883,240 parameters against 25,557,032.

Like every module here, layers name their ``in_channels`` (the book's d2l-en 1.0 code uses lazy
layers that learn them at the first forward pass), so a count is known before any input.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import register

STAGE_CHANNELS = (64, 128, 256, 512)


class Residual(nn.Module):
    """The basic residual block: two 3x3 conv + BatchNorm, added to a (projected) shortcut.

    Args:
        use_1x1conv: project the shortcut with a 1x1 convolution (needed when the shape changes).
        stride: 2 halves the map (in the first convolution and the projection).
        bias: convolutions with biases as in the book; the paper's have none (BatchNorm follows,
            and its shift makes a bias redundant), and its projection is followed by BatchNorm too.
    """

    expansion = 1  # output channels = out_channels * expansion

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


class Bottleneck(nn.Module):
    """The bottleneck residual block of ResNet-50/101/152: 1x1 down, 3x3, 1x1 up (x4).

    ``width`` is the thin middle's channels; the block outputs ``4 * width`` unless ``out_channels``
    says otherwise (a wide ResNet's middle is wider than a quarter of its output). As in torchvision
    (ResNet "v1.5") the stride sits on the 3x3 convolution, not on the first 1x1, which sees every
    pixel before the map halves. Convolutions have no bias (BatchNorm follows each).

    Args:
        use_1x1conv: project the shortcut (1x1 convolution + BatchNorm) to the block's output shape.
        stride: 2 halves the map.
        out_channels: the block's output channels; default ``width * expansion``.
        groups: splits the 3x3 convolution into that many parallel paths (ResNeXt's cardinality).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, use_1x1conv: bool = False, stride: int = 1,
                 out_channels: int | None = None, groups: int = 1):
        super().__init__()
        out_channels = out_channels or width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)                          # squeeze
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)  # think
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)                         # expand
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if use_1x1conv:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


def resnet_stage(in_channels: int, out_channels: int, num_blocks: int, first_stage: bool = False,
                 bias: bool = True) -> nn.Sequential:
    """``num_blocks`` basic blocks; all but the first stage start by halving the map.

    The first stage follows the stem's max pool, which has already halved the map, and keeps
    64 channels, so it needs no projection.
    """
    blocks = []
    for i in range(num_blocks):
        if i == 0 and not first_stage:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2, bias=bias))
        else:
            blocks.append(Residual(out_channels, out_channels, bias=bias))
    return nn.Sequential(*blocks)


def bottleneck_stage(in_channels: int, width: int, num_blocks: int, first_stage: bool = False,
                     out_channels: int | None = None) -> nn.Sequential:
    """``num_blocks`` bottleneck blocks of ``width`` (output ``out_channels``, default ``4 * width``);
    the first projects its shortcut.

    Even the first stage projects (64 -> 256 channels), but only there does it keep the map size.
    """
    out_channels = out_channels or width * Bottleneck.expansion
    blocks = [Bottleneck(in_channels, width, use_1x1conv=True, stride=1 if first_stage else 2,
                         out_channels=out_channels)]
    blocks += [Bottleneck(out_channels, width, out_channels=out_channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def stem(in_channels: int, bias: bool = True) -> nn.Sequential:
    """7x7 convolution (stride 2), BatchNorm, ReLU, 3x3 max pool (stride 2): the map shrinks 4x."""
    return nn.Sequential(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=bias), nn.BatchNorm2d(64),
                         nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))


def resnet(blocks_per_stage: tuple[int, int, int, int], in_channels: int = 1, num_classes: int = 10,
           bias: bool = True, bottleneck: bool = False, widen: int = 1) -> nn.Sequential:
    """A ResNet: a 7x7 stem, four stages of 64-128-256-512 channels, global pooling, a classifier.

    ``blocks_per_stage`` is the whole difference between ResNet-18 ``(2, 2, 2, 2)``, ResNet-34
    ``(3, 4, 6, 3)`` and, with ``bottleneck=True`` (stages 4x wider at their output), ResNet-50
    ``(3, 4, 6, 3)``. ``widen`` multiplies the bottleneck's thin middle and leaves the stage
    outputs alone: ``widen=2`` makes ResNet-50 the wide ResNet-50-2. Named as in the book: the
    stem is b1, the stages b2..b5 ("b3.0.conv1" is the first convolution of the first block of
    stage b3).
    """
    if widen != 1 and not bottleneck:
        raise ValueError(f"widen={widen} widens the bottleneck's middle; it needs bottleneck=True "
                         "(to widen basic blocks, change STAGE_CHANNELS instead)")
    stages = {}
    channels = 64
    for i, (width, n) in enumerate(zip(STAGE_CHANNELS, blocks_per_stage)):
        if bottleneck:
            out = width * Bottleneck.expansion
            stages[f"b{i + 2}"] = bottleneck_stage(channels, width * widen, n, first_stage=i == 0, out_channels=out)
            channels = out
        else:
            stages[f"b{i + 2}"] = resnet_stage(channels, width, n, first_stage=i == 0, bias=bias)
            channels = width
    return nn.Sequential(OrderedDict(b1=stem(in_channels, bias), **stages, pool=nn.AdaptiveAvgPool2d((1, 1)),
                                     flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes)))


@register("resnet18", "fashion", input_shape=(1, 1, 96, 96), reference_params=11_178_378,
          book={"batch_size": 256, "lr": 0.05, "resize": 96, "epochs": 10}, modern={"lr": 0.1})
def resnet18_fashion() -> nn.Sequential:
    """The book's ResNet-18 for 1-channel 96x96 Fashion-MNIST and 10 classes (convolutions with bias)."""
    return resnet((2, 2, 2, 2))


@register("resnet18", "paper", input_shape=(1, 3, 224, 224), reference_params=11_689_512)
def resnet18_paper() -> nn.Sequential:
    """ResNet-18 as in the paper and torchvision (bias-free convolutions): 11,689,512 parameters."""
    return resnet((2, 2, 2, 2), in_channels=3, num_classes=1000, bias=False)


@register("resnet34", "paper", input_shape=(1, 3, 224, 224), reference_params=21_797_672)
def resnet34_paper() -> nn.Sequential:
    """ResNet-34 as in the paper and torchvision: 21,797,672 parameters."""
    return resnet((3, 4, 6, 3), in_channels=3, num_classes=1000, bias=False)


@register("resnet50", "paper", input_shape=(1, 3, 224, 224), reference_params=25_557_032)
def resnet50_paper() -> nn.Sequential:
    """ResNet-50: ResNet-34's stage depths with Bottleneck blocks; 25,557,032 parameters, as torchvision.

    Only 17% more parameters than ResNet-34 for 16 more layers, and 4.1 billion multiply-adds per
    224x224 image against 3.7 (8.2 against 7.3 GFLOPs, counting a multiply-add as two): the 1x1
    squeeze makes each extra layer cheap.
    """
    return resnet((3, 4, 6, 3), in_channels=3, num_classes=1000, bias=False, bottleneck=True)


@register("wide_resnet50_2", "paper", input_shape=(1, 3, 224, 224), reference_params=68_883_240)
def wide_resnet50_2_paper() -> nn.Sequential:
    """Wide ResNet-50-2 (Zagoruyko and Komodakis, 2016): ResNet-50 with bottlenecks twice as wide.

    The thin middle of every block has 128-256-512-1024 channels instead of 64-128-256-512; the
    1x1 layers still expand to 256-2048. 68,883,240 parameters, as torchvision's
    ``wide_resnet50_2``: 2.7 times ResNet-50's, for the same 50 layers.
    """
    return resnet((3, 4, 6, 3), in_channels=3, num_classes=1000, bias=False, bottleneck=True, widen=2)


SPEEDRUN_CHANNELS = (64, 128, 256)


def resnet_small(channels: tuple[int, ...] = SPEEDRUN_CHANNELS, in_channels: int = 1,
                 num_classes: int = 10) -> nn.Sequential:
    """A ResNet for native 28x28 images: a 3x3 stem and one basic block per stage.

    No 7x7 stride-2 stem and no max pool: at 28x28 they would throw away three quarters of the
    pixels before the first block. The first stage works at 28x28, each later one halves the map
    (28 -> 14 -> 7) and doubles the channels; convolutions have no bias (BatchNorm follows).
    """
    first = channels[0]
    stages = {"b1": nn.Sequential(nn.Conv2d(in_channels, first, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(first), nn.ReLU()),
              "b2": Residual(first, first, bias=False)}
    for i, (before, after) in enumerate(zip(channels, channels[1:])):
        stages[f"b{i + 3}"] = Residual(before, after, use_1x1conv=True, stride=2, bias=False)
    return nn.Sequential(OrderedDict(**stages, pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(),
                                     fc=nn.Linear(channels[-1], num_classes)))


@register("resnet_speedrun", "fashion", input_shape=(1, 1, 28, 28), reference_params=1_226_442,
          modern={"batch_size": 512, "lr": 0.4, "epochs": 16})
def resnet_speedrun_fashion(channels: tuple[int, ...] = SPEEDRUN_CHANNELS) -> nn.Sequential:
    """The course's speedrun network: ``resnet_small`` (64-128-256 channels) at native 28x28.

    Our own design, not the book's: the benchmark trains it with large batches (512), a one-cycle
    schedule, bf16 and channels-last on a GPU, against a goal of 94% test accuracy in 10 seconds
    of training (see :mod:`d2lcnn.benchmark`). The CPU track builds it a quarter as wide,
    ``channels=(16, 32, 64)`` (:mod:`d2lcnn.benchmark.cpu_track`).
    """
    return resnet_small(channels)
