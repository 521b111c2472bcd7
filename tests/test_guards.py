"""d2lcnn.guards and inspect.explain: bad settings are refused before any work, with the fix named."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from d2lcnn import guards, inspect, models, train
from d2lcnn.runtime import default_device


@pytest.mark.parametrize("change, words", [
    ({"batch_size": 0}, "batch_size must be a whole number of at least 1, got 0"),
    ({"batch_size": -5}, "batch_size must be a whole number of at least 1, got -5"),
    ({"batch_size": 2.5}, "batch_size must be a whole number"),
    ({"epochs": 0}, "epochs must be a whole number of at least 1"),
    ({"resize": 0}, "resize must be"),
    ({"lr": 0.0}, "lr must be a number in (0, inf)"),
    ({"lr": -0.1}, "learning rate must be positive"),
    ({"lr": float("nan")}, "lr must be"),
    ({"warmup": 1.0}, "warmup must be a number in [0, 1)"),
    ({"warmup": -0.1}, "fraction of the steps"),
    ({"momentum": 1.5}, "momentum must be"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"clip_grad_norm": -1}, "clip_grad_norm"),
    ({"schedule": "cosine"}, "schedule must be one of ('constant', 'onecycle'), got 'cosine'"),
    ({"init": "orthogonal"}, "init must be one of"),
])
def test_recipe_refuses_bad_settings_when_made(change, words):
    with pytest.raises(guards.RecipeError) as err:
        train.Recipe(**change)
    assert words in str(err.value)
    with pytest.raises(guards.RecipeError):  # also through the book's and the modern constructors
        train.Recipe.book("lenet", **change)


def test_good_recipes_pass():
    for name in ("lenet", "alexnet", "vgg11", "nin"):
        train.Recipe.book(name), train.Recipe.modern(name)
    assert dataclasses.replace(train.Recipe(), lr=0.1).lr == 0.1


@pytest.mark.parametrize("device, words", [
    ("gpu", "'gpu' is not a device name. This machine has: cpu"),
    ("cuda", "CUDA is not available here"),
    ("cuda:7", "This machine has: cpu"),
    ("mps", "MPS is not available here"),
])
def test_missing_devices_are_named_with_those_there_are(device, words):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(guards.DeviceError, match="This machine has") as err:
        default_device(device)
    assert words in str(err.value)


def test_missing_device_is_refused_before_the_data_loads(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    with pytest.raises(guards.DeviceError):
        train.Trainer(models.build("lenet"), device="cuda")


def test_output_path_checked(tmp_path):
    with pytest.raises(guards.OutputPathError, match="is a folder; give a file path"):
        guards.check_writable(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(guards.OutputPathError, match="a-file is a file, not a folder"):
        guards.check_writable(blocker / "sub" / "model.pt")
    ok = guards.check_writable(tmp_path / "new" / "model.pt")
    assert ok.parent.is_dir() and list(ok.parent.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize("name, resize, words", [
    ("lenet", 32, "layer '7' (Linear(in_features=400"),
    ("alexnet", 28, "smaller than its 3x3 window"),
])
def test_image_size_that_does_not_fit_is_refused_when_the_trainer_is_made(name, resize, words, monkeypatch):
    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    recipe = train.Recipe.book(name, resize=resize)
    with pytest.raises(guards.InputMismatchError) as err:
        train.Trainer(models.build(name), recipe=recipe, device="cpu")
    message = str(err.value)
    assert f"Fashion-MNIST at resize={resize}" in message and words in message
    assert isinstance(err.value, inspect.ShapeMismatchError) and err.value.layer


def test_paper_model_on_one_channel_data_is_refused(monkeypatch):
    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    net = models.build("lenet")
    net[0] = nn.Conv2d(3, 6, 5, padding=2)  # an RGB network
    with pytest.raises(guards.InputMismatchError, match="wants 3 channels"):
        train.Trainer(net, device="cpu")
    wide = nn.Sequential(nn.Flatten(), nn.Linear(784, 1000))  # 1,000 ImageNet classes
    with pytest.raises(guards.InputMismatchError, match="has 10 classes, but the model outputs shape"):
        train.Trainer(wide, device="cpu")


def test_explain_missing_batch_dimension_and_uint8():
    net = models.build("lenet")
    unbatched = inspect.explain(net, torch.zeros(1, 28, 28))
    assert "batch dimension is missing" in unbatched and "x.unsqueeze(0)" in unbatched and "(1, 1, 28, 28)" in unbatched
    raw = inspect.explain(net, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    assert "uint8 tensor" in raw and "x.float() / 255" in raw and "in_features" not in raw
    assert inspect.explain(net, (2, 1, 28, 28)).startswith("An input of shape (2, 1, 28, 28) fits")


@pytest.mark.parametrize("kwargs, words", [
    ({"batch_size": 0}, "batch_size must be a whole number of at least 1, got 0"),
    ({"subset": 0}, "subset must be a whole number of at least 1, got 0"),
    ({"test_subset": -1}, "test_subset must be a whole number of at least 1, got -1"),
])
def test_data_settings_are_refused_before_reading(kwargs, words, monkeypatch):
    from d2lcnn import data

    monkeypatch.setattr(data, "load_arrays", lambda *a, **k: pytest.fail("the data was read"))
    with pytest.raises(ValueError) as err:
        data.FashionMNIST(device="cpu", **kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize("args, words", [
    (["--epochs", "0"], "--epochs must be a whole number of at least 1, got 0"),
    (["--subset", "0"], "--subset must be a whole number of at least 1, got 0"),
])
def test_bench_refuses_bad_arguments(args, words, capsys):
    from d2lcnn.commands import main

    assert main(["bench", "lenet", *args]) == 2
    assert words in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# Issue 26: arguments of the wrong kind, a 3-channel dataset: one line each, before any work
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"model": None}, "model must be a network (a torch.nn.Module), got NoneType None"),
    ({"recipe": {"lr": 0.1}}, "recipe must be a Recipe, got a dict: write recipe=Recipe(**{'lr': 0.1})"),
    ({"seed": "abc"}, "seed must be a whole number of at least 0, got 'abc'"),
    ({"seed": -1}, "seed must be a whole number of at least 0, got -1"),
])
def test_trainer_arguments_of_the_wrong_kind_are_one_line(kwargs, words, monkeypatch):
    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    net = models.build("lenet")
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(guards.ArgumentError) as err:
        train.Trainer(**{"model": net, "device": "cpu", **kwargs})
    assert words in str(err.value) and isinstance(err.value, ValueError)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))   # not re-initialised


def test_a_three_channel_dataset_into_a_one_channel_net_is_refused():
    from d2lcnn import data

    class RGB(data.FashionMNIST):
        def to_float(self, images):
            return super().to_float(images).expand(-1, 3, -1, -1)

    rgb = RGB(batch_size=50, device="cpu", subset=5, test_subset=5)
    net = models.build("lenet")
    before = [p.detach().clone() for p in net.parameters()]
    with pytest.raises(guards.InputMismatchError) as err:
        train.Trainer(net, data=rgb)
    assert "images of 3 channels, 28x28" in str(err.value) and "wants 1 channel" in str(err.value)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
