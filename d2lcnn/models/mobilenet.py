"""MobileNet v1 (Howard et al., 2017) and v2 (Sandler et al., CVPR 2018): convolutions for phones.

A standard KxK convolution from C_in to C_out channels mixes space and channels at once:
K*K*C_in*C_out weights. A *depthwise separable* convolution does the two jobs one after the other:

* depthwise: one KxK filter per input channel (``groups=C_in``), K*K*C_in weights;
* pointwise: a 1x1 convolution that mixes the channels, C_in*C_out weights.

For K = 3 and a few hundred channels that is 8 to 9 times fewer weights and multiply-adds. Fewer
FLOPs are not the same as less time, though: a depthwise convolution does very little arithmetic
per byte it reads, so on many devices it runs far below the hardware's peak.

* ``DepthwiseSeparable``: MobileNet v1's block (depthwise 3x3, BN, ReLU, pointwise 1x1, BN, ReLU).
* ``InvertedResidual``: MobileNet v2's block. A 1x1 convolution *expands* a thin input t times
  (ReLU6), a depthwise 3x3 works on the wide map (ReLU6), a 1x1 convolution *projects* back to a
  thin output with no activation (the "linear bottleneck": a ReLU on few channels destroys
  information). The shortcut joins the thin ends, the reverse of ResNet's bottleneck.

Both networks take a *width multiplier* that scales every layer's channels: parameters and
multiply-adds fall roughly with its square. MobileNet v1 at width 1.0 has 4,231,976 parameters
here (the paper: 4.2 million); MobileNet v2 has 3,504,872, as torchvision's ``mobilenet_v2``, and
computes what it computes.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register

# MobileNet v1's body (the paper's Table 1): (output channels, stride) of each separable block.
V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
             (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

# MobileNet v2's body (the paper's Table 2): expansion t, output channels c, blocks n, first stride s.
V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
            activation: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    """Convolution (no bias: BatchNorm follows), BatchNorm, and the activation unless it is None."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups,
                        bias=False), nn.BatchNorm2d(out_channels)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


class DepthwiseSeparable(nn.Module):
    """MobileNet v1's block: a depthwise 3x3 convolution (one filter per channel), then a 1x1
    pointwise convolution that mixes the channels; each followed by BatchNorm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = conv_bn(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = conv_bn(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class InvertedResidual(nn.Module):
    """MobileNet v2's block: expand (1x1, ReLU6), depthwise 3x3 (ReLU6), project (1x1, linear).

    The shortcut is added only when the block keeps the shape (stride 1, same channels). With
    ``expansion=1`` there is nothing to expand and the block starts with the depthwise conv.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 6):
        super().__init__()
        hidden = round(in_channels * expansion)
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = conv_bn(in_channels, hidden, 1, activation=nn.ReLU6) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6)
        self.project = conv_bn(hidden, out_channels, 1, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.use_shortcut else y


def make_divisible(channels: float, divisor: int = 8) -> int:
    """``channels`` rounded to the nearest multiple of ``divisor``, never more than 10% below it.

    MobileNet v2 (and torchvision) round every width-scaled channel count this way, because
    hardware runs channel counts that are multiples of 8 faster.
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def mobilenet_v1(blocks=V1_BLOCKS, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0,
                 stem_stride: int = 2, stem_channels: int = 32) -> nn.Sequential:
    """MobileNet v1: a 3x3 convolution, depthwise separable blocks, global pooling, a classifier.

    ``width`` is the paper's width multiplier alpha: every layer gets ``int(channels * width)``
    channels. Layers are named ``stem``, ``b1``, ``b2``, ... (``b2.depthwise.0`` is a depthwise conv).
    """
    channels = int(stem_channels * width)
    layers = OrderedDict(stem=conv_bn(in_channels, channels, 3, stem_stride))
    for i, (out, stride) in enumerate(blocks):
        layers[f"b{i + 1}"] = DepthwiseSeparable(channels, int(out * width), stride)
        channels = int(out * width)
    layers.update(pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(), fc=nn.Linear(channels, num_classes))
    return nn.Sequential(layers)


def mobilenet_v2(settings=V2_SETTINGS, in_channels: int = 3, num_classes: int = 1000, width: float = 1.0,
                 stem_stride: int = 2, stem_channels: int = 32, last_channels: int = 1280,
                 dropout: float = 0.2) -> nn.Sequential:
    """MobileNet v2: a 3x3 convolution, inverted residual blocks, a 1x1 convolution to
    ``last_channels``, global pooling, dropout and a classifier.

    ``settings`` lists (expansion t, channels c, blocks n, stride s) per stage as the paper's
    Table 2. ``width`` scales the channels, rounded by :func:`make_divisible` as torchvision
    does (the last convolution is never made narrower). Layers: ``stem``, ``b1``, ``b2``, ...,
    ``head`` (``b3.depthwise.0`` is the depthwise convolution of the third block).
    """
    channels = make_divisible(stem_channels * width)
    layers = OrderedDict(stem=conv_bn(in_channels, channels, 3, stem_stride, activation=nn.ReLU6))
    i = 0
    for t, c, n, s in settings:
        out = make_divisible(c * width)
        for j in range(n):
            i += 1
            layers[f"b{i}"] = InvertedResidual(channels, out, s if j == 0 else 1, t)
            channels = out
    last = make_divisible(last_channels * max(1.0, width))
    layers.update(head=conv_bn(channels, last, 1, activation=nn.ReLU6), pool=nn.AdaptiveAvgPool2d((1, 1)),
                  flatten=nn.Flatten(), dropout=nn.Dropout(dropout), fc=nn.Linear(last, num_classes))
    return nn.Sequential(layers)


# Fashion-MNIST bodies for native 28x28 images: the stride-2 stem and one more stride 2 leave
# 7x7 maps (the ImageNet networks halve their maps five times, 224 -> 7).
FASHION_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 1), (256, 1), (512, 1))
FASHION_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 2, 1), (6, 96, 2, 1))


@register("mobilenet_v1", "fashion", input_shape=(1, 1, 28, 28), reference_params=273_674,
          modern={"lr": 0.1})
def mobilenet_v1_fashion(width: float = 1.0) -> nn.Sequential:
    """A small MobileNet v1 for native 28x28 Fashion-MNIST: stride-2 stem, 6 separable blocks at
    14x14 and 7x7."""
    return mobilenet_v1(FASHION_V1_BLOCKS, in_channels=1, num_classes=10, width=width)


@register("mobilenet_v1", "paper", input_shape=(1, 3, 224, 224), reference_params=4_231_976)
def mobilenet_v1_paper(width: float = 1.0) -> nn.Sequential:
    """MobileNet v1 (1.0, 224): 4,231,976 parameters (the paper: 4.2 million)."""
    return mobilenet_v1(width=width)


@register("mobilenet_v2", "fashion", input_shape=(1, 1, 28, 28), reference_params=370_442,
          modern={"lr": 0.1})
def mobilenet_v2_fashion(width: float = 1.0) -> nn.Sequential:
    """A small MobileNet v2 for native 28x28 Fashion-MNIST: stride-2 stem, 10 inverted residuals
    at 14x14 and 7x7, a 1x1 convolution to 512 channels."""
    return mobilenet_v2(FASHION_V2_SETTINGS, in_channels=1, num_classes=10, width=width, last_channels=512,
                        dropout=0.1)


@register("mobilenet_v2", "paper", input_shape=(1, 3, 224, 224), reference_params=3_504_872)
def mobilenet_v2_paper(width: float = 1.0) -> nn.Sequential:
    """MobileNet v2 (1.0, 224): 3,504,872 parameters, as torchvision's ``mobilenet_v2``."""
    return mobilenet_v2(width=width)
