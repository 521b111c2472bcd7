"""ResNeXt, SENet and MobileNet: pinned parameter counts, the paper configurations computing what
torchvision's compute, and the claims their lessons make (grouped = parallel convolutions, the
book's ResNeXt groups, SE weights, depthwise separable costs, width multipliers)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import inspect, models
from d2lcnn.models.mobilenet import DepthwiseSeparable, InvertedResidual, make_divisible
from d2lcnn.models.resnext import ResNeXtBlock
from d2lcnn.models.senet import SEBottleneck, SEResidual, SqueezeExcitation
from tests.test_models import assert_same_outputs, count, load_in_order, on_meta, random_weights

# Parameter counts: pinned once, with every other network's, in tests/test_models.py (PINNED).


@pytest.mark.parametrize("name", ["resnext", "se_resnet", "mobilenet_v1", "mobilenet_v2"])
def test_fashion_configs_take_native_28x28(name):
    spec = models.spec(name)
    assert spec.input_shape == (1, 1, 28, 28) and spec.book is None
    with torch.no_grad():
        assert spec.build().eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", ["resnext50_32x4d", "mobilenet_v2"])
def test_paper_configs_compute_what_torchvision_computes(name):
    """Same layers in the same order: torchvision's random weights, loaded in order, give its outputs."""
    ours = on_meta(models.build, name, "paper").to_empty(device="cpu").eval()
    theirs = random_weights(on_meta(getattr(torchvision.models, name)))
    load_in_order(ours, theirs)
    assert_same_outputs(ours, theirs)


def test_se_resnet50_is_resnet50_plus_se_blocks():
    """16 SE blocks of reduction 16 on 256 (x3), 512 (x4), 1024 (x6), 2048 (x3) channels."""
    blocks = {256: 3, 512: 4, 1024: 6, 2048: 3}
    weights = sum(n * 2 * c * (c // 16) for c, n in blocks.items())
    biases = sum(n * (c + c // 16) for c, n in blocks.items())
    assert (weights, biases) == (2_514_944, 16_048)
    assert count(on_meta(models.build, "se_resnet50", "paper")) == 25_557_032 + weights + biases
    se = [m for m in on_meta(models.build, "se_resnet50", "paper").modules() if isinstance(m, SqueezeExcitation)]
    assert len(se) == 16


def test_grouped_convolution_is_parallel_convolutions_on_channel_slices():
    torch.manual_seed(0)
    g, x = 4, torch.randn(2, 16, 9, 9)
    grouped = nn.Conv2d(16, 32, 3, padding=1, groups=g, bias=False)
    parts = [nn.Conv2d(4, 8, 3, padding=1, bias=False) for _ in range(g)]
    with torch.no_grad():
        for i, part in enumerate(parts):
            part.weight.copy_(grouped.weight[8 * i: 8 * (i + 1)])
        side_by_side = torch.cat([part(x[:, 4 * i: 4 * (i + 1)]) for i, part in enumerate(parts)], dim=1)
        torch.testing.assert_close(grouped(x), side_by_side)
    assert count(nn.Conv2d(16, 32, 3, bias=False)) == g * count(grouped)


def test_resnext_block_passes_cardinality_as_groups():
    block = ResNeXtBlock(64, 256, cardinality=32, group_width=4, use_1x1conv=True)
    assert block.conv2.groups == 32 and block.conv2.in_channels == 128
    assert block(torch.zeros(1, 64, 8, 8)).shape == (1, 256, 8, 8)
    net = on_meta(models.build, "resnext50_32x4d", "paper")
    assert {m.groups for n, m in net.named_modules() if n.endswith("conv2")} == {32}


def test_the_books_resnext_block_passes_the_group_width():
    """d2l-en 1.0's ResNeXtBlock(num_channels=32, groups=16, bot_mul=1) makes 2 groups, not 16."""
    d2l = pytest.importorskip("d2l.torch")
    book = d2l.ResNeXtBlock(32, groups=16, bot_mul=1)
    assert book.conv2.groups == 2
    ours = ResNeXtBlock(32, 32, cardinality=16, group_width=2)
    assert ours.conv2.groups == 16


def test_squeeze_excitation_weighs_channels_per_image():
    torch.manual_seed(0)
    se = SqueezeExcitation(32, reduction=8).eval()
    weights = {}
    se.gate.register_forward_hook(lambda m, i, o: weights.setdefault("w", o))
    x = torch.randn(3, 32, 5, 5)
    y = se(x)
    w = weights["w"]
    assert w.shape == (3, 32, 1, 1) and ((w > 0) & (w < 1)).all()
    torch.testing.assert_close(y, x * w)
    assert not torch.allclose(w[0], w[1])               # another image, other weights
    assert count(se) == 32 * 4 + 4 + 4 * 32 + 32


def test_se_blocks_keep_shapes():
    x = torch.zeros(2, 32, 8, 8)
    assert SEResidual(32, 64, use_1x1conv=True, stride=2)(x).shape == (2, 64, 4, 4)
    assert SEBottleneck(32, 16, use_1x1conv=True)(x).shape == (2, 64, 8, 8)


def test_depthwise_separable_costs():
    c_in, c_out = 128, 256
    standard = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    separable = DepthwiseSeparable(c_in, c_out)
    convs = [m for m in separable.modules() if isinstance(m, nn.Conv2d)]
    assert sum(count(m) for m in convs) == 9 * c_in + c_in * c_out
    flops = {n: inspect.layer_table(m, (1, c_in, 14, 14)).total_flops for n, m in
             [("standard", standard), ("separable", separable)]}
    assert flops["standard"] == 2 * 14 * 14 * 9 * c_in * c_out
    assert flops["separable"] == 2 * 14 * 14 * (9 * c_in + c_in * c_out)


def test_layer_table_counts_grouped_and_depthwise_flops():
    for groups in (1, 4, 64):
        conv = nn.Conv2d(64, 64, 3, padding=1, groups=groups, bias=False)
        assert inspect.layer_table(conv, (1, 64, 10, 10)).total_flops == 2 * 100 * 64 * 9 * 64 // groups


def test_inverted_residual_shortcut_only_when_shape_is_kept():
    x = torch.zeros(2, 24, 8, 8)
    assert InvertedResidual(24, 24).use_shortcut
    assert not InvertedResidual(24, 32).use_shortcut
    assert InvertedResidual(24, 32, stride=2)(x).shape == (2, 32, 4, 4)
    assert isinstance(InvertedResidual(24, 16, expansion=1).expand, nn.Identity)
    last = InvertedResidual(24, 24).project
    assert not any(isinstance(m, (nn.ReLU, nn.ReLU6)) for m in last.modules())   # the linear bottleneck


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.3])
def test_mobilenet_v2_width_multiplier_matches_torchvision(width):
    ours = on_meta(models.build, "mobilenet_v2", "paper", width=width)
    assert count(ours) == count(on_meta(torchvision.models.mobilenet_v2, width_mult=width))


def test_make_divisible_as_torchvision():
    from torchvision.models._utils import _make_divisible

    for v in [3.2, 8, 11.9, 12, 16.8, 24 * 0.35, 96 * 0.75, 1280 * 1.3, 100, 4]:
        assert make_divisible(v) == _make_divisible(v, 8)


def test_mobilenet_v1_width_multiplier():
    """Parameters fall roughly with the square of the width: 4.2 M, 2.6 M, 1.3 M, 0.5 M."""
    counts = [count(on_meta(models.build, "mobilenet_v1", "paper", width=w)) for w in (1.0, 0.75, 0.5, 0.25)]
    assert [round(c / 1e5) / 10 for c in counts] == [4.2, 2.6, 1.3, 0.5]
