"""``python -m d2lcnn bench``: measure our Trainer, against the book's own loop and across models.

* ``bench MODEL``: our Trainer and d2l's ``train_ch6`` on one model with the book's recipe, one
  after the other in this process; prints examples/s of each and their ratio.
* ``bench --all``: every ``fashion`` network for several seeds, the book comparisons and the
  speedrun, written to a results file as it goes (see :mod:`d2lcnn.benchmark`).
* ``bench --table FILE``: a results file as the Markdown table the README shows.

Quick mode (``D2LCNN_QUICK``) is ignored so that every measurement does the whole work;
``--subset N`` shrinks the data to the first N training and test images of each class.
"""

from __future__ import annotations

import shlex
import signal
import sys

from .. import benchmark, models
from ..guards import check_count, check_writable
from ..runtime import default_device
from ..train import Recipe
from . import emit

DEFAULT_OUT = "results/bench.json"


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="our Trainer vs the book's train_ch6; --all: every model, several seeds")
    p.add_argument("model", nargs="?",
                   help="a registered name with a book recipe (lenet, alexnet, vgg11, nin, ...); or use --all")
    p.add_argument("--all", action="store_true", help="every fashion network (or those of --models), "
                                                      "several seeds, the book comparisons and the speedrun")
    p.add_argument("--table", metavar="FILE", help="print a results file as a Markdown table, and stop")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--epochs", type=int, help="epochs per run (default: 1 for MODEL, 10 for --all)")
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N training and N test images of each class (quick checks)")
    p.add_argument("--cache", help="where to unpack the files for the book's torchvision loader "
                                   "(default data/torchvision)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--models", help="--all: a comma-separated list instead of every fashion network")
    p.add_argument("--seeds", type=int, default=3, help="--all: seeds per model (default 3)")
    p.add_argument("--jobs", type=int, default=4,
                   help="--all: concurrent worker processes for the accuracy runs (default 4)")
    p.add_argument("--timing-epochs", type=int, default=2,
                   help="--all: epochs of the run alone that times each model (default 2)")
    p.add_argument("--book-subset", type=int, default=1000, metavar="N",
                   help="--all: images per class on the book's side (default 1000; 0: all)")
    p.add_argument("--book-epochs", type=int, default=1, help="--all: epochs of each book comparison (default 1)")
    p.add_argument("--no-book", action="store_true", help="--all: skip the comparisons with the book's loop")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="--all: start no job after this many seconds (those left are listed as skipped)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"--all: the results file (default {DEFAULT_OUT}; "
                                                      "the Markdown table and a log go beside it)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.table:
        print(benchmark.markdown(benchmark.load(args.table)), end="")
        return 0
    if args.all == bool(args.model):
        raise ValueError("name one MODEL, or --all for every model (bench lenet, bench --all)")
    if args.epochs is not None:
        check_count("--epochs", args.epochs, error=ValueError)
    if args.subset is not None:
        check_count("--subset", args.subset, "It is the number of images kept per class.", error=ValueError)
    return run_all(args) if args.all else run_one(args)


def run_one(args) -> int:
    Recipe.book(args.model)          # a model without the book's recipe is refused before any work
    benchmark.check_book_subset(args.model, args.subset)
    device = default_device(args.device)
    epochs = args.epochs or 1
    result = benchmark.compare_with_book(args.model, epochs, device, args.subset, args.subset, args.cache)
    text = (f"{args.model} on {device}, {epochs} epoch(s), the book's recipe\n"
            f"ours: {result['ours_per_s']:>10,.0f} examples/s  {result['ours_seconds_per_epoch']:.1f} s/epoch"
            f"  test acc {result['ours_test_acc']:.3f}\n"
            f"book: {result['book_per_s']:>10,.0f} examples/s  {result['book_seconds_per_epoch']:.1f} s/epoch"
            f"  test acc {result['book_test_acc']}\n"
            f"ratio: {result['ratio']:.2f}x (wall time over whole epochs, evaluation included)")
    emit(result, args.json, text)
    return 0


def run_all(args) -> int:
    names = [s.name for s in models.specs("fashion")]
    if args.models:
        chosen = [m.strip() for m in args.models.split(",") if m.strip()]
        for m in chosen:
            models.spec(m)          # an unknown name is refused with the list of known ones
        names = chosen
    check_count("--seeds", args.seeds, error=ValueError)
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
    default_device(args.device)      # a device that is not there is refused before any work
    check_writable(args.out)
    settings = benchmark.Settings(models=names, seeds=args.seeds, epochs=args.epochs or 10, subset=args.subset,
                                  book=book, book_epochs=args.book_epochs, book_subset=book_subset,
                                  timing_epochs=args.timing_epochs, jobs=args.jobs, budget=args.budget, device=args.device, cache=args.cache)
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
    # 3: some jobs were not run (the budget ran out); the file lists them.
    return 0 if data["complete"] else 3
