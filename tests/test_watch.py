"""d2lcnn.watch: each watcher alone (on a stand-in Trainer where it can), and switched off."""

from __future__ import annotations

import types
import warnings

import pytest
import torch
from torch import nn

from d2lcnn import data, models, train, watch


@pytest.fixture(scope="module")
def small():
    return data.FashionMNIST(batch_size=50, device="cpu", subset=20, test_subset=10)


def stand_in(epoch=2, steps=100, **changes):
    """What a watcher reads of a Trainer, with a fresh plan of ``steps`` steps per epoch from epoch 0."""
    plan = {"start": 0, "end": 10, "steps": steps, "step": epoch * steps, "warned": []}
    trainer = types.SimpleNamespace(plan=plan, epoch=epoch, quick=False, warn_at_chance=True,
                                    recipe=train.Recipe(), device=torch.device("cpu"), step_in_epoch=0,
                                    data=types.SimpleNamespace(resize=28))
    for key, value in changes.items():
        setattr(trainer, key, value)
    return trainer


def messages(caught) -> list[str]:
    return [str(w.message) for w in caught if w.category is watch.TrainingWarning]


def test_chance_warns_once_after_two_epochs_and_not_before():
    chance = watch.Chance(0.2)
    with warnings.catch_warnings(record=True) as caught:
        chance.on_epoch_end(stand_in(epoch=1), {"test_acc": 0.1})
        trainer = stand_in(epoch=2)
        chance.on_epoch_end(trainer, {"test_acc": 0.1})
        chance.on_epoch_end(trainer, {"test_acc": 0.1})
        chance.on_epoch_end(stand_in(epoch=3), {"test_acc": 0.5})
    assert len(messages(caught)) == 1 and "about chance" in messages(caught)[0]
    assert trainer.plan["warned"] == ["chance"]


def test_skipped_steps_warn_only_beyond_the_fraction():
    skipped = watch.SkippedSteps(0.05)
    with warnings.catch_warnings(record=True) as caught:
        skipped.on_epoch_end(stand_in(steps=1000), {"epoch": 1, "skipped_steps": 40})   # 4%: normal
        skipped.on_epoch_end(stand_in(steps=1000), {"epoch": 1, "skipped_steps": 60})
    assert len(messages(caught)) == 1 and "60 of the 1000 steps of epoch 1 were skipped" in messages(caught)[0]


def test_estimate_leaves_out_the_first_step_then_warns_once(monkeypatch):
    clock = {"now": 0.0}
    monkeypatch.setattr(watch.time, "perf_counter", lambda: clock["now"])
    estimate = watch.Estimate(after_s=1.0, long_run_s=60.0)
    trainer = stand_in(epoch=0, steps=100)
    trainer.plan["step"] = 0
    estimate.on_epoch_start(trainer)
    with warnings.catch_warnings(record=True) as caught:
        for _ in range(5):     # 100 s in the first step (a compile), then 1 s per step
            trainer.plan["step"] += 1
            trainer.step_in_epoch += 1
            clock["now"] += 100.0 if trainer.step_in_epoch == 1 else 1.0
            estimate.on_step(trainer)
    assert messages(caught) == [m for m in messages(caught) if "this fit will take about" in m]
    assert len(messages(caught)) == 1 and "1.00 s per step" in messages(caught)[0]
    assert trainer.plan["warned"] == ["estimate"]


def test_estimate_of_a_short_fit_says_nothing():
    estimate = watch.Estimate(after_s=0.0, long_run_s=3600.0)
    trainer = stand_in(epoch=0, steps=10)
    trainer.plan.update(step=0, end=1)
    estimate.on_epoch_start(trainer)
    with warnings.catch_warnings(record=True) as caught:
        for _ in range(4):
            trainer.plan["step"] += 1
            trainer.step_in_epoch += 1
            estimate.on_step(trainer)
    assert messages(caught) == [] and trainer.plan["warned"] == ["estimate"]


def test_busy_cpu_warns_for_several_threads_on_a_loaded_cpu_only(monkeypatch):
    monkeypatch.setattr(watch.os, "getloadavg", lambda: (30.0, 30.0, 30.0))
    monkeypatch.setattr(watch.os, "cpu_count", lambda: 2)
    busy = watch.BusyCpu(1.5)
    with warnings.catch_warnings(record=True) as caught:
        monkeypatch.setattr(watch.torch, "get_num_threads", lambda: 1)
        busy.check(stand_in())
        monkeypatch.setattr(watch.torch, "get_num_threads", lambda: 2)
        busy.check(stand_in(device=torch.device("meta")))   # not a CPU fit
        busy.check(stand_in())
    assert len(messages(caught)) == 1 and "load average 30 on 2 cores" in messages(caught)[0]


def test_divergence_puts_the_weights_back_and_raises(small):
    trainer = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1),
                            watchers=[])
    trainer._plan = trainer._new_plan(1)
    divergence = watch.Divergence()
    divergence.on_epoch_start(trainer)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(float("nan"))
    divergence.on_epoch_end(trainer, {"epoch": 1})          # not diverged: nothing happens
    assert torch.isnan(next(trainer.model.parameters())).all()
    with pytest.raises(watch.TrainingDiverged, match="diverged in epoch 1: the loss became NaN or infinite in 3"):
        divergence.on_epoch_end(trainer, {"epoch": 1, "diverged": True, "nonfinite_steps": 3})
    assert all(torch.equal(a, b) for a, b in zip(trainer.model.parameters(), before))


def nan_recipe():
    return train.Recipe(epochs=3, lr=1e38, schedule="constant", momentum=0.0, weight_decay=0.0,
                        clip_grad_norm=0.0, augment=False, normalize=False, init="none")


def test_without_divergence_a_nan_fit_stops_and_records_it(small):
    """Switched off, no weights come back and nothing is raised, but the fit still ends there."""
    t = train.Trainer(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data=small, recipe=nan_recipe())
    t.watchers = [w for w in t.watchers if not isinstance(w, watch.Divergence)]
    t.fit()
    assert len(t.history) == 1 and t.history[0]["diverged"] and t.epoch == 0 and t.plan is None


def test_every_trainer_gets_the_default_watchers_and_watchers_off_silences_them(small, recwarn):
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet", lr=1e-3, epochs=3))
    assert [type(w) for w in t.watchers] == [watch.Divergence, watch.Chance, watch.SkippedSteps, watch.Estimate]
    quiet = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.book("lenet", lr=1e-3, epochs=3),
                          watchers=[])
    quiet.fit()
    assert quiet.history[-1]["test_acc"] < watch.CHANCE                    # stuck, and not told
    assert not [w for w in recwarn if "chance" in str(w.message)]


def test_a_callback_gets_every_hook_once_per_step_and_epoch(small):
    calls = []

    class Counter:
        def on_fit_start(self, trainer):
            calls.append("fit")

        def on_epoch_start(self, trainer):
            calls.append("epoch start")

        def on_step(self, trainer):
            calls.append("step")

        def on_epoch_end(self, trainer, record):
            calls.append("epoch end")

    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1),
                      callbacks=[Counter()])
    t.fit()
    steps = t.plan["steps"]
    assert calls == ["fit", "epoch start"] + ["step"] * steps + ["epoch end"]
