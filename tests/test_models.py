"""Every registered model: its parameter count pinned to the book's, the paper's or
torchvision's number, a forward pass at its input size giving one score per class, and the
paper configurations computing exactly what torchvision's networks compute."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import models
from d2lcnn.models.alexnet import alexnet_features
from d2lcnn.models.resnet import Bottleneck, Residual
from d2lcnn.models.vgg import VGG16, vgg_block

PINNED = {
    ("lenet", "fashion"): 61_706,
    ("lenet", "paper"): 61_706,
    ("bn_lenet", "fashion"): 44_878,
    ("alexnet", "fashion"): 46_764_746,
    ("alexnet", "paper"): 61_100_840,
    ("alexnet_towers", "paper"): 60_965_224,
    ("vgg11", "fashion"): 43_093_322,
    ("vgg11", "paper"): 132_863_336,
    ("vgg16", "paper"): 138_357_544,
    ("nin", "fashion"): 1_992_166,
    ("nin", "paper"): 7_439_608,
    ("googlenet", "fashion"): 5_977_530,
    ("googlenet", "paper"): 6_624_904,
    ("inception_v3", "paper"): 23_834_568,
    ("resnet18", "fashion"): 11_178_378,
    ("resnet18", "paper"): 11_689_512,
    ("resnet34", "paper"): 21_797_672,
    ("resnet50", "paper"): 25_557_032,
    ("wide_resnet50_2", "paper"): 68_883_240,
    ("resnet_speedrun", "fashion"): 1_226_442,   # our own design (benchmark speedrun)
    ("densenet", "fashion"): 758_226,
    ("densenet121", "paper"): 7_978_856,
    # The efficient era: fashion configurations of our own design (pinned as built), paper
    # configurations as torchvision's (SE-ResNet-50 and MobileNet v1, which torchvision lacks,
    # as built: their papers say about 28.1 M and 4.2 M).
    ("resnext", "fashion"): 231_018,
    ("resnext50_32x4d", "paper"): 25_028_904,
    ("se_resnet", "fashion"): 669_594,
    ("se_resnet50", "paper"): 28_088_024,
    ("mobilenet_v1", "fashion"): 273_674,
    ("mobilenet_v1", "paper"): 4_231_976,
    ("mobilenet_v2", "fashion"): 370_442,
    ("mobilenet_v2", "paper"): 3_504_872,
    ("shufflenet_v2", "fashion"): 247_162,
    ("shufflenet_v2", "paper"): 2_278_604,
    ("efficientnet_b0", "fashion"): 233_622,
    ("efficientnet_b0", "paper"): 5_288_548,
    ("efficientnet_b1", "paper"): 7_794_184,
    ("efficientnet_b2", "paper"): 9_109_994,
    ("efficientnet_b3", "paper"): 12_233_232,
    # Design spaces and ConvNeXt: fashion configurations of our own design (pinned as built),
    # paper configurations as torchvision's.
    ("regnet", "fashion"): 177_986,
    ("regnetx_400mf", "paper"): 5_495_976,
    ("regnety_400mf", "paper"): 4_344_144,
    ("convnext", "fashion"): 671_074,
    ("convnext_tiny", "paper"): 28_589_128,
}

TORCHVISION = ["alexnet", "vgg11", "vgg16", "resnet18", "resnet34", "resnet50"]


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def on_meta(build, *args, **kwargs) -> nn.Module:
    """Build without allocating or initialising anything: counts and shapes only."""
    with torch.device("meta"):
        return build(*args, **kwargs)


@pytest.mark.parametrize("name, config", sorted(PINNED))
def test_parameter_count(name, config):
    spec = models.spec(name, config)
    assert count(on_meta(spec.build)) == PINNED[(name, config)] == spec.reference_params


@pytest.mark.parametrize("name", TORCHVISION)
def test_paper_configs_match_torchvision(name):
    assert count(on_meta(models.build, name, "paper")) == count(on_meta(getattr(torchvision.models, name)))


def random_weights(net: nn.Module) -> nn.Module:
    """Materialise a meta-device network with random weights that keep activations near unit
    scale (weights ~ N(0, 1/fan_in), BatchNorm scales near 1, positive variances)."""
    net = net.to_empty(device="cpu").eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=gen)
            if value.dim() > 1:
                value.copy_(noise * (2 * value[0].numel()) ** -0.5 * 2)
            elif key.endswith("running_var"):
                value.copy_(noise.abs() * 0.5 + 0.5)
            elif key.endswith("weight"):
                value.copy_(1 + 0.1 * noise)
            else:
                value.copy_(0.02 * noise)
    return net


def load_in_order(ours: nn.Module, theirs: nn.Module) -> None:
    """Load ``theirs``'s weights into ``ours`` tensor by tensor, in order (same layers, same order)."""
    a, b = ours.state_dict(), theirs.state_dict()
    assert [v.shape for v in a.values()] == [v.shape for v in b.values()]
    ours.load_state_dict(dict(zip(a, b.values())))


def assert_same_outputs(ours: nn.Module, theirs: nn.Module, size: int = 96, batch: int = 1) -> None:
    """On one random batch ``ours`` computes what ``theirs`` computes, and that output is not
    trivially small (the comparison means something: not just the biases)."""
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        assert expected.std() > 0.1
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet18", "resnet50"])
def test_paper_configs_compute_what_torchvision_computes(name):
    """Same layers in the same order: torchvision's weights, loaded in order, give its outputs."""
    ours = on_meta(models.build, name, "paper").to_empty(device="cpu").eval()
    theirs = random_weights(on_meta(getattr(torchvision.models, name)))
    load_in_order(ours, theirs)
    assert_same_outputs(ours, theirs)


def test_googlenet_paper_differs_from_torchvision_as_documented():
    theirs = on_meta(torchvision.models.googlenet, aux_logits=False, init_weights=False)
    assert count(theirs) == 6_624_904
    assert "6,624,904" in models.spec("googlenet", "paper").builder.__doc__


def test_vgg_width_and_arch_are_arguments():
    assert count(on_meta(models.build, "vgg11", ratio=1)) == 128_806_154
    assert count(on_meta(models.build, "vgg11", ratio=4)) == 43_093_322
    narrow16 = on_meta(models.build, "vgg11", conv_arch=VGG16)
    assert sum(isinstance(m, nn.Conv2d) for m in narrow16.modules()) == 13
    assert count(vgg_block(2, 16, 32)) == (16 * 9 * 32 + 32) + (32 * 9 * 32 + 32)


def test_alexnet_towers_are_grouped_convolutions():
    towers = on_meta(models.build, "alexnet_towers", "paper")
    groups = [m.groups for m in towers.modules() if isinstance(m, nn.Conv2d)]
    assert groups == [1, 2, 1, 2, 2]
    one, two = alexnet_features(3, groups=(1, 1, 1, 1, 1)), alexnet_features(3, groups=(1, 2, 1, 2, 2))
    assert count(one) - count(two) == (96 * 256 * 25 + 384 * 384 * 9 + 384 * 256 * 9) // 2


def test_residual_blocks_shapes():
    x = torch.zeros(2, 64, 16, 16)
    assert Residual(64, 64)(x).shape == (2, 64, 16, 16)
    assert Residual(64, 128, use_1x1conv=True, stride=2)(x).shape == (2, 128, 8, 8)
    assert Bottleneck(64, 64, use_1x1conv=True)(x).shape == (2, 256, 16, 16)
    assert Bottleneck(64, 32, use_1x1conv=True, stride=2)(x).shape == (2, 128, 8, 8)
    with pytest.raises(RuntimeError):   # a shape change without a projection cannot be added
        Residual(64, 128)(x)


@pytest.mark.parametrize("spec", models.specs("fashion"), ids=lambda s: s.name)
def test_fashion_forward_gives_ten_scores(spec):
    with torch.no_grad():
        assert spec.build().eval()(torch.zeros(2, *spec.input_shape[1:])).shape == (2, 10)


@pytest.mark.parametrize("spec", models.specs("paper"), ids=lambda s: f"{s.name}-paper")
def test_paper_forward_gives_class_scores(spec):
    """On the meta device: shapes are checked without computing anything (224x224 on a CPU)."""
    with torch.device("meta"):
        out = spec.build().eval()(torch.zeros(spec.input_shape))
    assert out.shape == (1, 10 if spec.name == "lenet" else 1000)


def test_one_paper_forward_for_real():
    with torch.no_grad():
        out = models.build("resnet18", "paper").eval()(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_every_registered_spec_is_pinned_and_builds():
    assert {(s.name, s.config) for s in models.specs()} == set(PINNED)
    for spec in models.specs():
        assert on_meta(spec.build).d2lcnn_name == f"{spec.name}/{spec.config}"
        assert spec.config == "paper" or spec.book is None or spec.book["resize"] == spec.input_shape[-1]


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="known: .*alexnet.*lenet"):
        models.build("lenett")


def test_models_command(capsys):
    """``python -m d2lcnn models``, in process: JSON keys, counts, FLOPs, and the text table."""
    import json

    from d2lcnn.commands import main

    assert main(["models", "--config", "paper", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["name"], r["config"]) for r in rows} == {k for k in PINNED if k[1] == "paper"}
    assert all({"name", "config", "params", "flops", "input_shape"} <= r.keys() for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnet50"]["params"] == 25_557_032 and by_name["resnet50"]["input_shape"] == [1, 3, 224, 224]
    assert by_name["vgg16"]["flops"] == 30_940_528_640     # 15.5 billion multiply-adds
    assert main(["models", "--config", "fashion"]) == 0
    text = capsys.readouterr().out
    assert "googlenet       fashion       5,977,530    552.1M  (1, 1, 96, 96)" in text
    assert text.rstrip().endswith("a multiply-add counts as two")
