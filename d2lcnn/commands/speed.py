"""``python -m d2lcnn speed``: the Trainer's chosen compute path against plain float32, on the CPU.

For each ``fashion`` network (or those of ``--models``) at its lesson's CPU setting: examples/s
of both, taking turns in this process, and their ratio; then the lesson's run both ways with the
same seed, and the test accuracy of each (``--no-accuracy`` skips it; ``--subset`` and
``--epochs`` shrink it). See :mod:`d2lcnn.speed`. ``--out FILE`` writes the JSON after every
network (an interrupted run keeps what finished) and the Markdown table beside it.
``--optimizer`` measures the SGD instead: PyTorch's default against the Trainer's fused one,
milliseconds per update of each network's parameters, then per training step at the lesson's
CPU setting (``--steps`` batches a turn, ``--rounds`` turns each).
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
from pathlib import Path

import torch

from .. import speed
from ..guards import check_count, check_writable
from . import emit


def add_parser(sub) -> None:
    p = sub.add_parser("speed", help="the chosen CPU path vs plain float32: examples/s and test accuracy")
    p.add_argument("--models", help="a comma-separated list (default: every fashion network)")
    p.add_argument("--rounds", type=int, default=3, help="turns each side takes (default 3)")
    p.add_argument("--steps", type=int, default=5, help="training steps per turn (default 5)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="at most N training and N test images of each class (default: the lesson's)")
    p.add_argument("--epochs", type=int, help="at most this many epochs in the accuracy runs (default: the lesson's)")
    p.add_argument("--no-accuracy", action="store_true", help="measure speed only")
    p.add_argument("--amp", action="store_true",
                   help="the bfloat16 path (amp=True), also for a network registered to keep float32 on a CPU")
    p.add_argument("--optimizer", action="store_true",
                   help="time the SGD update and a training step with it: PyTorch's default against the Trainer's fused one")
    p.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's own choice)")
    p.add_argument("--out", metavar="FILE", help="write the JSON here, and the Markdown table beside it (.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    names = list(speed.LESSON_CPU)
    if args.models is not None:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        if not names:
            raise ValueError("--models names no network; give e.g. --models lenet,resnext")
        for m in names:
            speed.setting(m)        # an unknown name is refused with the list of known ones
    for option in ("rounds", "steps", "subset", "epochs", "threads"):
        if getattr(args, option) is not None:
            check_count(f"--{option}", getattr(args, option), error=ValueError)
    if args.out:
        check_writable(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.optimizer:
        return run_optimizer(names, args)
    result = started("examples/s of the Trainer's chosen compute path against plain eager float32 (taking turns, "
                     "training steps only), and test accuracy after the lesson's CPU-setting run both ways, same seed")
    for name in names:
        row = {"model": name, "setting": speed.setting(name)}
        row.update(speed.throughput(name, rounds=args.rounds, steps=args.steps, subset=args.subset,
                                    amp=args.amp or None))
        if not args.no_accuracy:
            row["accuracy"] = speed.accuracy(name, subset=args.subset, epochs=args.epochs, amp=args.amp or None)
        row["load"] = speed.machine()["load"]
        result["rows"].append(row)
        result["summary"] = speed.summary(result["rows"])
        print(f"{name:<16} {row['float32_per_s']:>9,.0f} -> {row['chosen_per_s']:>9,.0f} examples/s  "
              f"{row['ratio']:.2f}x" + (f"  test acc {row['accuracy']['float32_test_acc']:.3f} -> "
                                        f"{row['accuracy']['chosen_test_acc']:.3f}" if "accuracy" in row else ""),
              file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            Path(args.out).with_suffix(".md").write_text(speed.markdown(result))
    emit(result, args.json, speed.markdown(result).rstrip("\n"))
    return 0


def started(what: str) -> dict:
    """A results file's head: what it measures, the command line, when, on what machine."""
    return {"what": what,
            "command": "python -m d2lcnn " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["speed"]
            else "python -m d2lcnn speed",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": speed.machine(), "rows": []}


def run_optimizer(names: list[str], args) -> int:
    result = started("milliseconds per SGD update (the recipe's momentum and weight decay, random gradients) of "
                     "each network's parameters, PyTorch's default SGD against the Trainer's fused one, taking turns; "
                     "then milliseconds per training step with each (the chosen compute path, the lesson's CPU "
                     "setting, the same batches, taking turns)")
    for name in names:
        row = speed.optimizer_update(name, rounds=args.rounds, steps=args.steps, subset=args.subset)
        result["rows"].append(row)
        print(f"{name:<16} {row['default_ms']:>8.2f} -> {row['fused_ms']:>7.2f} ms/update  {row['ratio']:.1f}x;  "
              f"training step {row['step_default_ms']:,.1f} -> {row['step_fused_ms']:,.1f} ms  {row['step_ratio']:.2f}x",
              file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
            Path(args.out).with_suffix(".md").write_text(speed.optimizer_markdown(result["rows"]))
    emit(result, args.json, speed.optimizer_markdown(result["rows"]).rstrip("\n"))
    return 0
