"""Watchers: what the Trainer checks while it trains, each a callback of its own.

A run can go wrong in ways a student would not see in the numbers: the loss turns NaN, the
network never leaves chance level, float16 skips most of its steps, a fit will take an hour, or
a CPU that other programs keep busy makes several PyTorch threads wait for each other. Each
watcher notices one of these and says what to do.

A watcher is a Trainer callback (the same hooks a user's callback gets, all optional):
``on_fit_start(trainer)``, ``on_epoch_start(trainer)``, ``on_step(trainer)`` after each counted
step, and ``on_epoch_end(trainer, record)`` after each epoch that was not interrupted. Every
Trainer gets :func:`d2lcnn.train.default_watchers`; ``Trainer(..., watchers=[...])`` gives
others, and ``trainer.watchers`` is a plain list to remove one from. The busy-CPU check
(:class:`BusyCpu`) runs when :class:`Estimate` looks at the clock; ``Estimate(busy=None)`` leaves
it out. Without :class:`Divergence` a fit whose loss became NaN still stops and records the
epoch as ``diverged``, but its weights stay as they became and nothing is raised.

What a watcher has said in a fit is kept in the plan's ``warned`` list, which checkpoints keep:
a resumed fit does not say it again.
"""

from __future__ import annotations

import itertools
import os
import time
import warnings

import torch

from .recipe import zero_momentum

CHANCE = 0.2
"""Test accuracy below this after two epochs or more counts as stuck at chance (10 classes: 0.1)."""

SKIPPED_WARN = 0.05
"""float16: warn when the scaler skipped more than this fraction of an epoch's steps (and over 10)."""

LONG_RUN_S = 300
"""A fit expected to take longer than this (seconds) gets a warning that says how to shorten it."""

ESTIMATE_AFTER_S = 10
"""How long a fit runs before its duration is estimated (once per fit)."""

BUSY_LOAD_PER_CORE = 1.5
"""A CPU fit warns about thread contention when the load average exceeds this per core (plus one)."""


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message says in which epoch and what to try."""


class TrainingWarning(UserWarning):
    """Something about a run the student should know: stuck at chance, a long run, lost weights."""


def warn(message: str) -> None:
    """Show ``message`` as a TrainingWarning every time (Python shows a repeated warning once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", TrainingWarning)
        warnings.warn(message, TrainingWarning, stacklevel=3)


def duration(seconds: float) -> str:
    """3725 -> '1 h 2 min', 420 -> '7 min'."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


class Divergence:
    """A loss that became NaN or infinite: weights put back, the cause named, TrainingDiverged raised.

    At the start of each epoch begun from its first step it keeps a copy of the weights; when
    the epoch's record says ``diverged``, it puts them back and clears the optimizer's momentum
    (momentum that saw NaN gradients would bring them back). Before it blames the learning rate
    it looks at the epoch's batches: NaN in the input images is named as the cause instead.
    """

    def __init__(self):
        self.good: dict | None = None   # the weights at the start of the current epoch

    def on_epoch_start(self, trainer) -> None:
        self.good = None
        if trainer.step_in_epoch == 0:   # an epoch resumed halfway has no clean start to go back to
            self.good = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    def on_epoch_end(self, trainer, record: dict) -> None:
        if not record.get("diverged"):
            return
        restored = "The weights are left as they are (the epoch began before an interruption)."
        if self.good is not None:
            trainer.model.load_state_dict(self.good)
            trainer.optimizer.state.clear()
            if trainer.scaler is not None:   # a fused optimizer's buffers, as make_optimizer gave them
                zero_momentum(trainer.optimizer)
            restored = (f"The weights were put back as they were at the start of epoch {record['epoch']}"
                        " (the optimizer's momentum was cleared); the history keeps this epoch's record.")
        steps, lr = record.get("nonfinite_steps") or 0, trainer.recipe.lr
        bad = nonfinite_batches(trainer, record["epoch"] - 1, training=bool(steps))
        if bad:
            raise TrainingDiverged(
                f"training stopped in epoch {record['epoch']}: the input images of {bad} "
                f"{'training' if steps else 'test'} batch{'es' if bad != 1 else ''} hold NaN or infinite values, so "
                f"the loss did too; the learning rate ({lr:g}) is not the cause. {restored} Fix or drop those images "
                "(for a batch X, torch.isfinite(X).flatten(1).all(1) marks the good ones), then make a new Trainer.")
        where = f"in {steps} of its steps" if steps else "in the evaluation"
        bigger = "" if trainer.recipe.clip_grad_norm else ", gradient clipping (clip_grad_norm=5.0)"
        raise TrainingDiverged(
            f"training diverged in epoch {record['epoch']}: the loss became NaN or infinite {where} "
            f"(learning rate {lr:g}). {restored} Try a lower learning rate, e.g. "
            f"lr={lr / 10:g}{bigger}, or init='kaiming' for a ReLU network; then make a new Trainer.")


def nonfinite_batches(trainer, epoch: int, training: bool) -> int:
    """How many of ``epoch``'s training batches (or of the test batches) hold NaN/inf.

    The batches are a function of (seed, epoch), so these are the ones the epoch saw.
    """
    if training:
        batches = itertools.islice(trainer.train_batches(epoch), trainer.plan["steps"])
    else:
        batches = trainer.test_batches()
    with torch.no_grad():
        return sum(int(not bool(torch.isfinite(X).all())) for X, _ in batches)


class Chance:
    """Warn once per fit when test accuracy is still below ``chance`` after two epochs.

    Off in quick mode (one epoch) and on a Trainer with ``warn_at_chance = False``: a lesson's
    control run that is meant not to learn.
    """

    def __init__(self, chance: float = CHANCE):
        self.chance = chance

    def on_epoch_end(self, trainer, record: dict) -> None:
        plan, epochs = trainer.plan, trainer.epoch - trainer.plan["start"]
        if trainer.quick or not trainer.warn_at_chance or "chance" in plan["warned"] or epochs < 2:
            return
        if record["test_acc"] is not None and record["test_acc"] < self.chance:
            plan["warned"].append("chance")
            warn(f"after {epochs} epochs the test accuracy is {record['test_acc']:.3f}, about "
                 f"chance (0.1 for 10 classes): this network is not learning. Likely causes: the learning rate "
                 f"(lr={trainer.recipe.lr:g}) is too small or too large; the initialisation (init="
                 f"{trainer.recipe.init!r}; try 'xavier' for sigmoid networks, 'kaiming' for ReLU ones); saturated "
                 "sigmoids (large inputs or weights). Stop it (the stop button) and try another recipe.")


class SkippedSteps:
    """float16: warn once per fit when the gradient scaler skipped more than ``fraction`` of an
    epoch's steps (and more than 10): the weights then barely moved."""

    def __init__(self, fraction: float = SKIPPED_WARN):
        self.fraction = fraction

    def on_epoch_end(self, trainer, record: dict) -> None:
        plan = trainer.plan
        skipped, steps = record["skipped_steps"], plan["steps"]
        if "skipped" in plan["warned"] or skipped <= max(10, self.fraction * steps):
            return
        plan["warned"].append("skipped")
        warn(f"{skipped} of the {steps} steps of epoch {record['epoch']} were skipped: their float16 gradients "
             "overflowed, and the gradient scaler skips such a step and halves its scale. A few at the start are "
             "normal; this many mean the weights barely moved. Try a lower learning rate (lr="
             f"{trainer.recipe.lr:g}), gradient clipping, or no mixed precision (Trainer(..., amp=False)).")


class Estimate:
    """Once per fit, after ``after_s`` seconds: the CPU contention check (``busy``, a
    :class:`BusyCpu` or None), then a warning when the rest of the fit would take longer than
    ``long_run_s``.

    The clock starts after an epoch's first step: that step holds ``torch.compile``'s compilation
    and cuDNN's autotuning, which a 30-second compile would otherwise turn into "about 44 min
    more" for a run of seconds.
    """

    def __init__(self, after_s: float = ESTIMATE_AFTER_S, long_run_s: float = LONG_RUN_S, busy=None):
        self.after_s, self.long_run_s, self.busy = after_s, long_run_s, busy
        self.warm: tuple[float, int] | None = None   # (time, steps) after this epoch's first step

    def on_epoch_start(self, trainer) -> None:
        self.warm = None

    def on_step(self, trainer) -> None:
        if self.warm is None:
            self.warm = (time.perf_counter(), trainer.step_in_epoch)
            return
        plan, steps_here = trainer.plan, trainer.step_in_epoch - self.warm[1]
        if "estimate" in plan["warned"] or steps_here < 2:
            return
        elapsed = time.perf_counter() - self.warm[0]
        if elapsed < self.after_s:
            return
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)   # once per fit: the host ran ahead of the GPU
            elapsed = time.perf_counter() - self.warm[0]
        plan["warned"].append("estimate")
        if self.busy is not None:
            self.busy.check(trainer)
        total_steps = (plan["end"] - plan["start"]) * plan["steps"]
        left = (total_steps - plan["step"]) * elapsed / steps_here
        if left < self.long_run_s:
            return
        warn(f"this fit will take about {duration(left)} more on {trainer.device} ({elapsed / steps_here:.2f} s per "
             f"step, {total_steps - plan['step']:,} steps left). To finish sooner: a smaller setting (the "
             f"notebook's CPU setting, if you are not on it already), a smaller resize (now {trainer.data.resize}), "
             "fewer epochs or a subset of the data (FashionMNIST(subset=...)); on Colab, choose a GPU runtime. "
             "The stop button stops it after the current step; fit() continues from there.")


class BusyCpu:
    """Warn when a CPU fit runs several PyTorch threads on a machine that other programs keep busy.

    The threads of one operation wait for each other at its end; when other programs hold the
    cores, each wait lasts a scheduler's time slice. On a 2-core CPU with a load average of 20-30,
    one thread trained 10-12 times faster than two (lessons 13 and 14 measured it). The check
    runs when :class:`Estimate` looks at the clock, once per fit, so that the load is the fit's own.
    """

    def __init__(self, load_per_core: float = BUSY_LOAD_PER_CORE):
        self.load_per_core = load_per_core

    def check(self, trainer) -> None:
        threads, cores = torch.get_num_threads(), os.cpu_count() or 1
        if trainer.device.type != "cpu" or threads < 2 or not hasattr(os, "getloadavg"):
            return
        load = os.getloadavg()[0]
        if load <= self.load_per_core * cores + 1:
            return
        warn(f"this CPU is busy: load average {load:.0f} on {cores} cores, and PyTorch runs {threads} threads that "
             "wait for each other while other programs hold the cores. On a loaded 2-core CPU one thread trained "
             "10-12 times faster in our runs: call torch.set_num_threads(1) (it takes effect at once; fit() goes "
             "on where it is), or close the other programs.")
