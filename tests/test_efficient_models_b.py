"""ShuffleNet and EfficientNet: parameter counts on the meta device, the paper configurations
computing exactly what torchvision's compute (its random weights loaded into ours, in order, in
eval mode), what the channel shuffle does to the information flow, the blocks' shapes and
rules, compound scaling, and FLOPs of grouped and depthwise convolutions."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import inspect, models
from d2lcnn.models.efficientnet import (
    ALPHA,
    BETA,
    GAMMA,
    MBConv,
    SqueezeExcite,
    compound_scaling,
    drop_path,
    round_channels,
    round_repeats,
)
from d2lcnn.models.shufflenet import (
    ChannelShuffle,
    ShuffleV1Unit,
    ShuffleV2Block,
    channel_shuffle,
)
from tests.test_models import assert_same_outputs, load_in_order, on_meta, random_weights

# Parameter counts: pinned once, with every other network's, in tests/test_models.py (PINNED).

TORCHVISION = {"shufflenet_v2": "shufflenet_v2_x1_0", "efficientnet_b0": "efficientnet_b0",
               "efficientnet_b1": "efficientnet_b1", "efficientnet_b2": "efficientnet_b2",
               "efficientnet_b3": "efficientnet_b3"}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_paper_counts_equal_torchvision(name):
    theirs = on_meta(getattr(torchvision.models, TORCHVISION[name]))
    assert inspect.count_params(on_meta(models.build, name, "paper")) == inspect.count_params(theirs)


@pytest.mark.parametrize("name", ["shufflenet_v2", "efficientnet_b0"])
def test_paper_configs_compute_what_torchvision_computes(name):
    """torchvision's weights, loaded in order, give its outputs (eval mode: no dropout, no
    stochastic depth, BatchNorm on its running statistics)."""
    ours = on_meta(models.build, name, "paper").to_empty(device="cpu").eval()
    theirs = random_weights(on_meta(getattr(torchvision.models, TORCHVISION[name])))
    load_in_order(ours, theirs)
    assert_same_outputs(ours, theirs, batch=2)


@pytest.mark.parametrize("name", ["shufflenet_v2", "efficientnet_b0"])
def test_fashion_configs_take_28x28(name):
    net = models.build(name).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_channel_shuffle_interleaves_groups():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]
    assert not list(ChannelShuffle(3).parameters())
    with pytest.raises(ValueError, match="divisible"):
        channel_shuffle(torch.zeros(1, 5, 2, 2), 2)


def reach(layers: nn.Module, channels: int) -> torch.Tensor:
    """Which input channels each output channel depends on: |d out_i / d in_j| > 0, by autograd."""
    x = torch.randn(1, channels, 1, 1, requires_grad=True)
    out = layers(x).flatten()
    rows = [torch.autograd.grad(out[i], x, retain_graph=True)[0].flatten() != 0 for i in range(out.numel())]
    return torch.stack(rows)


def test_shuffle_lets_every_output_see_every_input():
    torch.manual_seed(0)
    g1, g2 = nn.Conv2d(12, 12, 1, groups=3), nn.Conv2d(12, 12, 1, groups=3)
    without = reach(nn.Sequential(g1, g2), 12)
    with_shuffle = reach(nn.Sequential(g1, ChannelShuffle(3), g2), 12)
    assert without.sum() == 12 * 4                  # block diagonal: each output sees its group's 4 inputs
    assert bool(with_shuffle.all())                 # every output sees all 12 inputs


def test_shufflenet_units_shapes_and_rules():
    x = torch.zeros(2, 240, 8, 8)
    assert ShuffleV1Unit(240, 240, groups=3)(x).shape == (2, 240, 8, 8)
    assert ShuffleV1Unit(240, 480, groups=3, stride=2)(x).shape == (2, 480, 4, 4)
    assert ShuffleV2Block(240, 240)(x).shape == (2, 240, 8, 8)
    assert ShuffleV2Block(240, 464, stride=2)(x).shape == (2, 464, 4, 4)
    with pytest.raises(ValueError, match="in_channels"):
        ShuffleV1Unit(240, 480)
    with pytest.raises(ValueError, match="even"):
        ShuffleV2Block(240, 240 + 1, stride=2)


def test_shufflenet_v2_stride1_block_leaves_half_the_channels_untouched():
    block = ShuffleV2Block(8, 8).eval()
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        out = block(x)
    # after the shuffle of two halves the untouched left half sits at the even positions
    torch.testing.assert_close(out[:, 0::2], x[:, :4])


def test_squeeze_excite_gates_channels_between_0_and_1():
    se = SqueezeExcite(16, 4)
    x = torch.rand(3, 16, 5, 5) + 0.1
    ratio = se(x) / x
    assert (ratio > 0).all() and (ratio < 1).all()
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio))   # one gate per channel and image


def test_mbconv_shortcut_and_stochastic_depth():
    assert MBConv(16, 16).use_shortcut and not MBConv(16, 24).use_shortcut
    assert not MBConv(16, 16, stride=2).use_shortcut
    assert MBConv(16, 24, stride=2)(torch.zeros(1, 16, 8, 8)).shape == (1, 24, 4, 4)
    x = torch.ones(10_000, 1, 1, 1)
    assert torch.equal(drop_path(x, 0.3, training=False), x)
    dropped = drop_path(x, 0.3, training=True)
    kept = dropped[dropped != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))
    assert abs(dropped.mean().item() - 1.0) < 0.05          # unchanged in expectation


def test_compound_scaling_doubles_flops_per_step():
    assert (ALPHA, BETA, GAMMA) == (1.2, 1.1, 1.15)
    assert compound_scaling(1)["flops"] == pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2) == pytest.approx(1.92, abs=0.01)
    assert compound_scaling(0) == {"depth": 1, "width": 1, "resolution": 1, "flops": 1}
    assert [round_channels(c, 1.1) for c in (32, 16, 24, 40, 320)] == [32, 16, 24, 48, 352]
    assert round_channels(16, 0.5) == 8 and round_repeats(3, 1.1) == 4 and round_repeats(1, 1.4) == 2


def test_fashion_efficientnet_scales_in_width_and_depth():
    base = on_meta(models.build, "efficientnet_b0")
    deeper = on_meta(models.build, "efficientnet_b0", depth=2.0)
    wider = on_meta(models.build, "efficientnet_b0", width=1.5)
    assert sum(isinstance(m, MBConv) for m in deeper.modules()) == 2 * sum(isinstance(m, MBConv) for m in base.modules())
    assert inspect.count_params(wider) > 1.8 * inspect.count_params(base)
    net = models.build("efficientnet_b0", width=1.1, depth=1.2).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 10)    # any resolution: global pooling


def test_flops_of_grouped_and_depthwise_convolutions():
    """The layer table counts k*k*(C_in/groups) multiply-adds per output value, 2 FLOPs each."""
    for groups in (1, 4, 16):
        conv = nn.Conv2d(16, 32, 3, padding=1, groups=groups, bias=False)
        assert inspect.layer_table(conv, (1, 16, 8, 8)).total_flops == 2 * 9 * (16 // groups) * 32 * 8 * 8
    depthwise = nn.Conv2d(16, 16, 5, padding=2, groups=16, bias=False)
    assert inspect.layer_table(depthwise, (1, 16, 8, 8)).total_flops == 2 * 25 * 16 * 8 * 8
