"""GoogLeNet, Inception v3 and BN-LeNet: parameter counts on the meta device, the paper
configurations computing exactly what torchvision's compute (its random weights loaded into
ours, in order), and the Inception v2/v3 factorisations saving what the paper says."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import inspect, models
from d2lcnn.models.googlenet import Inception, conv_bn_relu, googlenet
from d2lcnn.models.inception_v3 import Branches, inception_a, inception_c, reduction_a
from d2lcnn.models.lenet import classifier, conv_block

PINNED = {
    ("googlenet", "fashion"): 5_977_530,
    ("googlenet", "paper"): 6_624_904,
    ("inception_v3", "paper"): 23_834_568,
    ("bn_lenet", "fashion"): 44_878,
}


def on_meta(build, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return build(*args, **kwargs)


@pytest.mark.parametrize("name, config", sorted(PINNED))
def test_parameter_counts(name, config):
    spec = models.spec(name, config)
    assert inspect.count_params(on_meta(spec.build)) == PINNED[(name, config)] == spec.reference_params


def test_googlenet_of_the_2014_paper_and_torchvision_differ_as_documented():
    paper = inspect.count_params(on_meta(googlenet, 3, 1000, dropout=0.4))
    assert paper == 6_998_552
    doc = models.spec("googlenet", "paper").builder.__doc__
    assert "6,998,552 - 380,928 + 7,280 = 6,624,904" in doc and 6_998_552 - 380_928 + 7_280 == 6_624_904
    five = inspect.count_params(on_meta(googlenet, 3, 1000))
    three = inspect.count_params(on_meta(googlenet, 3, 1000, c3_kernel=3))
    assert five - three == 380_928


TORCHVISION = {"googlenet": (torchvision.models.googlenet, 224), "inception_v3": (torchvision.models.inception_v3, 299)}


def random_weights(net: nn.Module, seed: int = 0) -> nn.Module:
    """Materialise a meta-device network with random weights that keep activations near unit
    scale through 20+ BatchNorm-ReLU layers: weights ~ N(0, 2/fan_in), BatchNorm scales near 1,
    running statistics that are not the identity (so that eval-mode BatchNorm is really tested)."""
    net = net.to_empty(device="cpu").eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if not value.is_floating_point():
                value.zero_()
                continue
            noise = torch.randn(value.shape, generator=gen)
            if value.dim() > 1:
                value.copy_(noise * (2 / value[0].numel()) ** 0.5)
            elif key.endswith("running_var"):
                value.copy_(noise.abs() * 0.5 + 0.5)
            elif key.endswith("weight"):
                value.copy_(1 + 0.1 * noise)
            else:
                value.copy_(0.1 * noise)
    return net


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_paper_configs_compute_what_torchvision_computes(name):
    """Same layers in the same order: torchvision's random weights, loaded in order, give its outputs.

    At the paper's input sizes (224 and 299), and GoogLeNet also at an odd size, where ceil-mode
    pools let their last window hang over the edge.
    """
    build, size = TORCHVISION[name]
    theirs = random_weights(on_meta(build, aux_logits=False, init_weights=False))
    ours = on_meta(models.build, name, "paper").to_empty(device="cpu").eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert [tuple(v.shape) for v in a.values()] == [tuple(v.shape) for v in b.values()]
    ours.load_state_dict(dict(zip(a, b.values())))
    gen = torch.Generator().manual_seed(1)
    for side in ((size, 99) if name == "googlenet" else (size,)):
        x = torch.randn(2, 3, side, side, generator=gen)
        with torch.no_grad():
            expected = theirs(x)
            assert expected.std() > 0.1   # the comparison means something: not just the biases
            torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_googlenet_paper_config_has_torchvisions_details():
    net = on_meta(models.build, "googlenet", "paper")
    pools = [m for name, m in net.named_modules() if isinstance(m, nn.MaxPool2d) and "branch" not in name]
    assert [(p.kernel_size, p.ceil_mode, p.padding) for p in pools] == [(3, True, 0)] * 3 + [(2, True, 0)]
    assert {m.eps for m in net.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-3}
    assert net.dropout.p == 0.2
    assert not any(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))


def test_googlenet_fashion_shapes_and_names():
    net = models.build("googlenet")
    rows, out = inspect.trace(net, (1, 1, 96, 96))
    assert out.shape == (1, 10)
    assert inspect.check_input(net.b1, (1, 1, 96, 96)) == (1, 64, 24, 24)
    assert isinstance(net.b3[0], Inception) and inspect.check_input(net.b3[0], (1, 192, 12, 12)) == (1, 256, 12, 12)


def test_inception_v3_shapes_at_299():
    net = on_meta(models.build, "inception_v3", "paper")
    stages = {r["name"]: r["output_shape"] for r in inspect.layer_table(net, depth=1).rows}
    assert stages["pool2"] == (1, 192, 35, 35)
    assert stages["mixed5d"] == (1, 288, 35, 35)
    assert stages["mixed6a"] == (1, 768, 17, 17)
    assert stages["mixed7a"] == (1, 1280, 8, 8)
    assert stages["mixed7c"] == (1, 2048, 8, 8)
    assert stages["fc"] == (1, 1000)


def test_factorisations_save_what_the_paper_says():
    c = 64
    five = inspect.layer_table(nn.Conv2d(c, c, 5, padding=2, bias=False), (1, c, 17, 17))
    two_threes = inspect.layer_table(nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                                   nn.Conv2d(c, c, 3, padding=1, bias=False)), (1, c, 17, 17))
    assert two_threes.total_params / five.total_params == pytest.approx(18 / 25)
    assert two_threes.total_flops / five.total_flops == pytest.approx(18 / 25)
    seven = inspect.layer_table(nn.Conv2d(c, c, 7, padding=3, bias=False), (1, c, 17, 17))
    asym = inspect.layer_table(nn.Sequential(nn.Conv2d(c, c, (1, 7), padding=(0, 3), bias=False),
                                             nn.Conv2d(c, c, (7, 1), padding=(3, 0), bias=False)), (1, c, 17, 17))
    assert asym.total_params / seven.total_params == pytest.approx(14 / 49)
    assert asym.total_flops / seven.total_flops == pytest.approx(14 / 49)


def test_inception_v3_blocks():
    x = torch.zeros(2, 288, 35, 35)
    assert inception_a(288, 64)(x).shape == (2, 288, 35, 35)
    assert reduction_a(288)(x).shape == (2, 768, 17, 17)
    assert inception_c(768, 128)(torch.zeros(1, 768, 17, 17)).shape == (1, 768, 17, 17)
    fork = Branches(nn.Identity(), nn.Identity())
    assert [n for n, _ in fork.named_children()] == ["branch1", "branch2"]
    assert fork(torch.ones(1, 3, 2, 2)).shape == (1, 6, 2, 2)
    assert isinstance(conv_bn_relu(3, 8, 3)[1], nn.BatchNorm2d)


def test_bn_lenet_is_the_books():
    net = models.build("bn_lenet")
    kinds = [type(m).__name__ for m in net]
    assert kinds[:4] == ["Conv2d", "BatchNorm2d", "Sigmoid", "AvgPool2d"]
    assert kinds.count("BatchNorm1d") == 2 and net[0].padding == (0, 0)
    assert inspect.check_input(net, (2, 1, 28, 28)) == (2, 10)
    plain = nn.Sequential(*conv_block(1, 6, 5), *conv_block(6, 16, 5), *classifier(256))
    bn_params = 2 * (6 + 16 + 120 + 84)          # a scale and a shift per channel / feature
    assert inspect.count_params(net) - inspect.count_params(plain) == bn_params
