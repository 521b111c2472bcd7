"""Every registered model: its parameter count pinned to the book's, the paper's or
torchvision's number, and a forward pass at its input size giving one score per class."""

from __future__ import annotations

import pytest
import torch
import torchvision

from d2lcnn import models

PINNED = {
    ("lenet", "fashion"): 61_706,
    ("lenet", "paper"): 61_706,
    ("alexnet", "fashion"): 46_764_746,
    ("alexnet", "paper"): 61_100_840,
    ("alexnet_towers", "paper"): 60_965_224,
    ("vgg11", "fashion"): 43_093_322,
    ("vgg11", "paper"): 132_863_336,
    ("vgg16", "paper"): 138_357_544,
    ("nin", "fashion"): 1_992_166,
    ("nin", "paper"): 7_439_608,
    ("googlenet", "fashion"): 5_977_530,
    ("googlenet", "paper"): 6_998_552,
    ("resnet18", "fashion"): 11_178_378,
    ("resnet18", "paper"): 11_689_512,
    ("resnet34", "paper"): 21_797_672,
}


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name, config", sorted(PINNED))
def test_parameter_count(name, config):
    spec = models.spec(name, config)
    assert count(spec.build()) == PINNED[(name, config)] == spec.reference_params


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16", "resnet18", "resnet34"])
def test_paper_configs_match_torchvision(name):
    assert count(models.build(name, "paper")) == count(getattr(torchvision.models, name)())


def test_full_width_vgg11_on_fashion_mnist():
    assert count(models.build("vgg11", ratio=1)) == 128_806_154


@pytest.mark.parametrize("spec", models.specs("fashion"), ids=lambda s: s.name)
def test_fashion_forward_gives_ten_scores(spec):
    with torch.no_grad():
        assert spec.build().eval()(torch.zeros(spec.input_shape)).shape == (1, 10)


@pytest.mark.parametrize("spec", models.specs("paper"), ids=lambda s: s.name)
def test_paper_forward_gives_class_scores(spec):
    net = spec.build().eval()
    with torch.no_grad():
        out = net(torch.zeros(spec.input_shape))
    assert out.shape == (1, 10 if spec.name == "lenet" else 1000)


def test_every_pinned_count_is_tested():
    assert {(s.name, s.config) for s in models.specs()} <= set(PINNED)


def test_unknown_model_lists_known_names():
    with pytest.raises(KeyError, match="known: .*alexnet.*lenet"):
        models.build("lenett")
