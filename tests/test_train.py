"""d2lcnn.train: recipes, the loop, interruption and resume, checkpoints, OOM, quick mode."""

from __future__ import annotations

import signal

import pytest
import torch
from torch import nn

from d2lcnn import data, models, train
from d2lcnn.models.lenet import classifier, conv_block
from d2lcnn.runtime import QUICK_ENV


@pytest.fixture(scope="module")
def small():
    """A small balanced subset: 60 training images per class, 20 test images per class."""
    return data.FashionMNIST(batch_size=50, device="cpu", subset=60, test_subset=20)


def make(small, **changes):
    recipe = train.Recipe.modern("lenet", epochs=2, **changes)
    return train.Trainer(models.build("lenet"), data=small, recipe=recipe, seed=1)


def weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def test_book_recipe_is_the_books():
    r = train.Recipe.book("lenet")
    assert (r.batch_size, r.lr, r.resize, r.epochs) == (256, 0.9, 28, 10)
    assert (r.momentum, r.weight_decay, r.schedule, r.init, r.augment, r.normalize) == (0.0, 0.0, "constant",
                                                                                       "xavier", False, False)
    assert train.Recipe.book("alexnet").resize == 224 and train.Recipe.modern("vgg11").resize == 224


def test_fit_records_history(small):
    t = make(small)
    t.fit()
    history = t.history
    assert [r["epoch"] for r in history] == [1, 2]
    for r in history:
        assert {"train_loss", "train_acc", "test_loss", "test_acc", "seconds", "examples_per_s", "lr"} <= r.keys()
        assert 0 <= r["test_acc"] <= 1 and r["examples_per_s"] > 0 and not r["interrupted"]
    assert history[1]["train_loss"] < history[0]["train_loss"]


def test_onecycle_schedule_warms_up_then_anneals():
    t = train.Trainer.__new__(train.Trainer)
    t.recipe = train.Recipe(lr=1.0, warmup=0.1, schedule="onecycle")
    rates = [t.lr_at(s, 100) for s in range(100)]
    assert rates[0] < rates[5] < rates[9] == pytest.approx(1.0)
    assert rates[50] < 1.0 and rates[-1] < 0.01


def interrupt_after(trainer, calls: int):
    """Send SIGINT to ourselves from inside the forward pass of the ``calls``-th step."""
    count = {"n": 0}

    def hook(module, inputs, output):
        if module.training:
            count["n"] += 1
            if count["n"] == calls:
                signal.raise_signal(signal.SIGINT)

    return trainer.model.register_forward_hook(hook)


def test_interrupt_keeps_model_and_history_and_resume_matches(small):
    uninterrupted = make(small)
    uninterrupted.fit()

    t = make(small)
    handle = interrupt_after(t, 7)  # 12 steps per epoch: stops mid-epoch 1
    t.fit()
    handle.remove()
    assert len(t.history) == 1 and t.history[0]["interrupted"] and t.history[0]["steps_done"] == 7
    assert t.epoch == 0
    t.fit()  # continues where it stopped
    finished = [r for r in t.history if not r["interrupted"]]
    assert [r["epoch"] for r in finished] == [1, 2]
    assert torch.allclose(weights(t), weights(uninterrupted), atol=1e-5)


def test_sigint_handler_is_restored(small):
    before = signal.getsignal(signal.SIGINT)
    make(small).fit(1)
    assert signal.getsignal(signal.SIGINT) is before


def test_checkpoint_round_trip(tmp_path, small):
    t = make(small)
    t.fit(1)
    path = t.save(tmp_path / "lenet.pt")
    fresh = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet"))
    fresh.load(path)
    assert torch.equal(weights(fresh), weights(t))
    assert fresh.history == t.history and fresh.recipe == t.recipe and fresh.epoch == 1
    fresh.fit(1)
    assert fresh.history[-1]["epoch"] == 2


def test_checkpoint_of_another_architecture_is_refused(tmp_path, small):
    t = make(small)
    path = t.save(tmp_path / "lenet.pt")
    other = train.Trainer(models.build("nin"), data=small)
    with pytest.raises(train.CheckpointError, match="checkpoint of 'lenet/fashion'.*'nin/fashion'"):
        other.load(path)
    wider = nn.Sequential(*conv_block(1, 8, padding=2), *conv_block(8, 16), *classifier(400))
    with pytest.raises(train.CheckpointError, match=r"0.weight: \(6, 1, 5, 5\) in the file, \(8, 1, 5, 5\)"):
        train.Trainer(wider, data=small).load(path)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, small, monkeypatch):
    t = make(small)
    path = t.save(tmp_path / "ckpt.pt")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        t.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_out_of_memory_message_names_the_batch(small):
    class Hungry(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            raise train.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    t = train.Trainer(Hungry(), data=small, recipe=train.Recipe(epochs=1))
    with pytest.raises(train.TrainingOutOfMemory, match="batch_size=50.*Try a smaller batch"):
        t.fit()
    assert t.model is not None and isinstance(t.history, list)


def test_quick_mode_caps_the_work(monkeypatch):
    monkeypatch.setenv(QUICK_ENV, "1")
    t = train.Trainer(models.build("lenet"), recipe=train.Recipe.book("lenet"), device="cpu")
    t.fit()
    assert len(t.history) == train.QUICK["epochs"]
    assert t.batch_size == train.QUICK["batch_size"]
    assert t._plan["steps"] == train.QUICK["steps"] and t.history[0]["quick"]


def test_xavier_and_kaiming_init_change_the_weights():
    net = models.build("lenet")
    before = net[0].weight.clone()
    train.init_weights(net, "kaiming")
    assert not torch.equal(before, net[0].weight) and torch.all(net[0].bias == 0)
    with pytest.raises(ValueError, match="init must be"):
        train.init_weights(net, "orthogonal")


def test_amp_dtype_off_cuda_is_none():
    assert train.amp_dtype(torch.device("cpu")) is None
