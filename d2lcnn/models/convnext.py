"""ConvNeXt (Liu, Mao, Wu, Feichtenhofer, Darrell and Xie, CVPR 2022): a ResNet modernised one
step at a time, until it matched the vision Transformers with nothing but convolutions.

The ConvNeXt block, from the input x of C channels:

1. a 7x7 *depthwise* convolution: each channel filtered on its own (spatial mixing only);
2. LayerNorm over the C channels of each pixel (one norm per block, no BatchNorm);
3. an *inverted bottleneck*: a 1x1 convolution to 4C channels, GELU (the block's only
   activation), a 1x1 convolution back to C (channel mixing only);
4. *layer scale*: each channel of the branch multiplied by a learned number that starts tiny
   (1e-6), so that every block starts close to the identity;
5. *stochastic depth*: in training, the branch of a random sample is dropped now and then;
6. the input added back: ``x + scale * branch(x)``, with no activation after the addition.

The 1x1 convolutions are written as ``nn.Linear`` on channels-last maps, as in the paper's code
and torchvision (the same weights, the same arithmetic). The network: a "patchify" stem (a 4x4
convolution of stride 4 on ImageNet, then LayerNorm), four stages of blocks, and between stages a
separate downsampling layer (LayerNorm, 2x2 convolution of stride 2); global pooling, LayerNorm,
a linear classifier. ``convnext_tiny`` (3, 3, 9, 3 blocks of 96, 192, 384, 768 channels) computes
what torchvision's ``convnext_tiny`` computes. :mod:`d2lcnn.roadmap` replays the paper's steps
from a ResNet to this network.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register
from .efficientnet import drop_path


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of every pixel of an (N, C, H, W) map (what ``nn.LayerNorm(C)``
    does on an (N, H, W, C) map): each pixel's C values get mean 0 and variance 1, then a learned
    scale and shift per channel. Unlike BatchNorm it uses no batch statistics, so train and eval
    compute the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """The ConvNeXt block: depthwise kxk, LayerNorm, 1x1 up (x4), GELU, 1x1 down, layer scale,
    stochastic depth, plus the input.

    Args:
        dim: the block's input and output channels C.
        kernel_size: of the depthwise convolution (7 in the paper: larger gained nothing there).
        expansion: the inverted bottleneck's width, ``expansion * C`` (4, as a Transformer's MLP).
        layer_scale: the initial value of the per-channel scale; ``None`` for no layer scale.
        drop_prob: the stochastic-depth probability of dropping the branch (training only).
    """

    def __init__(self, dim: int, kernel_size: int = 7, expansion: int = 4, layer_scale: float | None = 1e-6,
                 drop_prob: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, expansion * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expansion * dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale)) if layer_scale is not None else None
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)             # (N, H, W, C): norm and 1x1s act on C
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
        if self.layer_scale is not None:
            y = self.layer_scale * y
        return x + drop_path(y, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


def downsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """The layer between stages: LayerNorm, then a 2x2 convolution of stride 2 (halves the map,
    changes the channels). Without the norm, the paper's training diverged."""
    return nn.Sequential(LayerNorm2d(in_channels, eps=1e-6), nn.Conv2d(in_channels, out_channels, 2, stride=2))


def convnext(depths, dims, in_channels: int = 3, num_classes: int = 1000, patch: int = 4, kernel_size: int = 7,
             layer_scale: float | None = 1e-6, drop_path_rate: float = 0.0) -> nn.Sequential:
    """A ConvNeXt: patchify stem, stages stage1.. of ``depths[i]`` blocks of ``dims[i]`` channels with
    a ``downsample`` layer before each but the first, pooling, LayerNorm, a linear classifier.

    The stem is a ``patch`` x ``patch`` convolution of stride ``patch`` (non-overlapping patches)
    and a LayerNorm. The stochastic-depth probability grows linearly from 0 at the first block to
    ``drop_path_rate`` at the last, as in the paper. Layers read "stage3.0.dwconv".
    """
    layers = OrderedDict(stem=nn.Sequential(nn.Conv2d(in_channels, dims[0], patch, stride=patch),
                                            LayerNorm2d(dims[0], eps=1e-6)))
    total, index = sum(depths), 0
    for i, (depth, dim) in enumerate(zip(depths, dims)):
        if i > 0:
            layers[f"down{i + 1}"] = downsample(dims[i - 1], dim)
        layers[f"stage{i + 1}"] = nn.Sequential(*[
            ConvNeXtBlock(dim, kernel_size, layer_scale=layer_scale,
                          drop_prob=drop_path_rate * (index + j) / max(1, total - 1)) for j in range(depth)])
        index += depth
    layers.update(pool=nn.AdaptiveAvgPool2d(1), norm=LayerNorm2d(dims[-1], eps=1e-6), flatten=nn.Flatten(),
                  fc=nn.Linear(dims[-1], num_classes))
    return nn.Sequential(layers)


FASHION_DEPTHS, FASHION_DIMS = (1, 1, 3, 1), (24, 48, 96, 192)
"""Our Fashion-MNIST ConvNeXt: ConvNeXt-T's stage ratio 3:3:9:3 divided by 3, its widths by 4."""


@register("convnext", "fashion", input_shape=(1, 1, 32, 32), reference_params=671_074,
          modern={"lr": 0.1, "init": "pytorch"})
def convnext_fashion() -> nn.Sequential:
    """A small ConvNeXt for Fashion-MNIST resized to 32x32 (our design): ``FASHION_DEPTHS`` blocks
    of ``FASHION_DIMS`` channels, a 2x2 patchify stem.

    32x32, not 28x28, because the 2x2 stride-2 layers need even maps: 32 -> 16 -> 8 -> 4 -> 2
    (28 would leave 7 -> 3 and drop a row and a column). Layer scale starts at 1, not the paper's
    1e-6: the paper trains with AdamW, whose steps do not shrink with the gradient, and with our SGD
    the tiny start learned more slowly (3 epochs on 3,000 images, one run each: test accuracy 0.648
    with 1e-6, 0.709 with 1). No stochastic depth for so shallow a network.

    Its modern recipe initialises it with PyTorch's per-layer defaults (``init="pytorch"``), not
    the recipe's "kaiming": that gives every Linear layer the small weights of a classifier (std
    0.01), and here the Linear layers are the blocks' 1x1 convolutions. With them the network
    underfit (all the data, 10 epochs: train accuracy 0.879, test 0.883 on the CPU, 0.886 on a
    GPU); on 1,000 images per class for 4 epochs (one seed, one thread, 2026-12-04) PyTorch's
    defaults reached test accuracy 0.821 against 0.792, as much as AdamW with the paper's peak
    learning rate and weight decay (0.823), and more than a learning rate of 0.2 or 0.4, a wider or
    deeper network, no label smoothing, or the paper's truncated normal with std 0.02 (0.79-0.81;
    `measurements/convnext-fashion-probe.jsonl`).
    """
    return convnext(FASHION_DEPTHS, FASHION_DIMS, in_channels=1, num_classes=10, patch=2, layer_scale=1.0)


@register("convnext_tiny", "paper", input_shape=(1, 3, 224, 224), reference_params=28_589_128)
def convnext_tiny_paper() -> nn.Sequential:
    """ConvNeXt-T: 3, 3, 9, 3 blocks of 96, 192, 384, 768 channels, layer scale 1e-6, stochastic
    depth up to 0.1 (torchvision's ``convnext_tiny``)."""
    return convnext((3, 3, 9, 3), (96, 192, 384, 768), drop_path_rate=0.1)
