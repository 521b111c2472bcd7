"""What ``bench --all`` runs: its settings, the jobs in order, and each network's goal.

A job is a dict that a worker process can read as one JSON line: ``{"kind": "train", "role":
"timing" | "speedrun" | "accuracy", "model", "seed", "epochs", ...}`` for a training run,
``{"kind": "book", "model", ...}`` for a comparison with the book's loop. :func:`plan` lays them
out in the order that makes the figures fair: what is timed runs alone on the device first; the
accuracy runs then share it. The goals are what the table checks each network against: the
book's own median where the book trains the network, ours elsewhere.
"""

from __future__ import annotations

import dataclasses

from .. import models
from ..book import BOOK_RESULTS, SOURCE as BOOK_SOURCE
from ..train import Recipe


SPEEDRUN = "resnet_speedrun"
"""The speedrun's network (see ``d2lcnn.models.resnet``)."""

SPEEDRUN_GOAL = {"test_acc": 0.94, "train_seconds": 10.0}
"""Mean test accuracy over the seeds, within this many seconds of training on one H100/H200."""

EFFICIENT_GOAL = 0.90
"""The accuracy goal of the networks the book does not train (10 epochs, every seed)."""


def goal(name: str) -> tuple[float, str]:
    """The test-accuracy goal of a ``fashion`` network and where it comes from."""
    if name in BOOK_RESULTS:
        return BOOK_RESULTS[name].test_acc_median, f"the book's median, {BOOK_SOURCE}"
    if name == SPEEDRUN:
        return SPEEDRUN_GOAL["test_acc"], (f"ours: mean over the seeds within {SPEEDRUN_GOAL['train_seconds']:g} "
                                           "s of training on one H100/H200")
    return EFFICIENT_GOAL, "ours: every seed, 10 epochs, for the networks the book does not train"


@dataclasses.dataclass
class Settings:
    """What ``bench --all`` measures; every field is recorded in the results file."""

    models: list[str]
    seeds: int = 3
    speedrun_seeds: int | None = None   # the speedrun's seeds (its goal is a mean); None: ``seeds``
    epochs: int | None = None        # epochs of every run; None: each network's recipe (10; the speedrun 16)
    subset: int | None = None        # images per class, training and test (quick checks only)
    book: bool = True                # the comparison with the book's loop, where it has a recipe
    book_epochs: int = 1
    book_subset: int | None = 1000   # the book's side: images per class
    timing_epochs: int = 2           # the run alone that times each model (the speedrun: all its seeds)
    jobs: int = 4                    # concurrent workers for the accuracy runs
    budget: float | None = None      # seconds after which no job starts
    device: str | None = None        # resolved once (``bench --all`` records "cuda", never None)
    cache: str | None = None

    def planned_seeds(self) -> dict[str, int]:
        """How many seeds each model should have: what a table compares with what ran."""
        return {m: (self.speedrun_seeds or self.seeds) if m == SPEEDRUN else self.seeds for m in self.models}


def plan(settings: Settings) -> tuple[list[dict], list[dict]]:
    """The jobs, in order: those run alone (timed), then those that share the device.

    Alone: the speedrun's seeds (its time is its goal), a short timing run of every other model
    (``timing_epochs``), the book comparisons. Shared: every seed of every other model, seed-major,
    so that a budget that runs out leaves every model with as many seeds as possible.
    """
    common = {"subset": settings.subset, "device": settings.device}

    def epochs(name: str) -> int:
        return settings.epochs or Recipe.modern(name).epochs

    alone = []
    if SPEEDRUN in settings.models:
        alone += [{"kind": "train", "role": "speedrun", "model": SPEEDRUN, "seed": s, "epochs": epochs(SPEEDRUN),
                   **common} for s in range(settings.planned_seeds()[SPEEDRUN])]
    others = [m for m in settings.models if m != SPEEDRUN]
    alone += [{"kind": "train", "role": "timing", "model": m, "seed": 0, "epochs": settings.timing_epochs, **common}
              for m in others]
    if settings.book:
        alone += [{"kind": "book", "model": m, "book_epochs": settings.book_epochs, "subset": settings.subset,
                   "book_subset": settings.book_subset, "device": settings.device, "cache": settings.cache}
                  for m in others if models.spec(m).book is not None]
    shared = [{"kind": "train", "role": "accuracy", "model": m, "seed": s, "epochs": epochs(m), **common}
              for s in range(settings.seeds) for m in others]
    return alone, shared
