"""Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens and Wojna, 2016): cheaper convolutions, same view.

"Rethinking the Inception Architecture for Computer Vision" keeps GoogLeNet's idea (parallel
branches, concatenated) and makes every branch cheaper without shrinking what it sees:

* **A 5x5 convolution becomes two 3x3 ones** (:func:`inception_a`): the same 5x5 field of view
  for 9 + 9 = 18 weights per channel pair instead of 25, 28% fewer.
* **An n x n convolution becomes 1 x n then n x 1** (:func:`inception_c`, n = 7): 2n weights
  instead of n², 71% fewer for n = 7. The paper uses it on the 17x17 maps.
* **Grid-size reduction in parallel** (:func:`reduction_a`, :func:`reduction_b`): a stride-2
  convolution branch next to a stride-2 pool branch, concatenated; cheaper than a convolution
  at full size followed by a pool, and without the information bottleneck of pooling first.
* **Wider at the end** (:func:`inception_e`): on the 8x8 maps the 1x3 and 3x1 convolutions run
  side by side instead of one after the other, and their outputs are concatenated.
* **BatchNorm after every convolution** (:func:`conv_bn_relu`, shared with GoogLeNet's module).

The block structure and channel counts are torchvision's ``inception_v3`` (the TensorFlow
model it was ported from), so that the ``paper`` configuration computes exactly what
torchvision's computes; the tests prove it. The auxiliary classifier is left out.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from . import register
from .googlenet import conv_bn_relu


class Branches(nn.Module):
    """Run several branches on the same input and concatenate their outputs along the channels.

    The branches are named ``branch1``, ``branch2``, ... in the order given (and concatenated in
    that order), so a layer reads "mixed5b.branch3.1" (the second layer of the third branch).
    """

    def __init__(self, *branches: nn.Module):
        super().__init__()
        for i, branch in enumerate(branches, start=1):
            self.add_module(f"branch{i}", branch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def pool_branch(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 average pool (stride 1, so the map keeps its size), then a 1x1 projection."""
    return nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, out_channels, 1))


def inception_a(in_channels: int, pool_channels: int) -> Branches:
    """The 35x35 block (paper, Figure 5): the 5x5 of GoogLeNet's block is *two 3x3* here.

    torchvision's (and TensorFlow's) version also keeps a plain 5x5 branch next to the
    factorised one: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1.
    """
    return Branches(
        conv_bn_relu(in_channels, 64, 1),
        nn.Sequential(conv_bn_relu(in_channels, 48, 1), conv_bn_relu(48, 64, 5, padding=2)),
        nn.Sequential(conv_bn_relu(in_channels, 64, 1), conv_bn_relu(64, 96, 3, padding=1),
                      conv_bn_relu(96, 96, 3, padding=1)),
        pool_branch(in_channels, pool_channels))


def reduction_a(in_channels: int) -> Branches:
    """35x35 -> 17x17 (paper, Figure 10): stride-2 convolutions beside a stride-2 max pool."""
    return Branches(
        conv_bn_relu(in_channels, 384, 3, stride=2),
        nn.Sequential(conv_bn_relu(in_channels, 64, 1), conv_bn_relu(64, 96, 3, padding=1),
                      conv_bn_relu(96, 96, 3, stride=2)),
        nn.MaxPool2d(3, stride=2))


def inception_c(in_channels: int, c7: int) -> Branches:
    """The 17x17 block (paper, Figure 6): every 7x7 is a 1x7 followed by a 7x1.

    ``c7`` is the width inside the factorised branches (128, 160, 160, 192 in the four blocks).
    """
    def one_by_seven(cin, cout):
        return conv_bn_relu(cin, cout, (1, 7), padding=(0, 3))

    def seven_by_one(cin, cout):
        return conv_bn_relu(cin, cout, (7, 1), padding=(3, 0))

    return Branches(
        conv_bn_relu(in_channels, 192, 1),
        nn.Sequential(conv_bn_relu(in_channels, c7, 1), one_by_seven(c7, c7), seven_by_one(c7, 192)),
        nn.Sequential(conv_bn_relu(in_channels, c7, 1), seven_by_one(c7, c7), one_by_seven(c7, c7),
                      seven_by_one(c7, c7), one_by_seven(c7, 192)),
        pool_branch(in_channels, 192))


def reduction_b(in_channels: int) -> Branches:
    """17x17 -> 8x8: two stride-2 convolution branches (one factorised 7x7 first) and a max pool."""
    return Branches(
        nn.Sequential(conv_bn_relu(in_channels, 192, 1), conv_bn_relu(192, 320, 3, stride=2)),
        nn.Sequential(conv_bn_relu(in_channels, 192, 1), conv_bn_relu(192, 192, (1, 7), padding=(0, 3)),
                      conv_bn_relu(192, 192, (7, 1), padding=(3, 0)), conv_bn_relu(192, 192, 3, stride=2)),
        nn.MaxPool2d(3, stride=2))


def split_1x3_3x1(channels: int) -> Branches:
    """A 1x3 and a 3x1 convolution side by side, concatenated: twice the channels out."""
    return Branches(conv_bn_relu(channels, channels, (1, 3), padding=(0, 1)),
                    conv_bn_relu(channels, channels, (3, 1), padding=(1, 0)))


def inception_e(in_channels: int) -> Branches:
    """The 8x8 block (paper, Figure 7): the factorised convolutions fan out instead of chaining,
    so the last, coarsest maps get 2,048 channels."""
    return Branches(
        conv_bn_relu(in_channels, 320, 1),
        nn.Sequential(conv_bn_relu(in_channels, 384, 1), split_1x3_3x1(384)),
        nn.Sequential(conv_bn_relu(in_channels, 448, 1), conv_bn_relu(448, 384, 3, padding=1), split_1x3_3x1(384)),
        pool_branch(in_channels, 192))


def inception_v3(in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> nn.Sequential:
    """Inception v3 without its auxiliary classifier, for 299x299 images.

    A stem of plain 3x3 convolutions (the paper factorises GoogLeNet's 7x7 into them) takes the
    image to 35x35x192; three ``inception_a`` blocks, a reduction to 17x17, four
    ``inception_c``, a reduction to 8x8, two ``inception_e``; global average pooling, dropout and
    one linear layer. Layers are named as torchvision's (``Mixed_5b`` is ``mixed5b`` here).
    """
    layers = OrderedDict(
        conv1a=conv_bn_relu(in_channels, 32, 3, stride=2),     # 149x149
        conv2a=conv_bn_relu(32, 32, 3),                        # 147x147
        conv2b=conv_bn_relu(32, 64, 3, padding=1),
        pool1=nn.MaxPool2d(3, stride=2),                       # 73x73
        conv3b=conv_bn_relu(64, 80, 1),
        conv4a=conv_bn_relu(80, 192, 3),                       # 71x71
        pool2=nn.MaxPool2d(3, stride=2),                       # 35x35
        mixed5b=inception_a(192, 32), mixed5c=inception_a(256, 64), mixed5d=inception_a(288, 64),
        mixed6a=reduction_a(288),                              # 17x17
        mixed6b=inception_c(768, 128), mixed6c=inception_c(768, 160),
        mixed6d=inception_c(768, 160), mixed6e=inception_c(768, 192),
        mixed7a=reduction_b(768),                              # 8x8
        mixed7b=inception_e(1280), mixed7c=inception_e(2048),
        pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(), dropout=nn.Dropout(dropout),
        fc=nn.Linear(2048, num_classes))
    return nn.Sequential(layers)


@register("inception_v3", "paper", input_shape=(1, 3, 299, 299), reference_params=23_834_568)
def inception_v3_paper() -> nn.Sequential:
    """Inception v3 as torchvision builds it, without the auxiliary classifier: 23,834,568 parameters."""
    return inception_v3()
