"""ShuffleNet (Zhang, Zhou, Lin and Sun, CVPR 2018) and ShuffleNet V2 (Ma, Zhang, Zheng and Sun,
ECCV 2018): cheap 1x1 convolutions, and channels that still talk to each other.

In a mobile network most of the arithmetic sits in the 1x1 ("pointwise") convolutions. ShuffleNet
makes them *grouped*: with g groups each output channel reads only 1/g of the input channels, so
the layer costs g times less. Stack two grouped layers and a channel only ever hears from its own
group; a *channel shuffle* between them (reshape to (g, C/g), transpose, flatten) deals every
group's channels out to all groups, so the next grouped layer sees a bit of everything, for free.

Three blocks:

* ``ChannelShuffle``: the shuffle as a layer (no parameters, no FLOPs, just a permutation).
* ``ShuffleV1Unit``: ShuffleNet's bottleneck: grouped 1x1, shuffle, 3x3 depthwise, grouped 1x1;
  added to the input, or (stride 2) concatenated with a 3x3 average pool of it.
* ``ShuffleV2Block``: ShuffleNet V2's unit, shaped by its four guidelines: split the channels in
  two, leave one half alone, run the other through plain (ungrouped) 1x1 and 3x3 depthwise
  convolutions of equal width, concatenate (no addition) and shuffle the halves.

``shufflenet_v2`` stacks the V2 blocks into stages; ``shufflenet_v2/paper`` is ShuffleNet V2 x1.0
as torchvision builds it (2,278,604 parameters, the same computation).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import register


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups: channel j of group i moves to j * groups + i.

    With 6 channels in 2 groups, (0 1 2 | 3 4 5) becomes (0 3 1 4 2 5): every group of the next
    layer now holds channels from both old groups.
    """
    n, c, h, w = x.shape
    if c % groups:
        raise ValueError(f"channel_shuffle: {c} channels cannot be split into {groups} equal groups; "
                         "use a channel count divisible by the number of groups")
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    """``channel_shuffle`` as a layer, so that it shows (and can be removed) in a network."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class ShuffleV1Unit(nn.Module):
    """The ShuffleNet (v1) unit: grouped 1x1 -> shuffle -> 3x3 depthwise -> grouped 1x1.

    The thin middle has a quarter of the output channels, as in ResNet's bottleneck. With
    ``stride=2`` the shortcut is a 3x3 average pool (stride 2) and is *concatenated*, so the
    branch only adds ``out_channels - in_channels`` channels. No ReLU after the depthwise
    convolution (the paper's choice). ``groups_in=1`` keeps the first 1x1 convolution whole, as
    the paper does in the first stage, whose input has only 24 channels. ``shuffle=False`` drops
    the shuffle: the ablation that shows what it is for.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int = 3, stride: int = 1,
                 groups_in: int | None = None, shuffle: bool = True):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if stride == 1 and in_channels != out_channels:
            raise ValueError(f"a stride-1 unit adds its input back, so in_channels ({in_channels}) must equal "
                             f"out_channels ({out_channels}); use stride=2 to change the width")
        mid = out_channels // 4
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        self.stride = stride
        self.compress = nn.Conv2d(in_channels, mid, 1, groups=groups if groups_in is None else groups_in, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.shuffle = ChannelShuffle(groups) if shuffle else nn.Identity()
        self.depthwise = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.expand = nn.Conv2d(mid, branch_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shuffle(F.relu(self.bn1(self.compress(x))))
        y = self.bn3(self.expand(self.bn2(self.depthwise(y))))
        if self.stride == 2:
            return F.relu(torch.cat([self.shortcut(x), y], dim=1))
        return F.relu(x + y)


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    """Convolution (no bias: BatchNorm follows), BatchNorm, and a ReLU unless ``relu=False``."""
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                        padding=kernel_size // 2, groups=groups, bias=False),
                         bn=nn.BatchNorm2d(out_channels))
    if relu:
        layers["relu"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)


class ShuffleV2Block(nn.Module):
    """The ShuffleNet V2 unit (the paper's Fig. 3c and 3d).

    Stride 1: split the channels in two halves; the left half passes untouched, the right half goes
    through 1x1 conv -> 3x3 depthwise -> 1x1 conv (all as wide as the half: guideline G1, no groups:
    G2); the halves are concatenated (no element-wise addition: G4) and shuffled, so the untouched
    half gets mixed in the next block. Stride 2: both branches see the whole input and both halve
    the map (the left one with a 3x3 depthwise and a 1x1 convolution), which doubles the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        if out_channels % 2 or (stride == 1 and in_channels != out_channels):
            raise ValueError(f"ShuffleV2Block({in_channels}, {out_channels}, stride={stride}): out_channels must be "
                             "even, and equal to in_channels when stride is 1 (the split keeps the width)")
        half = out_channels // 2
        self.stride = stride
        if stride == 2:
            self.left = nn.Sequential(OrderedDict(
                depthwise=conv_bn(in_channels, in_channels, 3, stride=2, groups=in_channels, relu=False),
                pointwise=conv_bn(in_channels, half, 1)))
        self.right = nn.Sequential(OrderedDict(
            pointwise1=conv_bn(in_channels if stride == 2 else half, half, 1),
            depthwise=conv_bn(half, half, 3, stride=stride, groups=half, relu=False),
            pointwise2=conv_bn(half, half, 1)))
        self.shuffle = ChannelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            out = torch.cat([left, self.right(right)], dim=1)
        else:
            out = torch.cat([self.left(x), self.right(x)], dim=1)
        return self.shuffle(out)


def shufflenet_v2_stage(in_channels: int, out_channels: int, num_blocks: int) -> nn.Sequential:
    """A stride-2 block that changes the width, then ``num_blocks - 1`` stride-1 blocks."""
    blocks = [ShuffleV2Block(in_channels, out_channels, stride=2)]
    blocks += [ShuffleV2Block(out_channels, out_channels) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def shufflenet_v2(stage_channels: tuple[int, int, int] = (116, 232, 464), stage_blocks: tuple[int, int, int] = (4, 8, 4),
                  head_channels: int = 1024, stem_channels: int = 24, stem_stride: int = 2, stem_pool: bool = True,
                  in_channels: int = 3, num_classes: int = 1000) -> nn.Sequential:
    """ShuffleNet V2: a 3x3 stem, three stages of ShuffleV2Blocks, a 1x1 head convolution, pooling.

    The paper's x1.0 network has stages of 116, 232 and 464 channels with 4, 8 and 4 blocks and a
    stem (3x3, stride 2, then a 3x3 max pool, stride 2) that shrinks 224x224 to 56x56. Named as in
    the paper: stem (conv1 + max pool), stage2..stage4, head (conv5), then pool, flatten, fc.
    """
    stem = conv_bn(in_channels, stem_channels, 3, stride=stem_stride)
    if stem_pool:
        stem.add_module("pool", nn.MaxPool2d(3, stride=2, padding=1))
    stages = OrderedDict()
    channels = stem_channels
    for i, (width, n) in enumerate(zip(stage_channels, stage_blocks)):
        stages[f"stage{i + 2}"] = shufflenet_v2_stage(channels, width, n)
        channels = width
    return nn.Sequential(OrderedDict(stem=stem, **stages, head=conv_bn(channels, head_channels, 1),
                                     pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(),
                                     fc=nn.Linear(head_channels, num_classes)))


# On the 2-core CPU channels-last alone measured 1.27x; bfloat16 0.91x alone, 0.91-1.07x
# with channels-last (measurements/cpu-path.json): so it keeps float32 on a CPU.
@register("shufflenet_v2", "fashion", input_shape=(1, 1, 28, 28), cpu={"amp": False}, reference_params=247_162)
def shufflenet_v2_fashion() -> nn.Sequential:
    """ShuffleNet V2 x0.5 for 1-channel 28x28 Fashion-MNIST: no stem downsampling, a 512-wide head.

    At 28x28 the paper's stem (stride 2 and a max pool) would leave 7x7 maps before the first stage
    and 2x2 at the end; with a stride-1 stem and no max pool the three stages work on 14x14, 7x7
    and 4x4 maps (the paper's work on 28, 14 and 7 at 224x224). Stages of 48, 96 and 192 channels
    (the paper's x0.5 widths) with its 4-8-4 blocks, and a 512-channel head instead of 1024, keep
    it small: about 15 MFLOPs per image.
    """
    return shufflenet_v2((48, 96, 192), (4, 8, 4), head_channels=512, stem_stride=1, stem_pool=False,
                         in_channels=1, num_classes=10)


@register("shufflenet_v2", "paper", input_shape=(1, 3, 224, 224), reference_params=2_278_604)
def shufflenet_v2_paper() -> nn.Sequential:
    """ShuffleNet V2 x1.0 as in the paper and torchvision: 2,278,604 parameters, 146 M multiply-adds."""
    return shufflenet_v2()
