"""GoogLeNet / Inception v1 (Szegedy et al., 2014): parallel branches joined by concatenation.

An Inception block looks at its input through four branches at once: a 1x1 convolution, a 3x3
and a 5x5 convolution (each after a 1x1 "bottleneck" that cuts the channels first), and a 3x3
max pool followed by a 1x1 convolution. Their outputs are stacked along the channels. The 1x1
bottlenecks are what keep the block cheap.

Two configurations, one builder:

* ``fashion`` is the book's network: convolutions with biases and ReLU, every stage pool 3x3
  stride 2 padded by 1, no dropout; 5,977,530 parameters on 1-channel 96x96 images.
* ``paper`` computes exactly what torchvision's ``googlenet`` (without auxiliary classifiers)
  computes, so that its ImageNet weights could be loaded in order. How that differs from the
  2014 paper is listed in :func:`googlenet_paper`.

Every layer names its ``in_channels`` / ``in_features`` (the book's d2l-en 1.0 code uses lazy
layers, which learn them at the first forward pass), so the parameter count is known before any
input is seen.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from . import register


def conv_relu(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Sequential:
    """A convolution (with bias) followed by ReLU: the 2014 paper's and the book's layer."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, **kwargs), nn.ReLU())


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, **kwargs) -> nn.Sequential:
    """A convolution without bias, BatchNorm, ReLU: the layer of Inception v2/v3 and torchvision.

    BatchNorm's shift makes a bias redundant. ``eps=1e-3`` (PyTorch's default is 1e-5) is what
    torchvision's GoogLeNet and Inception v3 use, after the TensorFlow models they were ported from.
    """
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size, bias=False, **kwargs),
                         nn.BatchNorm2d(out_channels, eps=1e-3), nn.ReLU())


class Inception(nn.Module):
    """Four parallel branches whose outputs are concatenated along the channels.

    Args:
        c1: channels of the 1x1 branch.
        c2: (bottleneck, output) channels of the 3x3 branch.
        c3: (bottleneck, output) channels of the 5x5 branch.
        c4: channels of the 1x1 convolution after the 3x3 max pool.
        conv: the layer every convolution is made of, ``conv_relu`` or ``conv_bn_relu``.
        c3_kernel: the kernel of the third branch: 5 in the paper, 3 in torchvision's network.
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int,
                 conv: Callable[..., nn.Module] = conv_relu, c3_kernel: int = 5):
        super().__init__()
        self.branch1 = conv(in_channels, c1, 1)
        self.branch2 = nn.Sequential(conv(in_channels, c2[0], 1), conv(c2[0], c2[1], 3, padding=1))
        self.branch3 = nn.Sequential(conv(in_channels, c3[0], 1),
                                     conv(c3[0], c3[1], c3_kernel, padding=c3_kernel // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(in_channels, c4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def stage_pool(pooling: str, kernel_size: int = 3) -> nn.MaxPool2d:
    """The max pool that halves the map between stages.

    ``"padded"`` (the book's): 3x3, stride 2, padding 1. ``"ceil"`` (torchvision's, after Caffe):
    no padding, and the output size rounded up, so the last window may hang over the edge.
    Both turn 112 into 56; they differ in where the windows sit.
    """
    if pooling == "padded":
        return nn.MaxPool2d(kernel_size, stride=2, padding=1)
    if pooling == "ceil":
        return nn.MaxPool2d(kernel_size, stride=2, ceil_mode=True)
    raise ValueError(f"pooling must be 'padded' or 'ceil', got {pooling!r}")


def googlenet(in_channels: int = 1, num_classes: int = 10, dropout: float = 0.0,
              conv: Callable[..., nn.Module] = conv_relu, c3_kernel: int = 5, pooling: str = "padded",
              last_pool: int = 3) -> nn.Sequential:
    """The five stages b1..b5 of GoogLeNet, then global average pooling and one linear layer.

    The stages are named as in the book, so layers read "b3.0.branch2" (stage b3, its first
    Inception block, the 3x3 branch). The defaults are the book's network; ``googlenet_paper``
    shows the arguments that make torchvision's.

    Args:
        dropout: dropout before the classifier (0 leaves the layer out).
        conv: ``conv_relu`` (paper, book) or ``conv_bn_relu`` (torchvision).
        c3_kernel: kernel of each block's third branch (5, or torchvision's 3).
        pooling: ``"padded"`` or ``"ceil"`` stage pools (see :func:`stage_pool`).
        last_pool: kernel of the pool between b4 and b5 (torchvision's is 2).
    """
    def block(*channels):
        return Inception(*channels, conv=conv, c3_kernel=c3_kernel)

    b1 = nn.Sequential(conv(in_channels, 64, 7, stride=2, padding=3), stage_pool(pooling))
    b2 = nn.Sequential(conv(64, 64, 1), conv(64, 192, 3, padding=1), stage_pool(pooling))
    b3 = nn.Sequential(block(192, 64, (96, 128), (16, 32), 32),
                       block(256, 128, (128, 192), (32, 96), 64),
                       stage_pool(pooling))
    b4 = nn.Sequential(block(480, 192, (96, 208), (16, 48), 64),
                       block(512, 160, (112, 224), (24, 64), 64),
                       block(512, 128, (128, 256), (24, 64), 64),
                       block(512, 112, (144, 288), (32, 64), 64),
                       block(528, 256, (160, 320), (32, 128), 128),
                       stage_pool(pooling, last_pool))
    b5 = nn.Sequential(block(832, 256, (160, 320), (32, 128), 128),
                       block(832, 384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    head = {"dropout": nn.Dropout(dropout)} if dropout else {}
    return nn.Sequential(OrderedDict(b1=b1, b2=b2, b3=b3, b4=b4, b5=b5, **head, fc=nn.Linear(1024, num_classes)))


@register("googlenet", "fashion", input_shape=(1, 1, 96, 96), reference_params=5_977_530,
          book={"batch_size": 128, "lr": 0.1, "resize": 96, "epochs": 10})
def googlenet_fashion() -> nn.Sequential:
    """The book's GoogLeNet for 1-channel 96x96 Fashion-MNIST and 10 classes."""
    return googlenet(1, 10)


@register("googlenet", "paper", input_shape=(1, 3, 224, 224), reference_params=6_624_904)
def googlenet_paper() -> nn.Sequential:
    """GoogLeNet as torchvision builds it (no auxiliary classifiers): 6,624,904 parameters.

    It computes exactly what ``torchvision.models.googlenet(aux_logits=False)`` computes (the
    tests load torchvision's weights in order and compare the outputs). That network differs
    from the 2014 paper's Table 1 in six ways:

    1. the "5x5" branch of every block uses a 3x3 convolution (380,928 fewer weights);
    2. every convolution is followed by BatchNorm (eps 1e-3) and has no bias (7,280 more
       parameters: a scale and a shift per channel, minus the biases);
    3. no local response normalisation (the paper has two, in the stem; they have no parameters);
    4. the stage max pools round their output size up (``ceil_mode``) without padding;
    5. the fourth stage pool is 2x2 with stride 2 (the paper's is 3x3 with stride 2);
    6. dropout 0.2 before the classifier (the paper's is 0.4).

    The paper's own network, ``googlenet(3, 1000, dropout=0.4)``, has 6,998,552 parameters:
    6,998,552 - 380,928 + 7,280 = 6,624,904.
    """
    return googlenet(3, 1000, dropout=0.2, conv=conv_bn_relu, c3_kernel=3, pooling="ceil", last_pool=2)
