"""``python -m d2lcnn bench``: measure our Trainer, against the book's own loop and across models.

* ``bench MODEL``: our Trainer and d2l's ``train_ch6`` on one model with the book's recipe, one
  after the other in this process; prints examples/s of each and their ratio.
* ``bench --all``: every ``fashion`` network for several seeds, the book comparisons and the
  speedrun, written to a results file as it goes (see :mod:`d2lcnn.benchmark`).
* ``bench --speedrun-cpu``: the speedrun's CPU track, its seeds one after another (see
  :mod:`d2lcnn.benchmark.cpu_track`); takes ``--seeds``, ``--out``, and ``--subset``/``--epochs``
  for a shrunk check.
* ``bench --table FILE``: a results file as the Markdown table the README shows.

Quick mode (``D2LCNN_QUICK``) is ignored so that every measurement does the whole work;
``--subset N`` shrinks the data to the first N training and test images of each class.
The device is resolved once (``--device``, else the best there is) and recorded: the book's side
and ours always run on the same one. Options of ``--all`` given to ``bench MODEL`` are refused,
not ignored. Exit status of ``--all``: 0 every job done, 3 the budget left some unstarted, 4 a job
failed (the results file says which and why), 130 interrupted; 2 bad input.
"""

from __future__ import annotations

import shlex
import signal
import sys

from .. import benchmark, models
from ..benchmark import cpu_track
from ..guards import check_count, check_writable
from ..runtime import default_device
from ..train import Recipe
from . import emit

DEFAULT_OUT = "results/bench.json"
CPU_TRACK_OUT = "results/speedrun-cpu.json"
ALL_DEFAULTS = {"models": None, "seeds": 3, "speedrun_seeds": None, "jobs": 4, "timing_epochs": 2,
                "book_subset": 1000, "book_epochs": 1, "no_book": False, "budget": None, "out": DEFAULT_OUT}
"""The options that only ``--all`` takes, with their defaults (None on the parser: given or not)."""
INCOMPLETE, FAILED = 3, 4


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="our Trainer vs the book's train_ch6; --all: every model, several seeds")
    p.add_argument("model", nargs="?",
                   help="a registered name with a book recipe (lenet, alexnet, vgg11, nin, ...); or use --all")
    p.add_argument("--all", action="store_true", help="every fashion network (or those of --models), "
                                                      "several seeds, the book comparisons and the speedrun")
    p.add_argument("--speedrun-cpu", action="store_true",
                   help="the speedrun's CPU track: its seeds one after another on the CPU (--seeds, --out)")
    p.add_argument("--table", metavar="FILE", help="print a results file as a Markdown table, and stop")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: 1 for MODEL; for --all each network's recipe: 10, the speedrun 16)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N training and N test images of each class (quick checks)")
    p.add_argument("--cache", help="where to unpack the files for the book's torchvision loader "
                                   "(default data/torchvision)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--models", help="--all: a comma-separated list instead of every fashion network")
    p.add_argument("--seeds", type=int, help="--all: seeds per model (default 3)")
    p.add_argument("--speedrun-seeds", type=int, metavar="N",
                   help="--all: seeds of the speedrun, whose goal is a mean (default: --seeds)")
    p.add_argument("--jobs", type=int, help="--all: concurrent worker processes for the accuracy runs (default 4)")
    p.add_argument("--timing-epochs", type=int,
                   help="--all: epochs of the run alone that times each model (default 2)")
    p.add_argument("--book-subset", type=int, metavar="N",
                   help="--all: images per class on the book's side (default 1000; 0: all)")
    p.add_argument("--book-epochs", type=int, help="--all: epochs of each book comparison (default 1)")
    p.add_argument("--no-book", action="store_true", default=None,
                   help="--all: skip the comparisons with the book's loop")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="--all: start no job after this many seconds (those left are listed as skipped)")
    p.add_argument("--out", help=f"--all: the results file (default {DEFAULT_OUT}; "
                                 "the Markdown table and a log go beside it)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.table:
        print(benchmark.markdown(benchmark.load(args.table)), end="")
        return 0
    if bool(args.model) + args.all + args.speedrun_cpu != 1:
        raise ValueError("name one MODEL, or --all for every model, or --speedrun-cpu for the speedrun's CPU track "
                         "(bench lenet, bench --all, bench --speedrun-cpu)")
    given = [f"--{k.replace('_', '-')}" for k in ALL_DEFAULTS if getattr(args, k) is not None]
    if args.speedrun_cpu:
        return run_cpu_track(args, [g for g in given if g not in ("--seeds", "--out")])
    if args.model and given:
        raise ValueError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for --all; bench MODEL compares "
                         "one model with the book's loop (it takes --device, --epochs, --subset, --cache, --json)")
    for key, default in ALL_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, default)
    if args.epochs is not None:
        check_count("--epochs", args.epochs, error=ValueError)
    if args.subset is not None:
        check_count("--subset", args.subset, "It is the number of images kept per class.", error=ValueError)
    return run_all(args) if args.all else run_one(args)


def run_cpu_track(args, refused: list[str]) -> int:
    if args.device not in (None, "cpu"):
        refused.append(f"--device {args.device}")
    if args.cache is not None:
        refused.append("--cache")
    if refused:
        raise ValueError(f"{', '.join(refused)}: --speedrun-cpu trains on the CPU and takes only --seeds, --out, "
                         "--subset, --epochs and --json")
    seeds = 3 if args.seeds is None else args.seeds
    check_count("--seeds", seeds, error=ValueError)
    for name, value in (("--epochs", args.epochs), ("--subset", args.subset)):
        if value is not None:
            check_count(name, value, error=ValueError)
    out = args.out or CPU_TRACK_OUT
    check_writable(out)
    command = "python -m d2lcnn " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        "python -m d2lcnn bench --speedrun-cpu"
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    data = cpu_track.run(seeds, out, command, subset=args.subset, epochs=args.epochs, progress=say)
    emit(data, args.json, cpu_track.markdown(data))
    print(f"results: {out}", file=sys.stderr)
    return 0


def run_one(args) -> int:
    Recipe.book(args.model)          # a model without the book's recipe is refused before any work
    benchmark.check_book_subset(args.model, args.subset)
    device = default_device(args.device)
    epochs = args.epochs or 1
    result = benchmark.compare_with_book(args.model, epochs, device, args.subset, args.subset, args.cache)
    compute = result["compute_ratio"]
    text = (f"{args.model} on {device}, {epochs} epoch(s), the book's recipe, float32 on both sides\n"
            f"{'':6}{'compute':>12}{'whole epochs':>14}{'data loading':>14}\n"
            f"{'ours':6}{result['ours_train_only_per_s']:>12,.0f}{result['ours_per_s']:>14,.0f}"
            f"{result['ours_data_s']:>12.1f} s  test acc {result['ours_test_acc']:.3f}\n"
            f"{'book':6}{result['book_compute_only_per_s'] or 0:>12,.0f}{result['book_per_s']:>14,.0f}"
            f"{result['book_data_s']:>12.1f} s  test acc {result['book_test_acc']}\n"
            f"{'ratio':6}{'-' if compute is None else f'{compute:.2f}x':>12}{result['ratio']:>13.2f}x\n"
            "examples/s; compute: the training steps once a batch is ready; whole epochs: wall time with data "
            "loading and evaluation")
    emit(result, args.json, text)
    return 0


def run_all(args) -> int:
    names = [s.name for s in models.specs("fashion")]
    if args.models is not None:
        chosen = [m.strip() for m in args.models.split(",") if m.strip()]
        if not chosen:
            raise ValueError(f"--models {args.models!r} names no model: give a comma-separated list "
                             "(--models lenet,resnet18), or leave --models out for every fashion network")
        for m in chosen:
            models.spec(m)          # an unknown name is refused with the list of known ones
        names = chosen
    if args.budget is not None and not args.budget >= 0:     # also refuses nan
        raise ValueError(f"--budget must be 0 seconds or more, got {args.budget:g}")
    check_count("--seeds", args.seeds, error=ValueError)
    if args.speedrun_seeds is not None:
        check_count("--speedrun-seeds", args.speedrun_seeds, error=ValueError)
    check_count("--jobs", args.jobs, error=ValueError)
    check_count("--timing-epochs", args.timing_epochs, error=ValueError)
    check_count("--book-epochs", args.book_epochs, error=ValueError)
    if args.book_subset < 0:
        raise ValueError("--book-subset must be 0 (all images) or more")
    book_subset = args.book_subset or None
    book = not args.no_book
    if book:
        for m in names:
            if models.spec(m).book is not None:
                benchmark.check_book_subset(m, book_subset)
                benchmark.check_book_subset(m, args.subset)
    # Resolved once (a device that is not there is refused before any work) and recorded: every job,
    # the book's side included, runs on this one.
    device = str(default_device(args.device))
    check_writable(args.out)
    settings = benchmark.Settings(models=names, seeds=args.seeds, speedrun_seeds=args.speedrun_seeds,
                                  epochs=args.epochs, subset=args.subset, book=book,
                                  book_epochs=args.book_epochs, book_subset=book_subset,
                                  timing_epochs=args.timing_epochs, jobs=args.jobs, budget=args.budget,
                                  device=device, cache=args.cache)
    command = "python -m d2lcnn " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        "python -m d2lcnn bench --all"
    # SIGTERM (a timeout, a closed session) stops the run like Ctrl-C: the file keeps what finished.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        data = benchmark.run_all(settings, args.out, command)
    except KeyboardInterrupt:
        done = len(benchmark.load(args.out)["jobs"])
        print(f"interrupted: {args.out} holds the {done} job(s) that finished", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.json:
        emit(data, True)
    else:
        print(benchmark.markdown(data), end="")
    print(f"results: {args.out} (and {args.out.rsplit('.', 1)[0]}.md)", file=sys.stderr)
    failed = [j for j in data["jobs"] if "error" in j]
    if failed:
        print(f"{len(failed)} job(s) failed: " + "; ".join(f"{j['model']} {j['kind']}: {j['error']}" for j in failed),
              file=sys.stderr)
        return FAILED
    # Some jobs were not run (the budget ran out); the file lists them.
    return 0 if data["complete"] else INCOMPLETE
