"""Gather the full-data CPU runs into one results file in the benchmark's format.

    .venv/bin/python tools/full_results.py measurements/cpu-full-10-epochs.json \
        measurements/cpu-full-runs.jsonl -o d2lcnn/results/cpu-full.json

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
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from d2lcnn import benchmark, models  # noqa: E402
from d2lcnn.train import CHANCE, Recipe  # noqa: E402


NOTE = ("These are separate full runs (`python -m d2lcnn train`, or the same Trainer from a script that "
        "saved a checkpoint per epoch), made in the background over several sessions while other work ran "
        "on the same 2 cores: one PyTorch thread each, usually two runs side by side, the machine often "
        "busier still. Their accuracies are what the recipe gives; their seconds are what a busy 2-core CPU "
        "gave, slower than an idle one. Networks listed as not run have no full-data run yet.")


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
            "epochs": len(accs), "subset": None, "device": "cpu",
            "resize": run.get("resize", Recipe.modern(run["model"]).resize), "build": run.get("build"),
            "threads": run["threads"], "concurrent": run.get("concurrent", 2 if run["threads"] == 1 else 1),
            "test_acc": run["test_acc"], "test_acc_by_epoch": accs,
            "seconds_per_epoch": sorted(per_epoch[timed])[len(per_epoch[timed]) // 2],
            "first_epoch_seconds": per_epoch[0], "train_seconds": run["train_seconds"],
            "examples_per_s": sorted(speed[timed])[len(speed[timed]) // 2],
            "peak_memory_mib": None, "stuck": run["test_acc"] < CHANCE and len(accs) >= 2,
            "warmed_up": False, "finished": run.get("finished")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    args = p.parse_args()
    jobs = [job(r) for source in args.sources for r in runs_of(source)]
    order = [s.name for s in models.specs("fashion")]
    jobs.sort(key=lambda j: (order.index(j["model"]) if j["model"] in order else len(order), j["model"], j["seed"]))
    names = list(dict.fromkeys(j["model"] for j in jobs))
    missing = [m for m in order if m not in names]
    env = benchmark.environment("cpu")
    dates = sorted(str(j["finished"] or "")[:10] for j in jobs if j.get("finished"))
    data = {"format": benchmark.FORMAT,
            "command": "python -m d2lcnn train MODEL --device cpu --seed SEED [--resize R] (one run at a time; "
                       "see tools/full_results.py)",
            **env, "date": (dates[-1] if dates else env["date"][:10]) + "T00:00:00+00:00",
            "settings": {"models": names, "seeds": max(j["seed"] for j in jobs) + 1, "epochs": 10, "subset": None,
                         "book": False, "book_epochs": 1, "book_subset": None, "timing_epochs": 0,
                         "jobs": 2, "budget": None, "device": "cpu", "cache": None,
                         "planned_seeds": {m: 3 if min(j["train_seconds"] for j in jobs if j["model"] == m)
                                           <= THREE_SEEDS_WITHIN_S else 1 for m in names}},
            "complete": not missing, "elapsed_s": round(sum(j["train_seconds"] for j in jobs), 1),
            "note": NOTE, "jobs": jobs,
            "skipped": [{"kind": "train", "role": "accuracy", "model": m, "seed": 0} for m in missing],
            "models": {}}
    data["models"] = benchmark.summarize(jobs, data["settings"]["planned_seeds"])
    benchmark.write_atomic(args.out, json.dumps(data, indent=1) + "\n")
    print(benchmark.markdown(data))


if __name__ == "__main__":
    main()
