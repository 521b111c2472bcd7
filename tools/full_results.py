"""Gather separate full-data runs into one results file in the benchmark's format.

    .venv/bin/python tools/full_results.py measurements/cpu-full-10-epochs.json \
        measurements/cpu-full-runs.jsonl -o d2lcnn/results/cpu-full.json
    .venv/bin/python tools/full_results.py measurements/gpu-h200-runs.jsonl \
        --bench measurements/gpu-h200/bench-all-cut.json -o d2lcnn/results/gpu-h200.json

The GPU runs (one H200, 2026-12-04, two sessions of 15 minutes each, the only GPU time this project
has had) were six short calls: a ``bench --all`` cut short by its budget, whose speedrun seeds and
book comparisons ``--bench`` takes (its 1-epoch timing runs are left out: cuDNN's autotuning in that
first epoch made them 2 to 4 times slower than the epochs after it), then 11 networks trained with
``python -m d2lcnn train``, 3 or 4 started together on the GPU, then 29 more runs by
``tools/gpu_runs.sh``, 7 or 8 at a time. Each run's line says which (``concurrent``, ``note``).

The runs were made one network and seed at a time with ``python -m d2lcnn train`` (or the same
Trainer from a script that saved a checkpoint after every epoch, so that a cut-off run resumed),
not by ``bench --all``: on a 2-core CPU the full set takes days, so they ran in the background
over several sessions, two at a time with one PyTorch thread each. Each run keeps its own resize
(reduced for the networks whose default size does not fit in a run of about 90 minutes here), its
threads and how many runs shared the CPU; the file's ``settings`` say it is all data, 10 epochs
(the speedrun: its recipe's), no book comparison. ``bench --table`` prints it like any other.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from d2lcnn import benchmark, models  # noqa: E402
from d2lcnn.train import CHANCE, Recipe  # noqa: E402


NOTES = {"cpu": ("These are separate full runs (`python -m d2lcnn train`, or the same Trainer from a script that "
        "saved a checkpoint per epoch), made in the background over several sessions while other work ran "
        "on the same 2 cores: one PyTorch thread each, usually two runs side by side, the machine often "
        "busier still. Their accuracies are what the recipe gives; their seconds are what a busy 2-core CPU "
        "gave, slower than an idle one. Networks listed as not run have no full-data run yet."),
         "cuda": ("These are separate full runs (`python -m d2lcnn train MODEL --device cuda --seed SEED`) on one "
                  "H200 in two sessions of 15 minutes: seed 0 of eleven networks three or four at a time, then the "
                  "rest seven or eight at a time (`tools/gpu_runs.sh`), so that each run's seconds are shared with "
                  "the others (an upper bound of the network's time alone; VGG-11's epochs took 14.8 s beside two "
                  "others, 16 to 32 s beside seven, and 4.5 s alone). The speedrun's seeds and the comparisons with "
                  "the book's loop ran alone, in a `bench --all` cut short by its time budget. A network with fewer "
                  "seeds than planned ran out of GPU time, not into trouble.")}
"""What each device's file says about how its runs were made (``markdown`` prints it under the table)."""


THREE_SEEDS_WITHIN_S = 20 * 60
"""Three seeds for a network whose run takes at most this long here, one for the others."""


def runs_of(path: Path) -> list[dict]:
    """Runs from a measurements file (JSON with ``runs``) or a runner's JSON lines."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)["runs"]


def job(run: dict) -> dict:
    """One run as a benchmark job (role ``full``: it counts for accuracy and gives its own time, which
    was shared with other work; see the module's note)."""
    accs = run["acc_by_epoch"]
    per_epoch = run["seconds_per_epoch"]
    per_epoch = per_epoch if isinstance(per_epoch, list) else [per_epoch] * len(accs)
    speed = run["examples_per_s"]
    speed = speed if isinstance(speed, list) else [speed] * len(accs)
    timed = slice(1, None) if len(accs) > 1 else slice(None)
    return {"kind": "train", "role": "full", "model": run["model"], "seed": run["seed"],
            "epochs": len(accs), "subset": None, "device": run.get("device", "cpu"),
            "resize": run.get("resize", Recipe.modern(run["model"]).resize), "build": run.get("build"),
            "threads": run["threads"], "concurrent": run.get("concurrent", 2 if run["threads"] == 1 else 1),
            "test_acc": run["test_acc"], "test_acc_by_epoch": accs,
            "seconds_per_epoch": sorted(per_epoch[timed])[len(per_epoch[timed]) // 2],
            "first_epoch_seconds": per_epoch[0], "train_seconds": run["train_seconds"],
            "examples_per_s": sorted(speed[timed])[len(speed[timed]) // 2],
            "peak_memory_mib": None, "stuck": run["test_acc"] < CHANCE and len(accs) >= 2,
            "warmed_up": False, "finished": run.get("finished")}


def superseded(run: dict) -> list[str]:
    """The recipe settings in which a run differs from its network's modern recipe today (at the
    run's own size); empty for a run that still counts. A run that recorded no recipe counts."""
    recorded = run.get("recipe")
    if not recorded:
        return []
    today = dataclasses.asdict(Recipe.modern(run["model"], resize=run.get("resize", recorded.get("resize"))))
    return [f"{k} {recorded[k]!r} (now {today[k]!r})" for k in today if k != "name" and k in recorded
            and recorded[k] != today[k]]


def bench_jobs(path: Path) -> list[dict]:
    """From a ``bench --all`` results file: its speedrun seeds and book comparisons (run alone), not
    its short timing runs, whose single epoch holds the device's warm-up."""
    return [j for j in json.loads(path.read_text())["jobs"]
            if "error" not in j and (j["kind"] == "book" or j.get("role") == "speedrun")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("--bench", type=Path, help="a bench --all results file whose speedrun and book jobs join the runs")
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args()
    runs = [r for source in args.sources for r in runs_of(source)]
    devices = {r.get("device", "cpu") for r in runs}
    if len(devices) != 1:
        p.error(f"runs of one device per results file, got {sorted(devices)}")
    device = devices.pop()
    # A run made with a recipe that has changed since (ConvNeXt's initialisation, 2026-12-04) no
    # longer says what the recipe gives: it is listed apart, with what changed, not averaged in.
    differs = [superseded(r) for r in runs]
    old = [{"model": r["model"], "seed": r["seed"], "test_acc": r["test_acc"], "differs": d}
           for r, d in zip(runs, differs) if d]
    runs = [r for r, d in zip(runs, differs) if not d]
    jobs = [job(r) for r in runs] + (bench_jobs(args.bench) if args.bench else [])
    order = [s.name for s in models.specs("fashion")]
    jobs.sort(key=lambda j: (order.index(j["model"]) if j["model"] in order else len(order), j["model"], j["kind"],
                             j.get("seed") or 0))
    names = list(dict.fromkeys(j["model"] for j in jobs))
    missing = [m for m in order if m not in names]
    env = benchmark.environment("cpu")
    if device != "cpu":      # gathered here, measured there: the GPU's name and versions come from the runs
        env.update(device=device, device_name=runs[0]["device_name"], torch=runs[0]["torch"], cpu_count=None,
                   torchvision=None, python=None)
    trained = [j for j in jobs if j["kind"] == "train"]
    dates = sorted(str(j.get("finished") or "")[:10] for j in trained if j.get("finished"))
    data = {"format": benchmark.FORMAT,
            "command": f"python -m d2lcnn train MODEL --device {device} --seed SEED [--resize R] ("
                       + ("one run at a time" if device == "cpu" else "3 to 8 runs at a time") + "; see tools/full_results.py)",
            **env, "date": (dates[-1] if dates else env["date"][:10]) + "T00:00:00+00:00",
            "settings": {"models": names, "seeds": max(j["seed"] for j in trained) + 1,
                         # None: each network's recipe's epochs (10, the speedrun's 16), as bench --all trains
                         "epochs": 10 if all(j["epochs"] == 10 for j in trained) else None, "subset": None,
                         "book": any(j["kind"] == "book" for j in jobs), "book_epochs": 1,
                         "book_subset": next((j.get("book_subset") for j in jobs if j["kind"] == "book"), None),
                         "timing_epochs": 0, "jobs": max(j.get("concurrent") or 1 for j in trained), "budget": None,
                         "device": device, "cache": None,
                         "planned_seeds": {m: 3 if min(
                             j["train_seconds"] for j in trained if j["model"] == m) <= THREE_SEEDS_WITHIN_S else 1
                             for m in names if any(j["model"] == m for j in trained)}},
            "complete": not missing, "elapsed_s": round(sum(j["train_seconds"] for j in trained), 1),
            "note": NOTES[device] + "".join(
                f" Not counted: {o['model']} seed {o['seed']} (test accuracy {o['test_acc']:.3f}), made before its "
                f"recipe changed: {', '.join(o['differs'])}." for o in old),
            "superseded": old, "jobs": jobs,
            "skipped": [{"kind": "train", "role": "accuracy", "model": m, "seed": 0} for m in missing],
            "models": {}}
    data["models"] = benchmark.summarize(jobs, data["settings"]["planned_seeds"])
    benchmark.write_atomic(args.out, json.dumps(data, indent=1) + "\n")
    print(benchmark.markdown(data))


if __name__ == "__main__":
    main()
