"""RegNet, ConvNeXt, the design-space tools and the ConvNeXt roadmap: the paper configurations
computing what torchvision's compute, RegNet's width rule as torchvision's, and the claims lessons
15 and 16 make (FLOPs counted by hand, constrained sampling, EDF, one change per roadmap step)."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import design, inspect, models, roadmap
from d2lcnn.models.convnext import ConvNeXtBlock, LayerNorm2d, convnext
from d2lcnn.models.regnet import YBlock, compatible, from_torchvision, regnet_widths
from tests.test_models import assert_same_outputs, count, load_in_order, on_meta, random_weights

# Parameter counts: pinned once, with every other network's, in tests/test_models.py (PINNED).


@pytest.mark.parametrize("name", ["regnet", "convnext"])
def test_fashion_configs_give_one_score_per_class(name):
    spec = models.spec(name)
    assert spec.book is None
    with torch.no_grad():
        assert spec.build().eval()(torch.zeros(2, *spec.input_shape[1:])).shape == (2, 10)


@pytest.mark.parametrize("name, theirs", [("regnetx_400mf", "regnet_x_400mf"), ("regnety_400mf", "regnet_y_400mf")])
def test_regnet_paper_configs_compute_what_torchvision_computes(name, theirs):
    """torchvision's random weights (BatchNorm statistics included), renamed, give its outputs."""
    ours = on_meta(models.build, name, "paper").to_empty(device="cpu").eval()
    reference = random_weights(getattr(torchvision.models, theirs)())   # its width rule cannot run on meta
    renamed = from_torchvision(reference.state_dict())
    assert set(renamed) == set(ours.state_dict())
    ours.load_state_dict(renamed)
    assert_same_outputs(ours, reference, size=64)


def test_convnext_tiny_computes_what_torchvision_computes():
    ours = on_meta(models.build, "convnext_tiny", "paper").to_empty(device="cpu").eval()
    theirs = random_weights(on_meta(torchvision.models.convnext_tiny))
    load_in_order(ours, theirs)
    assert_same_outputs(ours, theirs, size=64)


def torchvision_regnet_settings() -> list[dict]:
    """The (depth, w_0, w_a, w_m, group_width) of every RegNet torchvision builds, read from its source."""
    import inspect as python_inspect

    source = python_inspect.getsource(torchvision.models.regnet)
    settings = []
    for call in re.findall(r"BlockParams.from_init_params\((.*?)\)", source, flags=re.S):
        values = dict(re.findall(r"(\w+)=([\d.]+)", call))
        if "depth" in values:
            settings.append({k: float(values[k]) for k in ("depth", "w_0", "w_a", "w_m", "group_width")})
    return settings


def test_regnet_width_rule_is_torchvisions_for_every_regnet():
    from torchvision.models.regnet import BlockParams

    settings = torchvision_regnet_settings()
    assert len(settings) >= 15
    for s in settings:
        theirs = BlockParams.from_init_params(depth=int(s["depth"]), w_0=int(s["w_0"]), w_a=s["w_a"], w_m=s["w_m"],
                                              group_width=int(s["group_width"]))
        rule = regnet_widths(int(s["depth"]), s["w_0"], s["w_a"], s["w_m"])
        assert rule["depths"] == theirs.depths and sum(rule["depths"]) == s["depth"]
        assert [compatible(w, 1, int(s["group_width"]))[0] for w in rule["widths"]] == theirs.widths


def test_regnet_width_rule_is_a_quantised_line():
    rule = regnet_widths(7, 24, 20, 2.2)
    assert rule["u"] == [24, 44, 64, 84, 104, 124, 144]
    assert rule["w"] == [24, 56, 56, 120, 120, 120, 120]
    assert (rule["depths"], rule["widths"]) == ([1, 2, 4], [24, 56, 120])
    with pytest.raises(ValueError, match="multiple of 8"):
        regnet_widths(7, 20, 20, 2.2)


def test_y_block_squeezes_to_a_quarter_of_its_input():
    block = YBlock(48, 104, cardinality=13, group_width=8, stride=2, use_1x1conv=True)
    assert block.se.reduce.out_channels == 12 and block.se.reduce.in_channels == 104
    assert block(torch.zeros(1, 48, 8, 8)).shape == (1, 104, 4, 4)


def test_layer_norm_2d_normalises_each_pixel_over_channels():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 3, 3) * 5 + 2
    y = LayerNorm2d(6).eval()(x)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(2, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=1, unbiased=False), torch.ones(2, 3, 3), atol=1e-3, rtol=0)


def test_convnext_block_starts_near_the_identity_and_drops_its_branch_in_training():
    torch.manual_seed(0)
    x = torch.randn(4, 16, 8, 8)
    block = ConvNeXtBlock(16).eval()
    assert (block(x) - x).abs().max() < 1e-4              # layer scale 1e-6: almost the identity
    assert count(block) == (49 * 16 + 16) + 2 * 16 + (16 * 64 + 64) + (64 * 16 + 16) + 16
    dropping = ConvNeXtBlock(16, layer_scale=1.0, drop_prob=1.0).train()
    assert torch.equal(dropping(x), x)                    # every sample skips the branch


def test_convnext_stochastic_depth_grows_to_the_rate_at_the_last_block():
    net = on_meta(convnext, (1, 2, 1), (8, 16, 32), drop_path_rate=0.3)
    probs = [m.drop_prob for m in net.modules() if isinstance(m, ConvNeXtBlock)]
    assert probs == pytest.approx([0.0, 0.1, 0.2, 0.3])


# ----------------------------------------------------------------------------------------------
# Design spaces (lesson 15)
# ----------------------------------------------------------------------------------------------

def test_anynet_flops_by_hand_equal_the_traced_count():
    rng = random.Random(0)
    for _ in range(20):
        config = design.ANYNET_A.draw(rng)
        with torch.device("meta"):
            net = config.build()
        assert config.flops() == inspect.layer_table(net, (1, 1, 28, 28)).total_flops


def test_sampling_keeps_the_band_and_the_constraints_and_repeats_with_the_seed():
    for space in (design.ANYNET_A, design.ANYNET_E):
        configs = design.sample(space, 8, seed=3)
        assert configs == design.sample(space, 8, seed=3) != design.sample(space, 8, seed=4)
        assert all(design.FLOPS_BAND[0] <= c.flops() <= design.FLOPS_BAND[1] for c in configs)
    for c in design.sample(design.ANYNET_E, 20, seed=0):
        assert list(c.depths) == sorted(c.depths) and list(c.widths) == sorted(c.widths)
        assert len(set(c.bottlenecks)) == len(set(c.group_widths)) == 1
    unconstrained = design.sample(design.ANYNET_A, 40, seed=0)
    assert any(list(c.widths) != sorted(c.widths) for c in unconstrained)
    assert any(len(set(c.bottlenecks)) > 1 for c in unconstrained)


def test_sampling_says_when_the_band_is_empty():
    with pytest.raises(ValueError, match="FLOPs band"):
        design.sample(design.ANYNET_A, 1, flops=(1, 2), max_draws=50)


def test_edf_and_its_band():
    errors, fractions = design.edf([0.3, 0.1, 0.2, 0.2])
    assert errors == [0.1, 0.2, 0.2, 0.3] and fractions == [0.25, 0.5, 0.75, 1.0]
    assert design.dkw_band(12) == pytest.approx(0.392, abs=1e-3)
    assert design.dkw_band(500) == pytest.approx(0.0607, abs=1e-4)
    with pytest.raises(ValueError):
        design.edf([])


def test_pictures_draw():
    import matplotlib

    matplotlib.use("Agg")
    fig = design.show_edfs({"A": [0.2, 0.3, 0.25], "E": [0.18, 0.22]})
    assert len(fig.axes[0].get_lines()) == 2
    fig = design.show_width_rule(7, 24, 20, 2.2)
    assert "3 stages" in fig.axes[0].get_title()


# ----------------------------------------------------------------------------------------------
# The ConvNeXt roadmap (lesson 16)
# ----------------------------------------------------------------------------------------------

def test_each_roadmap_step_changes_one_thing():
    steps = roadmap.ROADMAP
    assert len(steps) == 13 and steps[0].recipe == "plain" and steps[1].recipe == "modern"
    assert steps[1].design == steps[0].design
    for before, after in zip(steps[1:], steps[2:]):
        changed = {f.name for f in dataclasses.fields(roadmap.Design)
                   if getattr(before.design, f.name) != getattr(after.design, f.name)}
        assert 1 <= len(changed) <= 2, (after.name, changed)   # "depthwise, wider" changes two, as the paper
    assert [s.paper_top1 for s in steps][-1] == 82.0


@pytest.mark.parametrize("index", range(13))
def test_every_roadmap_network_takes_32x32(index):
    net = roadmap.build(roadmap.ROADMAP[index].design).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


def test_the_last_roadmap_step_is_a_convnext():
    """The same layers as ``convnext`` without layer scale, but for the depthwise convolutions' biases
    (the roadmap's convolutions followed by a norm have none)."""
    final = roadmap.build(roadmap.ROADMAP[-1].design)
    reference = convnext((1, 1, 3, 1), (12, 24, 48, 96), in_channels=1, num_classes=10, patch=2, layer_scale=None)
    assert count(reference) - count(final) == 12 + 24 + 3 * 48 + 96
    assert sum(isinstance(m, nn.GELU) for m in final.modules()) == 6 == sum(
        isinstance(m, nn.GELU) for m in reference.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in final.modules())


def test_roadmap_recipes():
    plain, modern = roadmap.recipe("plain", epochs=2), roadmap.recipe("modern", epochs=2)
    assert (plain.schedule, plain.augment, plain.label_smoothing) == ("constant", False, 0.0)
    assert (modern.schedule, modern.augment) == ("onecycle", True) and plain.resize == modern.resize == 32
    with pytest.raises(ValueError, match="plain"):
        roadmap.recipe("fancy")


def test_roadmap_chart_has_a_row_per_step_and_the_papers_numbers():
    import matplotlib

    matplotlib.use("Agg")
    results = [{"step": s, "test_acc": 0.8 + 0.01 * i, "flops": 4e6} for i, s in enumerate(roadmap.ROADMAP)]
    fig = roadmap.show(results)
    acc_axis = fig.axes[0]
    labels = {t.get_position()[1]: t.get_text() for t in acc_axis.get_yticklabels()}
    assert [labels[y] for y in sorted(labels, reverse=True)] == [s.name for s in roadmap.ROADMAP]   # top to bottom
    paper_points = [line for ax in fig.axes for line in ax.get_lines()]
    assert len(paper_points[0].get_xdata()) == 13                  # the paper's top-1 for every step
    assert len(paper_points[1].get_xdata()) == sum(1 for s in roadmap.ROADMAP if s.paper_gflops)
