"""The speedrun's CPU track: ``python -m d2lcnn bench --speedrun-cpu``.

The speedrun's goal (94% in 10 s, :data:`~d2lcnn.benchmark.jobs.SPEEDRUN_GOAL`) is about a GPU:
on the 2-core CPU this course is written on, its network takes over five minutes per epoch. A
student without a GPU gets a track of their own, with a goal measured on that CPU: **mean test
accuracy >= 0.93 over three seeds, each seed within 300 s of training** (after one untimed warm-up
epoch, the GPU track's rule).

The entry (:data:`SPEEDRUN_CPU`) is the same network family a quarter as wide (16-32-64 channels:
about 1/16 of the arithmetic), a batch of 256, 12 epochs of the one-cycle recipe, and bfloat16
autocast, which the Trainer uses on a CPU with native bfloat16 instructions (elsewhere it trains in
float32, slower). Seeds run one after another, alone, since their time is the goal; the results
file is rewritten after each, so a run cut short keeps what finished.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from .jobs import SPEEDRUN
from .measure import train_run
from .report import PUBLISHED
from .runner import environment, write_atomic

SPEEDRUN_CPU = {"build": {"channels": (16, 32, 64)}, "changes": {"batch_size": 256, "lr": 0.4, "epochs": 12},
                "amp": True}
"""The CPU entry: builder arguments of :data:`SPEEDRUN`'s network, recipe changes, the Trainer's ``amp``."""

GOAL = {"test_acc": 0.93, "train_seconds": 300.0}
"""Mean test accuracy over the seeds, each seed within this many seconds of training on a 2-core CPU."""

FORMAT = "d2lcnn-speedrun-cpu-1"
COMMITTED = PUBLISHED / "speedrun" / "cpu.json"
"""The committed CPU track (a folder of its own: ``published()`` reads only the benchmark's files)."""


def summary(runs: list[dict]) -> dict:
    """Mean, spread and slowest seed of ``runs``, and whether they meet :data:`GOAL`."""
    accs = [r["test_acc"] for r in runs]
    slowest = max(r["train_seconds"] for r in runs)
    mean = statistics.mean(accs)
    return {"seeds": len(runs), "test_acc_mean": round(mean, 4), "test_acc_min": min(accs),
            "test_acc_max": max(accs), "slowest_train_seconds": round(slowest, 1),
            "met_goal": mean >= GOAL["test_acc"] and slowest <= GOAL["train_seconds"]}


def run(seeds: int, out: str | os.PathLike, command: str, device="cpu", subset: int | None = None,
        epochs: int | None = None, progress=print) -> dict:
    """Train the CPU entry for ``seeds`` seeds, one at a time, and write the results file ``out``.

    ``subset`` and ``epochs`` shrink a check (the file then says so, and its goal does not apply).
    """
    out = Path(out)
    data = {"format": FORMAT, "command": command, **environment(device), "goal": GOAL,
            "entry": {"network": SPEEDRUN, **SPEEDRUN_CPU}, "subset": subset, "epochs": epochs,
            "runs": [], "summary": None}
    for seed in range(seeds):
        result = train_run(SPEEDRUN, seed, epochs, device, subset, warmup=True, **SPEEDRUN_CPU)
        data["runs"].append({"seed": seed, **{k: result[k] for k in (
            "test_acc", "test_acc_by_epoch", "epochs", "train_seconds", "seconds_per_epoch", "first_epoch_seconds",
            "examples_per_s", "compute_path", "warnings")}, "load_after": [round(x, 2) for x in os.getloadavg()]})
        data["summary"] = summary(data["runs"])
        write_atomic(out, json.dumps(data, indent=1) + "\n")
        progress(f"seed {seed}: test acc {result['test_acc']:.4f} in {result['train_seconds']:.1f} s of training")
    return data


def markdown(data: dict) -> str:
    """A results file as a table: one row per seed, then the mean against the goal."""
    entry, goal, s = data["entry"], data["goal"], data["summary"]
    lines = ["| seed | test acc | seconds of training | compute path |", "| ---: | ---: | ---: | --- |"]
    lines += [f"| {r['seed']} | {r['test_acc']:.4f} | {r['train_seconds']:.1f} | {r['compute_path']} |"
              for r in data["runs"]]
    shrunk = data["subset"] is not None or data["epochs"] is not None
    verdict = ("a shrunk check (subset or epochs given): the goal does not apply" if shrunk
               else f"goal {'met' if s['met_goal'] else 'missed'}")
    lines += ["", f"Mean {s['test_acc_mean']:.4f} over {s['seeds']} seed(s) ({s['test_acc_min']:.4f}–"
              f"{s['test_acc_max']:.4f}), slowest seed {s['slowest_train_seconds']:.1f} s; goal: mean >= "
              f"{goal['test_acc']} with every seed within {goal['train_seconds']:g} s: {verdict}.",
              f"Entry: {entry['network']} built with {entry['build']}, recipe changes {entry['changes']}, "
              f"amp={entry['amp']}. Measured on {data['device_name']} ({data['date'][:10]}): `{data['command']}`."]
    return "\n".join(lines) + "\n"


def committed() -> dict | None:
    """The committed CPU track, or None when there is none."""
    if not COMMITTED.exists():
        return None
    data = json.loads(COMMITTED.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{COMMITTED} is not a CPU-track file (format {data.get('format')!r}, expected {FORMAT!r})")
    return data
