"""EfficientNet (Tan and Le, ICML 2019): one small network, scaled in depth, width and resolution
together.

The building block is MobileNet V2's inverted residual ("MBConv") with squeeze-and-excitation:
a 1x1 convolution widens the channels (x6), a depthwise k x k convolution filters each channel
on its own, a squeeze-and-excitation gate reweighs the channels from their global averages, and a
1x1 convolution projects back to a thin output, with no activation. When the shape is unchanged
the input is added back, and in training the whole block is sometimes skipped for a sample
(stochastic depth), which regularises deep networks.

The scaling rule: a network found by architecture search (B0) grows with one coefficient phi,
depth by alpha**phi, width by beta**phi and the input side by gamma**phi, with alpha = 1.2,
beta = 1.1, gamma = 1.15 chosen so that alpha * beta**2 * gamma**2 is about 2: each step of phi
about doubles the FLOPs (a convolution's cost grows with depth, with width squared and with
resolution squared). ``compound_scaling(phi)`` gives the three factors.

Blocks, named as in the paper and torchvision: ``SqueezeExcite``, ``MBConv``; ``efficientnet``
builds a network from a stage table (``B0_STAGES``) and width/depth multipliers. The ``paper``
configurations B0..B3 compute what torchvision's ``efficientnet_b0``..``b3`` compute.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from . import register

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
"""Tan and Le's compound-scaling constants for depth, width and resolution (their eq. 3)."""

B0_STAGES = (
    # expand ratio, kernel, stride, output channels, blocks
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
"""EfficientNet-B0's seven stages (the paper's Table 1, stages 2-8)."""

FASHION_STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),   # 28x28 -> 14x14
    (6, 5, 2, 40, 2),   # -> 7x7
    (6, 3, 2, 80, 2),   # -> 4x4
)
"""Our Fashion-MNIST base: B0's first four stages (the fourth one block shorter), for 28x28 images."""


def compound_scaling(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA) -> dict:
    """The depth, width and resolution factors for compound coefficient ``phi``, and the FLOPs factor
    ``depth * width**2 * resolution**2`` (about 2**phi for the paper's constants)."""
    d, w, r = alpha ** phi, beta ** phi, gamma ** phi
    return {"depth": d, "width": w, "resolution": r, "flops": d * w ** 2 * r ** 2}


def round_channels(channels: float, width: float = 1.0, divisor: int = 8) -> int:
    """``channels * width`` rounded to a multiple of ``divisor`` (8), never more than 10% below it.

    Hardware likes channel counts divisible by 8; this is the rounding of the TensorFlow code
    that torchvision reuses, so that our scaled networks have exactly their channel counts.
    """
    v = channels * width
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def round_repeats(blocks: int, depth: float = 1.0) -> int:
    """``blocks * depth`` rounded up: a deeper network gets at least one more block per stage."""
    return int(math.ceil(blocks * depth))


def conv_bn_act(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                act: bool = True) -> nn.Sequential:
    """Convolution (no bias), BatchNorm, and SiLU (x * sigmoid(x), the paper's "swish") unless ``act=False``."""
    layers = OrderedDict(conv=nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                        padding=(kernel_size - 1) // 2, groups=groups, bias=False),
                         bn=nn.BatchNorm2d(out_channels))
    if act:
        layers["act"] = nn.SiLU(inplace=True)
    return nn.Sequential(layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): reweigh the channels by what the whole image says.

    Squeeze: average each channel over the map (one number per channel). Excite: a small
    two-layer network (1x1 convolutions ``channels -> squeezed -> channels``, SiLU between) and a
    sigmoid turn these into one gate in (0, 1) per channel, which multiplies the channel's map.
    """

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.SiLU(inplace=True)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: in training, zero the whole residual branch of a random ``p`` of the samples
    and scale the rest by ``1 / (1 - p)``, so that the expected output is unchanged. Identity in eval."""
    if not training or p == 0.0:
        return x
    if p >= 1.0:   # every branch dropped (and no 0/0 from the scaling)
        return torch.zeros_like(x)
    keep = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(1 - p)
    return x * keep / (1 - p)


class MBConv(nn.Module):
    """The mobile inverted bottleneck with squeeze-and-excitation: expand, depthwise, SE, project.

    Args:
        expand_ratio: the middle is ``in_channels * expand_ratio`` wide (no expansion layer when 1).
        kernel_size: of the depthwise convolution (3 or 5 in B0).
        stride: 2 halves the map (in the depthwise convolution).
        se_ratio: the SE block squeezes to ``in_channels * se_ratio`` (of the block's input, as in
            the paper's code), at least 1.
        drop_prob: stochastic-depth probability of skipping the block (only with a shortcut).
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: int = 6, kernel_size: int = 3,
                 stride: int = 1, se_ratio: float = 0.25, drop_prob: float = 0.0):
        super().__init__()
        mid = in_channels * expand_ratio
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.drop_prob = drop_prob
        self.expand = conv_bn_act(in_channels, mid, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn_act(mid, mid, kernel_size, stride=stride, groups=mid)
        self.se = SqueezeExcite(mid, max(1, int(in_channels * se_ratio)))
        self.project = conv_bn_act(mid, out_channels, 1, act=False)   # linear bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        if self.use_shortcut:
            return x + drop_path(y, self.drop_prob, self.training)
        return y

    def extra_repr(self) -> str:
        return f"shortcut={self.use_shortcut}, drop_prob={self.drop_prob:.3f}"


def efficientnet(width: float = 1.0, depth: float = 1.0, stages=B0_STAGES, stem_channels: int = 32,
                 stem_stride: int = 2, head_channels: int | None = None, in_channels: int = 3,
                 num_classes: int = 1000, dropout: float = 0.2, drop_path_rate: float = 0.2) -> nn.Sequential:
    """An EfficientNet: a 3x3 stem, the MBConv stages of ``stages`` scaled by ``width`` and ``depth``,
    a 1x1 head convolution (4x the last stage's channels unless given), pooling, dropout, classifier.

    ``stages`` rows are (expand ratio, kernel, stride, channels, blocks); channels are rounded
    with ``round_channels``, blocks with ``round_repeats``. The stochastic-depth probability grows
    linearly from 0 at the first block to ``drop_path_rate`` (exclusive) at the last. Resolution
    is not an argument: it is the size of the images you feed it.
    """
    stem_out = round_channels(stem_channels, width)
    total = sum(round_repeats(row[4], depth) for row in stages)
    layers = OrderedDict(stem=conv_bn_act(in_channels, stem_out, 3, stride=stem_stride))
    channels, index = stem_out, 0
    for s, (expand, kernel, stride, out, blocks) in enumerate(stages):
        out = round_channels(out, width)
        stage = []
        for i in range(round_repeats(blocks, depth)):
            stage.append(MBConv(channels, out, expand, kernel, stride if i == 0 else 1,
                                drop_prob=drop_path_rate * index / total))
            channels, index = out, index + 1
        layers[f"stage{s + 1}"] = nn.Sequential(*stage)
    head = head_channels or 4 * channels
    layers.update(head=conv_bn_act(channels, head, 1), pool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(),
                  dropout=nn.Dropout(dropout), fc=nn.Linear(head, num_classes))
    return nn.Sequential(layers)


# On the 2-core CPU channels-last alone measured 1.61x; bfloat16 0.84x alone, 0.88-0.90x
# with channels-last (measurements/cpu-path.json): so it keeps float32 on a CPU.
@register("efficientnet_b0", "fashion", input_shape=(1, 1, 28, 28), cpu={"amp": False}, reference_params=233_622)
def efficientnet_b0_fashion(width: float = 1.0, depth: float = 1.0) -> nn.Sequential:
    """A small EfficientNet for 1-channel 28x28 Fashion-MNIST (our design), scalable in width and depth.

    B0's first four stages (``FASHION_STAGES``) after a stride-1 stem of 16 channels: a 28x28 image
    is halved three times to 4x4, as B0 halves 224 five times to 7x7; at 28x28 B0's stride-2 stem
    and its last stages would leave maps of 1x1. Light regularisation (dropout 0.2, stochastic depth
    up to 0.1) for a 10-epoch run. ``width`` and ``depth`` scale it as ``efficientnet`` does; the
    third dimension, resolution, is the ``resize`` of the data.
    """
    return efficientnet(width, depth, stages=FASHION_STAGES, stem_channels=16, stem_stride=1, in_channels=1,
                        num_classes=10, dropout=0.2, drop_path_rate=0.1)


# The released family: (width, depth, resolution, dropout), as the paper's code and torchvision.
PAPER_FAMILY = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
}


@register("efficientnet_b0", "paper", input_shape=(1, 3, 224, 224), reference_params=5_288_548)
def efficientnet_b0_paper() -> nn.Sequential:
    """EfficientNet-B0 as in the paper and torchvision: 5,288,548 parameters at 224x224."""
    return efficientnet(*PAPER_FAMILY["efficientnet_b0"][:2], dropout=PAPER_FAMILY["efficientnet_b0"][3])


@register("efficientnet_b1", "paper", input_shape=(1, 3, 240, 240), reference_params=7_794_184)
def efficientnet_b1_paper() -> nn.Sequential:
    """EfficientNet-B1 (depth x1.1, 240x240) as torchvision: 7,794,184 parameters."""
    return efficientnet(*PAPER_FAMILY["efficientnet_b1"][:2], dropout=PAPER_FAMILY["efficientnet_b1"][3])


@register("efficientnet_b2", "paper", input_shape=(1, 3, 260, 260), reference_params=9_109_994)
def efficientnet_b2_paper() -> nn.Sequential:
    """EfficientNet-B2 (width x1.1, depth x1.2, 260x260) as torchvision: 9,109,994 parameters."""
    return efficientnet(*PAPER_FAMILY["efficientnet_b2"][:2], dropout=PAPER_FAMILY["efficientnet_b2"][3])


@register("efficientnet_b3", "paper", input_shape=(1, 3, 300, 300), reference_params=12_233_232)
def efficientnet_b3_paper() -> nn.Sequential:
    """EfficientNet-B3 (width x1.2, depth x1.4, 300x300) as torchvision: 12,233,232 parameters."""
    return efficientnet(*PAPER_FAMILY["efficientnet_b3"][:2], dropout=PAPER_FAMILY["efficientnet_b3"][3])
