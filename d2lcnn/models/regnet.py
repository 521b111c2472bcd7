"""RegNet (Radosavovic, Kosaraju, Girshick, He and Dollár, CVPR 2020): design the design space.

Instead of searching for one good network, the paper studies *populations*: a design space is a
family of networks with a few free parameters; sample networks from it, train each briefly, and
compare spaces by the distribution of their errors (see :mod:`d2lcnn.design`). Constraining a
space well keeps its good networks and drops bad ones.

The starting space, **AnyNet**, has a fixed stem (a 3x3 convolution) and head (pooling, a linear
classifier) and four stages of residual blocks in between, each stage with its own depth d_i,
width w_i, bottleneck ratio b_i and group width g_i. With ResNeXt's block it is **AnyNetX**.
Its "X block" is our ``ResNeXtBlock`` (1x1 down to ``w / b`` channels, a 3x3 convolution in groups
of ``g`` channels, 1x1 back up to ``w``); **RegNetY** adds squeeze-and-excitation after the
grouped convolution (``YBlock``).

The paper's finding, the **RegNet** rule: the widths of good networks grow about linearly with
the block index, ``u_j = w_0 + w_a * j``, and snap to a few levels ``w_0 * w_m ** k`` (one per
stage). ``regnet_widths`` computes that rule; six numbers (depth, w_0, w_a, w_m, group width,
bottleneck ratio) then describe a whole network. ``regnetx_400mf`` and ``regnety_400mf`` are the
paper's 400-MFLOP networks, computing what torchvision's ``regnet_x_400mf`` / ``regnet_y_400mf``
compute.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from . import register
from .mobilenet import make_divisible
from .resnext import ResNeXtBlock
from .senet import SqueezeExcitation

QUANTUM = 8
"""Every RegNet width is a multiple of 8 (the paper's quantisation, kind to hardware)."""


class YBlock(ResNeXtBlock):
    """RegNetY's block: the X block (``ResNeXtBlock``) with squeeze-and-excitation after the
    grouped 3x3 convolution, before the 1x1 expansion.

    The SE bottleneck has ``round(se_ratio * in_channels)`` units: a quarter of the block's
    *input* channels, not of the channels it weighs (as in the paper's code and torchvision).
    """

    def __init__(self, in_channels: int, out_channels: int, cardinality: int, group_width: int,
                 stride: int = 1, use_1x1conv: bool = False, se_ratio: float = 0.25):
        super().__init__(in_channels, out_channels, cardinality, group_width, stride, use_1x1conv)
        self.se = SqueezeExcitation(cardinality * group_width, hidden=int(round(se_ratio * in_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.se(F.relu(self.bn2(self.conv2(y))))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


def compatible(width: int, bottleneck: float, group_width: int) -> tuple[int, int]:
    """A stage's (width, group width) adjusted so that the groups fit the bottleneck's middle.

    The middle has ``width / bottleneck`` channels and must hold whole groups of ``group_width``:
    a group wider than the middle shrinks to it, and the middle is rounded to a multiple of the
    group width (the width follows). As the paper's code and torchvision do.
    """
    middle = int(width / bottleneck)
    group_width = min(group_width, middle)
    middle = make_divisible(middle, group_width)
    return int(middle * bottleneck), group_width


def anynet_stage(in_channels: int, width: int, depth: int, stride: int, bottleneck: float, group_width: int,
                 se_ratio: float | None = None) -> nn.Sequential:
    """``depth`` X blocks (Y blocks when ``se_ratio``) of ``width`` output channels; the first
    applies ``stride`` and projects its shortcut when the shape changes."""
    middle = int(width / bottleneck)
    blocks = []
    for i in range(depth):
        block_in = in_channels if i == 0 else width
        kwargs = dict(stride=stride if i == 0 else 1, use_1x1conv=i == 0 and (block_in != width or stride != 1))
        if se_ratio:
            blocks.append(YBlock(block_in, width, middle // group_width, group_width, se_ratio=se_ratio, **kwargs))
        else:
            blocks.append(ResNeXtBlock(block_in, width, middle // group_width, group_width, **kwargs))
    return nn.Sequential(*blocks)


def stem(in_channels: int, channels: int, stride: int = 2) -> nn.Sequential:
    """The fixed AnyNet stem: one 3x3 convolution (no bias), BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(channels), nn.ReLU())


def anynet(depths, widths, bottlenecks, group_widths, stem_channels: int = 32, stem_stride: int = 2,
           strides=None, in_channels: int = 3, num_classes: int = 1000, se_ratio: float | None = None) -> nn.Sequential:
    """A network of the AnyNet design space: stem, stages b2, b3, ... pooling, a linear classifier.

    Stage i has ``depths[i]`` blocks of ``widths[i]`` output channels, bottleneck ratio
    ``bottlenecks[i]`` (the middle is ``width / b`` wide) and groups of ``group_widths[i]``
    channels; widths and group widths are first made ``compatible``. Every stage halves the map
    unless ``strides`` says otherwise. Layers read "b3.0.conv2" (stage b3, first block, its grouped
    3x3 convolution), as in our ResNeXt.
    """
    strides = strides or (2,) * len(depths)
    layers, channels = OrderedDict(b1=stem(in_channels, stem_channels, stem_stride)), stem_channels
    for i, (d, w, b, g, s) in enumerate(zip(depths, widths, bottlenecks, group_widths, strides)):
        w, g = compatible(w, b, g)
        layers[f"b{i + 2}"] = anynet_stage(channels, w, d, s, b, g, se_ratio)
        channels = w
    layers.update(pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
    return nn.Sequential(layers)


def regnet_widths(depth: int, w_0: float, w_a: float, w_m: float, quantum: int = QUANTUM) -> dict:
    """RegNet's quantised linear rule: the width of each of ``depth`` blocks.

    * linear: ``u_j = w_0 + w_a * j`` for blocks j = 0 .. depth-1;
    * quantised: each ``u_j`` is written as ``w_0 * w_m ** s_j``, ``s_j`` is rounded to a whole
      number k, and the width ``w_0 * w_m ** k`` is rounded to a multiple of ``quantum``.

    Blocks with the same k form one stage. Returns the continuous widths ``u``, the block widths
    ``w`` and the stages' ``depths`` and ``widths``.
    """
    if w_a < 0 or w_0 <= 0 or w_m <= 1 or w_0 % quantum:
        raise ValueError(f"RegNet needs w_0 > 0 and a multiple of {quantum}, w_a >= 0 and w_m > 1; "
                         f"got w_0={w_0}, w_a={w_a}, w_m={w_m}")
    u = [w_0 + w_a * j for j in range(depth)]
    k = [round(math.log(uj / w_0) / math.log(w_m)) for uj in u]
    w = [int(round(w_0 * w_m ** kj / quantum) * quantum) for kj in k]
    depths, widths = [], []
    for wj in w:
        if widths and widths[-1] == wj:
            depths[-1] += 1
        else:
            widths.append(wj)
            depths.append(1)
    return {"u": u, "w": w, "depths": depths, "widths": widths}


def regnet(depth: int, w_0: float, w_a: float, w_m: float, group_width: int, bottleneck: float = 1.0,
           se_ratio: float | None = None, **kwargs) -> nn.Sequential:
    """A RegNet: the AnyNet network whose stages the quantised linear rule gives (``regnet_widths``),
    one shared group width and bottleneck ratio; RegNetY when ``se_ratio`` is given.
    ``kwargs`` go to ``anynet`` (stem, strides, input channels, classes)."""
    rule = regnet_widths(depth, w_0, w_a, w_m)
    n = len(rule["depths"])
    return anynet(rule["depths"], rule["widths"], (bottleneck,) * n, (group_width,) * n, se_ratio=se_ratio, **kwargs)


TORCHVISION_NAMES = [("proj.", "shortcut."), ("f.a.0.", "conv1."), ("f.a.1.", "bn1."), ("f.b.0.", "conv2."),
                     ("f.b.1.", "bn2."), ("f.c.0.", "conv3."), ("f.c.1.", "bn3."), ("f.se.fc1.", "se.reduce."),
                     ("f.se.fc2.", "se.expand.")]
"""torchvision's names inside a RegNet block, and ours (``ResNeXtBlock``'s, ``YBlock``'s)."""


def from_torchvision(state_dict: dict) -> dict:
    """A torchvision RegNet's ``state_dict`` under our names, to load into ``regnetx_400mf`` & co.

    Same tensors, other names: torchvision's ``stem`` is our ``b1``, its stage ``blockS`` with
    blocks ``blockS-I`` our ``b(S+1)`` with blocks ``I``, its ``proj`` our ``shortcut``, its
    ``f.a``/``f.b``/``f.c`` our ``conv1``/``conv2``/``conv3`` with their BatchNorms.
    """
    renamed = {}
    for key, value in state_dict.items():
        key = re.sub(r"^stem\.", "b1.", key)
        key = re.sub(r"^trunk_output\.block(\d+)\.block\d+-(\d+)\.", lambda m: f"b{int(m[1]) + 1}.{m[2]}.", key)
        for theirs, ours in TORCHVISION_NAMES:
            key = key.replace(theirs, ours)
        renamed[key] = value
    return renamed


FASHION_RULE = {"depth": 7, "w_0": 24, "w_a": 20, "w_m": 2.2, "group_width": 8}
"""Our Fashion-MNIST RegNetX: seven blocks whose widths the rule sets to 24-56-120, in three stages
of 1, 2 and 4 blocks."""


@register("regnet", "fashion", input_shape=(1, 1, 28, 28), reference_params=177_986, modern={"lr": 0.1})
def regnet_fashion() -> nn.Sequential:
    """A small RegNetX for native 28x28 Fashion-MNIST (our design): ``FASHION_RULE``, a 24-channel stride-1 stem.

    The stem keeps 28x28 and the three stages halve it (14, 7, 4), as our ResNeXt does; the rule's
    linear widths (slope 20 from 24) snap to three levels, so three stages. Bottleneck ratio 1, as
    the paper found best.
    """
    return regnet(**FASHION_RULE, stem_channels=24, stem_stride=1, in_channels=1, num_classes=10)


@register("regnetx_400mf", "paper", input_shape=(1, 3, 224, 224), reference_params=5_495_976)
def regnetx_400mf_paper() -> nn.Sequential:
    """RegNetX-400MF: depth 22, w_0 = 24, w_a = 24.48, w_m = 2.54, group width 16 (the paper's
    code and torchvision's ``regnet_x_400mf``)."""
    return regnet(22, 24, 24.48, 2.54, group_width=16)


@register("regnety_400mf", "paper", input_shape=(1, 3, 224, 224), reference_params=4_344_144)
def regnety_400mf_paper() -> nn.Sequential:
    """RegNetY-400MF: depth 16, w_0 = 48, w_a = 27.89, w_m = 2.09, group width 8, and SE blocks
    squeezing to a quarter of each block's input (torchvision's ``regnet_y_400mf``)."""
    return regnet(16, 48, 27.89, 2.09, group_width=8, se_ratio=0.25)
