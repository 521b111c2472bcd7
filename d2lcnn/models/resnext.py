"""ResNeXt (Xie, Girshick, Dollar, Tu and He, CVPR 2017): many thin paths instead of one wide one.

A ResNeXt block is ResNet's bottleneck block whose 3x3 convolution is split into ``cardinality``
parallel paths, each ``group_width`` channels wide, that never see each other's channels. One
``nn.Conv2d(width, width, 3, groups=cardinality)`` is exactly those paths side by side, with
``cardinality`` times fewer weights and multiply-adds than a plain 3x3 convolution of the same
width. The paper's finding: at equal cost, more paths (higher cardinality) beat a wider or a
deeper ResNet.

``groups`` in ``nn.Conv2d`` is the *number* of groups, i.e. the cardinality. The book's d2l-en
1.0 ``ResNeXtBlock`` passes ``bot_channels // groups`` there, the channels per group, so a block
meant to have 32 paths of 4 channels gets 4 paths of 32 (d2l-ai/d2l-en pull request #2730).

The ImageNet network ResNeXt-50 (32x4d) reuses ResNet's 7x7 stem and stage depths (3, 4, 6, 3);
it is 25,028,904 parameters, as torchvision's ``resnext50_32x4d``, and computes what it computes.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from . import register
from .resnet import Bottleneck
from .resnet import stem as imagenet_stem


class ResNeXtBlock(Bottleneck):
    """Bottleneck block with a grouped 3x3 convolution: 1x1 down, ``cardinality`` paths, 1x1 up.

    The middle has ``width = cardinality * group_width`` channels. As in torchvision, the stride
    sits on the 3x3 convolution, the convolutions have no bias (BatchNorm follows each) and a
    projected shortcut is a 1x1 convolution followed by BatchNorm: it is ResNet's ``Bottleneck``
    with its 3x3 convolution split into ``cardinality`` groups.

    Args:
        in_channels, out_channels: the block's input and output channels.
        cardinality: the number of paths, passed to ``nn.Conv2d`` as ``groups``.
        group_width: the channels of each path ("4d" in "32x4d").
        stride: 2 halves the map.
        use_1x1conv: project the shortcut (needed when the shape changes).
    """

    def __init__(self, in_channels: int, out_channels: int, cardinality: int, group_width: int,
                 stride: int = 1, use_1x1conv: bool = False):
        super().__init__(in_channels, cardinality * group_width, use_1x1conv=use_1x1conv, stride=stride,
                         out_channels=out_channels, groups=cardinality)


def resnext_stage(in_channels: int, out_channels: int, num_blocks: int, cardinality: int, group_width: int,
                  stride: int = 2) -> nn.Sequential:
    """``num_blocks`` ResNeXt blocks; the first changes the shape (``stride``) and projects its shortcut."""
    blocks = [ResNeXtBlock(in_channels, out_channels, cardinality, group_width, stride=stride, use_1x1conv=True)]
    blocks += [ResNeXtBlock(out_channels, out_channels, cardinality, group_width) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def resnext(blocks_per_stage: tuple[int, ...], cardinality: int, group_width: int, stem: nn.Module,
            stem_channels: int, out_channels: tuple[int, ...], strides: tuple[int, ...],
            num_classes: int) -> nn.Sequential:
    """A ResNeXt: ``stem``, stages b2, b3, ... global average pooling, a linear classifier.

    Every stage doubles the paths' width (``group_width * 2**i``) and keeps the cardinality, as
    in the paper; stage i starts with stride ``strides[i]`` (2 halves the map). Layers read
    "b3.0.conv2" (stage b3, its first block, the grouped convolution).
    """
    stages, channels = OrderedDict(b1=stem), stem_channels
    for i, (n, out, stride) in enumerate(zip(blocks_per_stage, out_channels, strides)):
        stages[f"b{i + 2}"] = resnext_stage(channels, out, n, cardinality, group_width * 2 ** i, stride)
        channels = out
    return nn.Sequential(OrderedDict(**stages, pool=nn.AdaptiveAvgPool2d((1, 1)), flatten=nn.Flatten(),
                                     fc=nn.Linear(channels, num_classes)))


def small_stem(in_channels: int, channels: int) -> nn.Sequential:
    """One 3x3 convolution, BatchNorm, ReLU, at full resolution: a 28x28 image stays 28x28."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                         nn.ReLU())


@register("resnext", "fashion", input_shape=(1, 1, 28, 28), reference_params=231_018, modern={"lr": 0.1})
def resnext_fashion(cardinality: int = 8, group_width: int = 8) -> nn.Sequential:
    """A small ResNeXt (8x8d) for native 28x28 Fashion-MNIST: a 3x3 stem at 28x28, stages at 14 and 7.

    The ImageNet stem (7x7 stride 2, then max pooling) would leave a 28x28 image at 7x7 before the
    first block; this one keeps the full resolution for one cheap convolution, and its two stages
    of two blocks halve it twice (14x14 with 128 channels, 7x7 with 256; paths 8 and 16 wide).
    """
    return resnext((2, 2), cardinality, group_width, small_stem(1, 32), 32, out_channels=(128, 256),
                   strides=(2, 2), num_classes=10)


@register("resnext50_32x4d", "paper", input_shape=(1, 3, 224, 224), reference_params=25_028_904)
def resnext50_32x4d_paper() -> nn.Sequential:
    """ResNeXt-50 (32x4d): ResNet-50's layout with 32 paths of 4, 8, 16, 32 channels; 25,028,904 parameters.

    The same as torchvision's ``resnext50_32x4d``: its middle widths 128, 256, 512, 1024 are 32
    paths of 4, 8, 16, 32 channels; its outputs 256, 512, 1024, 2048 as ResNet-50's.
    """
    return resnext((3, 4, 6, 3), 32, 4, imagenet_stem(3, bias=False), 64, out_channels=(256, 512, 1024, 2048),
                   strides=(1, 2, 2, 2), num_classes=1000)
