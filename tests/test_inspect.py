"""d2lcnn.inspect and d2lcnn.exercises: layer tables, shape explanations, comparisons, self-checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from d2lcnn import exercises, inspect, models


@pytest.mark.parametrize("name", ["lenet", "alexnet", "vgg11", "nin"])
def test_layer_table_totals_match_the_model(name):
    spec = models.spec(name)
    net = spec.build()
    table = inspect.layer_table(net, spec.input_shape)
    assert table.total_params == sum(p.numel() for p in net.parameters()) == spec.reference_params
    assert table.total_params == sum(r["params"] for r in table.rows)
    assert table.rows[-1]["output_shape"] == (1, 10)
    assert "FLOPs count a multiply-add as two" in str(table)


def test_lenet_table_rows_and_flops():
    table = inspect.layer_table(models.build("lenet"), (1, 1, 28, 28))
    first = table.rows[0]
    assert (first["name"], first["type"], first["output_shape"], first["params"]) == ("0", "Conv2d", (1, 6, 28, 28), 156)
    # 6 maps of 28x28, each output a 5x5 dot product: 2 * 25 FLOPs (multiply-add = 2), bias not counted.
    assert first["flops"] == 6 * 28 * 28 * 25 * 2
    assert table.rows[7]["flops"] == 2 * 400 * 120


def test_table_restores_mode_and_removes_hooks():
    net = models.build("alexnet").train()
    inspect.layer_table(net, (1, 1, 224, 224))
    assert net.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


@pytest.mark.parametrize("name, shape, expected", [
    ("lenet", (1, 1, 32, 32), r"layer '7' \(Linear.*received shape \(1, 576\).*wants 400 features"),
    ("lenet", (1, 3, 28, 28), r"layer '0' \(Conv2d.*wants 1 channels.*not 3"),
    ("alexnet", (1, 1, 28, 28), r"layer '5' \(MaxPool2d.*2x2 maps.*smaller than its 3x3 window"),
])
def test_shape_mismatch_names_the_layer(name, shape, expected):
    net = models.build(name)
    with pytest.raises(inspect.ShapeMismatchError, match=expected):
        inspect.layer_table(net, shape)
    assert all(not m._forward_hooks for m in net.modules())


def test_compare_side_by_side():
    text = str(inspect.compare({"LeNet": models.build("lenet"),
                                "NiN": (models.build("nin"), (1, 1, 96, 96))}))
    assert "LeNet" in text and "61,706" in text and "1,992,166" in text and "(1, 1, 96, 96)" in text
    with pytest.raises(ValueError, match="give the input shape"):
        inspect.compare({"plain": nn.Linear(3, 2)})


def test_check_output_shape(capsys):
    layer = nn.Sequential(nn.Conv2d(1, 6, 5), nn.AvgPool2d(2))
    assert exercises.check_output_shape((1, 6, 12, 12), layer, (1, 1, 28, 28))
    assert "Right" in capsys.readouterr().out
    assert not exercises.check_output_shape((1, 6, 14, 14), layer, (1, 1, 28, 28))
    out = capsys.readouterr().out
    assert "Not quite" in out and "Conv2d (1, 6, 24, 24)" in out
    assert not exercises.check_output_shape(None, layer, (1, 1, 28, 28))
    assert "Write your answer" in capsys.readouterr().out


def test_check_params(capsys):
    conv = nn.Conv2d(6, 16, 5)
    assert exercises.check_params(2416, conv)
    assert not exercises.check_params(2400, conv)
    out = capsys.readouterr().out
    assert "bias (16,) = 16" in out and "out_channels x (in_channels / groups)" in out
