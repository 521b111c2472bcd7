"""What the benchmark says: the summary per model, the Markdown table, the committed results.

A results file (JSON) holds the settings, where it was measured (:func:`runner.environment
<d2lcnn.benchmark.runner.environment>`), every finished job as its worker reported it, and the
jobs not run. Everything the table shows is recomputed from those jobs by :func:`summarize`
(also by :func:`load`, so that an older file gets today's summary): accuracy over the seeds,
the time from the runs alone on the device, peak memory, the comparison with the book's loop,
and whether each network met its goal (:func:`d2lcnn.benchmark.jobs.goal`).

:func:`markdown` turns a file into the table the README shows, with where and how it was
measured; :func:`published` picks the committed file the comparison lesson shows.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
from pathlib import Path

from .. import models
from ..inspect import _human, describe
from ..train import Recipe
from .jobs import EFFICIENT_GOAL, SPEEDRUN, SPEEDRUN_GOAL, Settings, goal


FORMAT = "d2lcnn-bench-1"
"""The results file's format tag; :func:`load` refuses files of another format."""


@functools.lru_cache(maxsize=None)
def _describe(name: str, resize: int, build: tuple = ()) -> dict:
    """Parameters and FLOPs of a ``fashion`` network as it ran: its image size and the builder's
    arguments (``build``: sorted ``(key, value)`` pairs), traced once, on the meta device."""
    return describe(models.spec(name), resize, dict(build))


def summarize(jobs: list[dict], planned: dict[str, int] | None = None) -> dict:
    """Per model: accuracy over the seeds, the timing from the runs alone, memory, the book comparison.

    ``planned``: the seeds each model should have (:meth:`Settings.planned_seeds`); a model with
    fewer (a budget cut them) does not meet its goal, whatever the seeds that ran say.
    """
    table = {}
    for job in jobs:
        name = job["model"]
        if job["kind"] == "book" and "error" in job:
            continue
        if name not in table:
            target, source = goal(name)
            table[name] = {"params": None, "flops": None, "resize": Recipe.modern(name).resize,
                           "goal": target, "goal_source": source, "runs": [], "book": None}
        row = table[name]
        if job["kind"] == "book":
            # compute_ratio and the data loading times are absent from files made before they were measured.
            row["book"] = {k: job.get(k) for k in ("ratio", "compute_ratio", "ours_per_s", "book_per_s",
                                                   "ours_seconds_per_epoch", "book_seconds_per_epoch",
                                                   "ours_train_only_per_s", "book_compute_only_per_s",
                                                   "ours_data_s", "book_data_s", "book_subset", "book_test_acc",
                                                   "ours_test_acc", "epochs", "precision", "device")}
        else:
            # A failed run (diverged, out of memory) counts as a seed without an accuracy.
            row["runs"].append({k: job.get(k) for k in (
                "role", "seed", "test_acc", "test_acc_by_epoch", "epochs", "seconds_per_epoch", "first_epoch_seconds",
                "train_seconds", "examples_per_s", "peak_memory_mib", "stuck", "warmed_up", "concurrent", "error",
                "resize", "build")})
    for name, row in table.items():
        counted = [r for r in row["runs"] if r["role"] != "timing"]
        accs = [r["test_acc"] for r in counted if r["test_acc"] is not None]
        # Times come from runs alone on the device; a "full" run (gathered by tools/full_results.py,
        # no timing run beside it) gives its own, as the file's notes say.
        solo = [r for r in row["runs"] if r["role"] in ("timing", "speedrun", "full") and r["error"] is None]
        row["resize"] = next((r["resize"] for r in row["runs"] if r.get("resize")), row["resize"])
        build = next((r["build"] for r in row["runs"] if r.get("build")), {})
        facts = _describe(name, row["resize"], tuple(sorted(build.items())))
        row["params"], row["flops"] = facts["params"], facts["flops"]
        row["seeds"] = len(counted)
        row["seeds_planned"] = (planned or {}).get(name, len(counted))
        row["test_acc_mean"] = statistics.fmean(accs) if accs else None
        row["test_acc_min"] = min(accs) if accs else None
        row["test_acc_max"] = max(accs) if accs else None
        row["stuck_runs"] = sum(bool(r["stuck"]) for r in counted)
        row["seconds_per_epoch"] = statistics.median(r["seconds_per_epoch"] for r in solo) if solo else None
        row["examples_per_s"] = statistics.median(r["examples_per_s"] for r in solo) if solo else None
        memory = [r["peak_memory_mib"] for r in row["runs"] if r["peak_memory_mib"] is not None]
        row["peak_memory_mib"] = max(memory) if memory else None
        if name == SPEEDRUN:
            times = [r["train_seconds"] for r in solo]
            row["train_seconds_mean"] = statistics.fmean(times) if times else None
            row["goal_reached"] = bool(accs) and row["test_acc_mean"] >= row["goal"] and bool(times) and \
                max(times) <= SPEEDRUN_GOAL["train_seconds"]
        else:
            row["goal_reached"] = bool(accs) and min(accs) >= row["goal"] and len(accs) == row["seeds"]
        # Reached by the seeds that ran, and every planned seed ran.
        row["met_goal"] = row["goal_reached"] and row["seeds"] >= row["seeds_planned"]
    return table


def load(path: str | os.PathLike) -> dict:
    """A results file, checked: its format; the summary per model is recomputed from its jobs."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a d2lcnn benchmark results file (format {data.get('format')!r}, "
                         f"expected {FORMAT!r})")
    if "jobs" in data:
        data["models"] = summarize(data["jobs"], _planned(data.get("settings")))
    return data


def _planned(settings: dict | None) -> dict[str, int] | None:
    """The planned seeds per model of a results file's settings (None for files without them)."""
    if settings and isinstance(settings.get("planned_seeds"), dict):   # set per model (tools/full_results.py)
        return settings["planned_seeds"]
    if not settings or "models" not in settings or "seeds" not in settings:
        return None
    fields = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in settings.items() if k in fields}).planned_seeds()


def device_label(data: dict) -> str:
    """Where a results file was measured, in words: the GPU's name, or the CPU's and its cores."""
    return data["device_name"] + (f", {data['cpu_count']} cores" if data["device"] == "cpu" else "")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


PUBLISHED = Path(__file__).parent.parent / "results"
"""Where the committed results files live (package data, so that the lesson finds them on Colab too)."""


def full_data(data: dict) -> bool:
    """Whether a results file trained on all the data for the full epochs (not a smoke run)."""
    s = data.get("settings", {})
    return s.get("subset") is None and (s.get("epochs") is None or s["epochs"] >= 10)


def trained_networks(data: dict) -> int:
    """How many networks of a results file have a test accuracy."""
    return sum(row.get("test_acc_mean") is not None for row in data.get("models", {}).values())


def committed() -> list[dict]:
    """Every committed results file (in :data:`PUBLISHED`), loaded, oldest name first."""
    files = sorted(PUBLISHED.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no results file in {PUBLISHED}: run python -m d2lcnn bench --all and "
                                "copy its results file there")
    return [load(f) for f in files]


def published() -> dict:
    """The committed results the comparison lesson shows (its ``device_name``, ``date`` and
    ``command`` say what it is). In order of preference: a run on all the data for the full epochs
    over a smoke run (a few epochs on a few images per class); a complete file over one cut short;
    the file with more networks trained; a GPU run over a CPU one; the newest. So a GPU run that
    covers what the CPU's covers replaces it, and one cut short early does not hide the networks
    that only the CPU's has."""
    return max(committed(), key=lambda d: (full_data(d), d["complete"], trained_networks(d), d["device"].startswith("cuda"),
                                    d["date"]))


def _what(job: dict) -> str:
    """'seed 1', 'timing run', 'book comparison': which job of a model."""
    if job["kind"] == "book":
        return "book comparison"
    return "timing run" if job.get("role") == "timing" else f"seed {job.get('seed')}"


def _versus(book: dict | None) -> str:
    """The "vs the book's loop" cell: the compute ratio and the whole-epoch one, each named."""
    if book is None:
        return "–"
    whole = f"{book['ratio']:.1f}× whole epochs"
    return whole if book.get("compute_ratio") is None else f"{book['compute_ratio']:.1f}× compute, {whole}"


def _fmt(value, spec: str, missing: str = "–") -> str:
    return missing if value is None else format(value, spec)


RECIPE_EPOCHS = "each network's recipe's epochs (10; the speedrun 16)"


def markdown(data: dict) -> str:
    """The results as a Markdown table (what the README shows), with where and how they were measured."""
    s = data["settings"]
    lines = ["| model | params | FLOPs/image | input | test acc: mean (min–max), seeds | goal | s/epoch | "
             "examples/s | peak memory | vs the book's loop |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name, row in data["models"].items():
        acc = "–" if row["test_acc_mean"] is None else (
            f"{row['test_acc_mean']:.3f} ({row['test_acc_min']:.3f}–{row['test_acc_max']:.3f}), {row['seeds']}")
        if row["stuck_runs"]:
            acc += f", **{row['stuck_runs']} stuck at chance**"
        if row["met_goal"]:
            mark = "✓"
        elif row.get("goal_reached") and row["seeds"] < row["seeds_planned"]:   # a budget cut the seeds
            mark = f"{row['seeds']} of {row['seeds_planned']} seeds"
        else:
            mark = "✗"
        vs = _versus(row["book"])
        seconds = _fmt(row["seconds_per_epoch"], ".2f")
        if name == SPEEDRUN and row.get("train_seconds_mean") is not None:
            seconds += f" ({row['train_seconds_mean']:.1f} s in all)"
        memory = "–" if row["peak_memory_mib"] is None else f"{row['peak_memory_mib']:,.0f} MiB"
        lines.append(f"| {name} | {row['params']:,} | {_human(row['flops'])} | {row['resize']}×{row['resize']} | "
                     f"{acc} | {row['goal']:.3f} {mark} | {seconds} | {_fmt(row['examples_per_s'], ',.0f')} | "
                     f"{memory} | {vs} |")
    status = "complete" if data["complete"] else "**incomplete** (cut short; the table holds what finished)"
    subset = "all 60,000 training images" if s["subset"] is None else f"{s['subset']} images per class"
    book_subset = "all of them" if s["book_subset"] is None else f"{s['book_subset']} images per class"
    seeds = "seed 0" if s["seeds"] == 1 else f"seeds 0–{s['seeds'] - 1}"
    sharing = "one run at a time" if s["jobs"] == 1 else f"{s['jobs']} runs at a time sharing the device"
    timing = (" (median over the epochs after the first)" if s["timing_epochs"] > 1 else
              " (its only epoch, so the figures include the warm-up: on a GPU cuDNN tries its kernels for every "
              "new layer shape in the first epoch, which took 2 to 4 times a later one on an H200)")
    where = device_label(data)
    notes = [
        "",
        f"Measured on {where} ({data['device']}), torch {data['torch']}, {data['date'][:10]}, "
        f"{status}, {data['elapsed_s']:.0f} s in all: `{data['command']}`.",
        f"Each model: its modern recipe (`Recipe.modern`), "
        f"{_plural(s['epochs'], 'epoch') if s.get('epochs') else RECIPE_EPOCHS} on {subset}, "
        f"{seeds}, {sharing}. Seconds per epoch (training and the test-set evaluation) and examples/s "
        + (f"(training) come from a {s['timing_epochs']}-epoch run alone on the device{timing}. "
           if s["timing_epochs"] else "(training): the median over each run's epochs after the first, of the runs "
           "themselves, which shared the device (see below). ") + "Goals: the book's "
        "median for the book's models, "
        f"{EFFICIENT_GOAL} in every seed for the others, {SPEEDRUN_GOAL['test_acc']} mean within "
        f"{SPEEDRUN_GOAL['train_seconds']:g} s for the speedrun (after one untimed warm-up epoch).",
        (f"vs the book's loop: examples/s of our Trainer over d2l's `train_ch6` with its DataLoader, both with "
         f"the book's recipe, {_plural(s['book_epochs'], 'epoch')}, the same device, float32 on both sides; "
         "*compute*: the training steps alone, once a batch is ready (train_ch6's own timer; ours includes "
         "making each batch on the device), *whole epochs*: wall time with data loading and evaluation; "
         f"the book's side on {book_subset}." if s["book"] else "vs the book's loop: not measured in this run.")
        + " FLOPs: one image, a multiply-add counts as two.",
    ]
    if data.get("note"):
        notes.append(data["note"])
    loading = [f"{name} {row['book']['ours_data_s']:.1f} s ours, {row['book']['book_data_s']:.1f} s the book's"
               for name, row in data["models"].items() if row["book"] and row["book"].get("book_data_s") is not None]
    if loading:
        notes.append("Data loading, apart from compute (reading the files; for the book also every wait for its "
                     "DataLoader's next batch): " + "; ".join(loading) + ".")
    if data["skipped"]:
        notes.append("Not run (time budget or interruption): " + ", ".join(
            f"{j['model']} " + _what(j) for j in data["skipped"]) + ".")
    failed = [j for j in data["jobs"] if "error" in j]
    if failed:
        notes.append("Failed: " + "; ".join(f"{j['model']} {_what(j)}: {j['error']}" for j in failed) + ".")
    return "\n".join(lines + notes) + "\n"
