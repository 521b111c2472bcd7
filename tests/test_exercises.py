"""d2lcnn.exercises: one line, right or not quite, with the reason computed from real layers."""

from __future__ import annotations

from torch import nn

from d2lcnn import exercises


def verdict(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out       # one line
    return out


def test_check_output_shape(capsys):
    layer = nn.Sequential(nn.Conv2d(1, 6, 5), nn.AvgPool2d(2))
    assert exercises.check_output_shape((1, 6, 12, 12), layer, (1, 1, 28, 28))
    assert verdict(capsys).startswith("Right: (1, 1, 28, 28) -> (1, 6, 12, 12)")
    assert exercises.check_output_shape([1, 6, 12, 12], layer, (1, 1, 28, 28))   # a list will do
    capsys.readouterr()
    assert not exercises.check_output_shape((1, 6, 14, 14), layer, (1, 1, 28, 28))
    out = verdict(capsys)
    assert out.startswith("Not quite") and "Conv2d (1, 6, 24, 24) -> AvgPool2d (1, 6, 12, 12)" in out
    assert not exercises.check_output_shape((6, 12, 12), layer, (1, 1, 28, 28))
    assert "starts with the batch dimension" in verdict(capsys)
    assert not exercises.check_output_shape(12, layer, (1, 1, 28, 28))
    assert "should be a shape" in verdict(capsys)
    assert not exercises.check_output_shape(None, layer, (1, 1, 28, 28))
    assert "Write your answer" in verdict(capsys)


def test_check_output_shape_when_the_input_does_not_fit(capsys):
    assert not exercises.check_output_shape((1, 6, 1, 1), nn.Conv2d(3, 6, 5), (1, 1, 28, 28))
    assert "does not fit" in verdict(capsys)


def test_check_params(capsys):
    conv = nn.Conv2d(6, 16, 5)
    assert exercises.check_params(2416, conv)
    assert verdict(capsys) == "Right: 2,416 parameters.\n"
    assert exercises.check_params("2,416", conv)
    capsys.readouterr()
    assert not exercises.check_params(2400, conv)
    out = verdict(capsys)
    assert "bias (16,) = 16" in out and "out_channels x (in_channels / groups)" in out
    assert not exercises.check_params(4, nn.BatchNorm2d(16))
    assert "running mean and variance are buffers" in verdict(capsys)
    assert not exercises.check_params(1, nn.MaxPool2d(2))
    assert "have no parameters" in verdict(capsys)
    assert not exercises.check_params("many", conv)
    assert "you wrote 'many'" in verdict(capsys)


def test_check_value(capsys):
    assert exercises.check_value(5, 5)
    assert verdict(capsys) == "Right: 5.\n"
    assert not exercises.check_value(3, 5, because="two stacked 3x3 convolutions see 5x5")
    assert verdict(capsys) == "Not quite: expected 5, not 3, because two stacked 3x3 convolutions see 5x5.\n"
    assert exercises.check_value(0.101, 0.1, tolerance=0.05)
    assert not exercises.check_value(None, 5)
    assert "Write your answer" in capsys.readouterr().out
