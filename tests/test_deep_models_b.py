"""ResNet (with wide ResNet-50-2) and DenseNet: parameter counts pinned on the meta device, the
paper configurations computing exactly what torchvision's networks compute, and the blocks doing
what the lessons say they do (a shortcut adds, a dense block concatenates)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from d2lcnn import models
from d2lcnn.models.densenet import DenseBlock, dense_layer, transition
from d2lcnn.models.resnet import Bottleneck, Residual, resnet

PINNED = {
    ("resnet18", "fashion"): 11_178_378,       # the book's
    ("resnet50", "paper"): 25_557_032,         # torchvision's resnet50
    ("wide_resnet50_2", "paper"): 68_883_240,  # torchvision's wide_resnet50_2
    ("densenet", "fashion"): 758_226,          # the book's: 64 channels, growth 32, 4-4-4-4
    ("densenet121", "paper"): 7_978_856,       # torchvision's densenet121
}


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


def randomise(net: nn.Module) -> nn.Module:
    """Random weights that keep activations near unit scale through 50 layers (weights ~ N(0, 2/fan_in),
    BatchNorm scales near 1, positive running variances), so that a comparison means something."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if not value.is_floating_point():
                continue
            noise = torch.randn(value.shape, generator=gen)
            if value.dim() > 1:
                value.copy_(noise * (2 / value[0].numel()) ** 0.5)
            elif key.endswith("running_var"):
                value.copy_(noise.abs() * 0.5 + 0.5)
            elif key.endswith("weight"):
                value.copy_(1 + 0.1 * noise)
            else:
                value.copy_(0.02 * noise)
    return net.eval()


@pytest.mark.parametrize("name", ["resnet50", "wide_resnet50_2", "densenet121"])
def test_paper_config_computes_what_torchvision_computes(name):
    """torchvision's randomly initialised weights, loaded into ours key by key (the same layers in
    the same order, under our names), give torchvision's outputs on a small image."""
    theirs = randomise(getattr(torchvision.models, name)())
    ours = models.build(name, "paper").eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert len(a) == len(b)
    mismatched = [(k, tuple(a[k].shape), j, tuple(b[j].shape)) for k, j in zip(a, b) if a[k].shape != b[j].shape]
    assert not mismatched, mismatched[:3]
    # The layer kinds line up too, not only the shapes: a BatchNorm key maps to a BatchNorm key.
    assert [k.rsplit(".", 1)[1] for k in a] == [j.rsplit(".", 1)[1] for j in b]
    ours.load_state_dict(dict(zip(a, b.values())))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        assert expected.std() > 0.1   # not just the classifier's bias
        torch.testing.assert_close(ours(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_residual_block_adds_its_input():
    """With the branch's last BatchNorm scaled to zero, a block without projection is relu(x)."""
    block = Residual(8, 8).eval()
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))
    projected = Residual(8, 16, use_1x1conv=True, stride=2)
    assert isinstance(projected.shortcut, nn.Conv2d) and projected(x).shape == (2, 16, 3, 3)


def test_wide_bottleneck_widens_the_middle_only():
    wide = Bottleneck(256, 128, out_channels=256)
    assert (wide.conv2.in_channels, wide.conv2.out_channels, wide.conv3.out_channels) == (128, 128, 256)
    assert Bottleneck(256, 64).conv3.out_channels == 256     # the default stays 4 x width
    with pytest.raises(ValueError, match="bottleneck=True"):
        resnet((2, 2, 2, 2), widen=2)


def test_dense_block_concatenates():
    block = DenseBlock(3, in_channels=5, growth_rate=4)
    x = torch.randn(2, 5, 6, 6)
    y = block(x)
    assert y.shape == (2, 5 + 3 * 4, 6, 6) and block.out_channels == 17
    torch.testing.assert_close(y[:, :5], x)           # the input passes through untouched
    assert [layer.conv.in_channels for layer in block.children()] == [5, 9, 13]


def test_dense_layer_bottleneck_and_transition():
    layer = dense_layer(256, 32, bottleneck=4, bias=False)
    assert (layer.conv1.out_channels, layer.conv2.in_channels, layer.conv2.out_channels) == (128, 128, 32)
    assert transition(192, 96)(torch.zeros(1, 192, 8, 8)).shape == (1, 96, 4, 4)


def test_cpu_settings_fit():
    """The lessons' CPU settings: ResNet-18 at 28x28 and the book's DenseNet at 32x32 give ten scores
    (DenseNet's three transitions halve 32 -> 8 -> 4 -> 2 -> 1; 28x28 would reach 0)."""
    with torch.no_grad():
        assert models.build("resnet18").eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
        assert models.build("densenet").eval()(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
        with pytest.raises(RuntimeError):
            models.build("densenet").eval()(torch.zeros(2, 1, 28, 28))
