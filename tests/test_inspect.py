"""d2lcnn.inspect: layer tables, shape explanations, comparisons."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lcnn import inspect, models


def no_hooks(net: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize("name", ["lenet", "alexnet", "vgg11", "nin", "googlenet", "resnet18"])
def test_layer_table_totals_match_the_model(name):
    spec = models.spec(name)
    net = spec.build()
    table = inspect.layer_table(net, spec.input_shape)
    assert table.total_params == sum(p.numel() for p in net.parameters()) == spec.reference_params
    assert table.total_params == sum(r["params"] for r in table.rows)
    assert table.total_flops == sum(r["flops"] for r in table.rows)
    assert table.rows[-1]["output_shape"] == (1, 10)
    assert "FLOPs count a multiply-add as two" in str(table)


def test_lenet_table_rows_and_flops():
    table = inspect.layer_table(models.build("lenet"), (1, 1, 28, 28))
    first = table.rows[0]
    assert (first["name"], first["type"], first["output_shape"], first["params"]) == ("0", "Conv2d", (1, 6, 28, 28), 156)
    # 6 maps of 28x28, each output a 5x5 dot product: 2 * 25 FLOPs (multiply-add = 2), bias not counted.
    assert first["flops"] == 6 * 28 * 28 * 25 * 2
    assert table.rows[7]["flops"] == 2 * 400 * 120
    assert table.total_flops == 833_040


def test_table_text_is_fixed_width_and_deterministic():
    net = models.build("lenet")
    text = str(inspect.layer_table(net, (1, 1, 28, 28)))
    assert text == str(inspect.layer_table(net, torch.zeros(1, 1, 28, 28))) == repr(inspect.layer_table(net))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "FLOPs"]
    assert len({len(line) for line in lines[:-1]}) == 1          # every row as wide as the header
    assert lines[-2].startswith("total") and "61,706" in lines[-2] and "833.0K" in lines[-2]
    assert lines[-1] == "input (1, 1, 28, 28); FLOPs count a multiply-add as two"


def test_table_prints_as_text_in_ipython():
    from IPython.lib.pretty import pretty

    table = inspect.layer_table(models.build("lenet"))
    assert pretty(table) == str(table)


def test_input_shape_from_the_registry_or_an_error():
    assert inspect.layer_table(models.build("googlenet")).input_shape == (1, 1, 96, 96)
    with pytest.raises(ValueError, match="give the input shape"):
        inspect.layer_table(nn.Linear(3, 2))


def test_depth_gives_one_row_per_block():
    net = models.build("googlenet")
    leaves = inspect.layer_table(net)
    blocks = inspect.layer_table(net, depth=1)
    assert [r["name"] for r in blocks.rows] == ["b1", "b2", "b3", "b4", "b5", "fc"]
    assert blocks.rows[2]["output_shape"] == (1, 480, 6, 6)
    assert (blocks.total_params, blocks.total_flops) == (leaves.total_params, leaves.total_flops)
    assert sum(r["params"] for r in blocks.rows) == blocks.total_params
    assert sum(r["flops"] for r in blocks.rows) == blocks.total_flops
    inception = inspect.layer_table(net, depth=2).rows[5]
    assert (inception["name"], inception["type"], inception["output_shape"]) == ("b3.0", "Inception", (1, 256, 12, 12))
    assert any(r["name"] == "b3.0.branch2.1.0" for r in leaves.rows)   # names are places in the model


def test_table_restores_mode_and_removes_hooks():
    net = models.build("resnet18").train()
    net.b2.eval()                       # a mixed state is restored as it was
    inspect.layer_table(net)
    assert net.training and net.b3.training and not net.b2.training and not net.b2[0].bn1.training
    assert no_hooks(net)


def test_table_on_the_meta_device():
    with torch.device("meta"):
        net = models.build("vgg16", "paper")
    table = inspect.layer_table(net)
    assert table.total_params == 138_357_544 and table.total_flops == 30_940_528_640


@pytest.mark.parametrize("name, shape, expected", [
    ("lenet", (1, 1, 32, 32), r"layer '7' \(Linear.*received shape \(1, 576\).*wants 400 features.*built for "
                              r"inputs of shape \(1, 1, 28, 28\)"),
    ("lenet", (1, 3, 28, 28), r"layer '0' \(Conv2d.*wants 1 channel \(dimension 1\), not 3"),
    ("alexnet", (1, 1, 28, 28), r"layer '5' \(MaxPool2d.*2x2 maps.*smaller than its 3x3 window"),
    ("resnet18", (1, 3, 96, 96), r"layer 'b1.0' \(Conv2d.*wants 1 channel"),
])
def test_shape_mismatch_names_the_layer(name, shape, expected):
    net = models.build(name)
    with pytest.raises(inspect.ShapeMismatchError, match=expected) as info:
        inspect.layer_table(net, shape)
    assert isinstance(info.value, ValueError) and info.value.shape is not None
    assert no_hooks(net)
    assert inspect.explain(net, shape) == str(info.value)


def test_mismatch_kinds():
    err = inspect.explain(nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(6)), (1, 1, 28, 28))
    assert "layer '1' (BatchNorm2d" in err and "wants 6 channels (num_features" in err and "not 8" in err
    err = inspect.explain(nn.Sequential(nn.Flatten(), nn.Conv2d(1, 2, 3)), (1, 1, 28, 28))
    assert "shape (1, 784), a 2-dimensional tensor, but it wants 4 dimensions" in err
    err = inspect.explain(nn.Sequential(nn.Conv2d(1, 2, 5)), (1, 1, 4, 4))
    assert "4x4 maps (padded by 0) are smaller than its 5x5 window" in err
    # A block whose own arithmetic fails (the residual addition) is named when no layer is running.
    block = models.resnet.Residual(8, 16)
    with pytest.raises(inspect.ShapeMismatchError, match=r"layer '0' \(Residual\).*\(1, 8, 12, 12\)") as info:
        inspect.check_input(nn.Sequential(block), (1, 8, 12, 12))
    assert info.value.layer == "0" and info.value.module is block


def test_check_input_and_explain_when_it_fits():
    net = models.build("alexnet")
    assert inspect.check_input(net, (2, 1, 224, 224)) == (2, 10)
    assert inspect.explain(net, (1, 1, 224, 224)) == "An input of shape (1, 1, 224, 224) fits: the output has shape (1, 10)."


def test_compare_side_by_side():
    result = inspect.compare({"LeNet": models.build("lenet"), "GoogLeNet": models.build("googlenet"),
                              "NiN": (models.build("nin"), (1, 1, 96, 96))})
    text = str(result)
    assert "LeNet" in text and "61,706" in text and "1,992,166" in text and "(1, 1, 96, 96)" in text
    maps = {r["model"]: r["last_maps"] for r in result.rows}
    assert maps == {"LeNet": "16x5x5", "GoogLeNet": "1024x3x3", "NiN": "10x1x1"}
    assert result.rows[0]["flops"] == 833_040 and result.rows[0]["output_shape"] == (1, 10)
    with pytest.raises(ValueError, match="give the input shape"):
        inspect.compare({"plain": nn.Linear(3, 2)})


def test_count_params():
    assert inspect.count_params(nn.Conv2d(6, 16, 5)) == 16 * 6 * 25 + 16
    assert inspect.count_params(nn.ReLU()) == 0
