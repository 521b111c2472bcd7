"""``python -m d2lcnn bench MODEL``: our Trainer against the book's own training loop.

Both train the same architecture (fresh copies) with the book's recipe (batch size, learning
rate, image size, plain SGD, Xavier init) on the same device for the same epochs, one after the
other in this process:

* the book: ``d2l.torch.load_data_fashion_mnist`` (torchvision's FashionMNIST, PIL
  ``Resize`` + ``ToTensor``, a DataLoader with 4 workers) and ``d2l.torch.train_ch6``;
* ours: :class:`d2lcnn.train.Trainer` with :meth:`Recipe.book`.

Examples per second are wall time over whole epochs (training and the test-set evaluation) for
both. The book's ``Animator`` (a live plot) is replaced by a no-op, in the book's favour; the
book's own printed figure, which times only its compute, is reported too. Quick mode
(``D2LCNN_QUICK``) is ignored so that both sides do the same work; ``--subset N`` shrinks both
to the first N training and test images of each class.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
import time
import warnings
from pathlib import Path

from .. import models
from ..data import FashionMNIST, balanced_indices, torchvision_root
from ..guards import check_count
from ..runtime import QUICK_ENV, default_device
from ..train import Recipe, Trainer
from . import emit


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="our Trainer vs the book's train_ch6, same model and data")
    p.add_argument("model", help="a registered name with a book recipe (lenet, alexnet, vgg11, nin, ...)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N training and N test images of each class, on both sides (quick checks)")
    p.add_argument("--cache", help="where to unpack the files for the book's torchvision loader "
                                   "(default data/torchvision)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


class _NoAnimator:
    """Stands in for d2l.Animator: the book's loop without its live plot."""

    def __init__(self, *args, **kwargs):
        pass

    def add(self, *args, **kwargs):
        pass


@contextlib.contextmanager
def _book_data_dir(cache=None):
    """A working directory whose ``../data`` holds the files, as d2l's loader expects (offline)."""
    data = torchvision_root(cache)
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "data").symlink_to(data.resolve(), target_is_directory=True)
        work = Path(tmp) / "work"
        work.mkdir()
        os.chdir(work)
        try:
            yield
        finally:
            os.chdir(old)


def _subset_loaders(d2l, train_iter, test_iter, batch_size: int, per_class: int):
    """The book's loaders (same workers, shuffling) over the images our ``subset=`` keeps."""
    import torch
    from torch.utils import data

    def loader(dataset, shuffle):
        keep = balanced_indices(torch.as_tensor(dataset.targets), per_class).tolist()
        return data.DataLoader(data.Subset(dataset, keep), batch_size, shuffle=shuffle,
                               num_workers=d2l.get_dataloader_workers())

    return loader(train_iter.dataset, True), loader(test_iter.dataset, False)


def book_loop(name: str, epochs: int, device, subset: int | None = None, cache=None) -> dict:
    """Seconds and examples/s of d2l's own data pipeline and ``train_ch6`` for one model."""
    import d2l.torch as d2l

    recipe = Recipe.book(name)
    if subset is not None and subset * 10 < 5 * recipe.batch_size:
        # train_ch6 updates its plot every num_batches // 5 batches: it needs at least five.
        raise ValueError(f"--subset {subset} is too small for the book's loop: it needs five batches of "
                         f"{recipe.batch_size}, i.e. --subset {-(-recipe.batch_size // 2)} or more")
    net = models.build(name)
    printed = io.StringIO()
    saved_animator, d2l.Animator = d2l.Animator, _NoAnimator
    try:
        with _book_data_dir(cache), contextlib.redirect_stdout(printed), warnings.catch_warnings():
            # The book's 4 loader workers on a 2-core machine: torch warns; it is the book's choice.
            warnings.filterwarnings("ignore", message="This DataLoader will create")
            start = time.perf_counter()
            train_iter, test_iter = d2l.load_data_fashion_mnist(recipe.batch_size, resize=recipe.resize)
            if subset is not None:
                train_iter, test_iter = _subset_loaders(d2l, train_iter, test_iter, recipe.batch_size, subset)
            examples = len(train_iter.dataset)
            d2l.train_ch6(net, train_iter, test_iter, epochs, recipe.lr, device)
            seconds = time.perf_counter() - start
    finally:
        d2l.Animator = saved_animator
    text = printed.getvalue()
    compute = re.search(r"([\d.]+) examples/sec", text)
    acc = re.search(r"test acc ([\d.]+)", text)
    return {"seconds": seconds, "per_s": epochs * examples / seconds,
            "compute_only_per_s": float(compute.group(1)) if compute else None,
            "test_acc": float(acc.group(1)) if acc else None}


@contextlib.contextmanager
def _no_quick_mode():
    """Quick mode would shrink only our side: both sides do the whole work here."""
    saved = os.environ.get(QUICK_ENV)
    os.environ[QUICK_ENV] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ[QUICK_ENV]
        else:
            os.environ[QUICK_ENV] = saved


def our_loop(name: str, epochs: int, device, subset: int | None = None) -> dict:
    """Seconds and examples/s of our Trainer with the book's recipe (data loading included)."""
    recipe = Recipe.book(name, epochs=epochs)
    start = time.perf_counter()
    with _no_quick_mode():
        data = FashionMNIST(batch_size=recipe.batch_size, resize=recipe.resize, device=device,
                            subset=subset, test_subset=subset)
        trainer = Trainer(models.build(name), data=data, recipe=recipe, device=device)
    with contextlib.redirect_stderr(io.StringIO()):
        trainer.fit()
    seconds = time.perf_counter() - start
    examples = len(data.train_labels)
    return {"seconds": seconds, "per_s": epochs * examples / seconds,
            "train_only_per_s": trainer.history[-1]["examples_per_s"],
            "test_acc": trainer.history[-1]["test_acc"]}


def run(args) -> int:
    check_count("--epochs", args.epochs, error=ValueError)
    if args.subset is not None:
        check_count("--subset", args.subset, "It is the number of images kept per class.", error=ValueError)
    Recipe.book(args.model)          # a model without the book's recipe is refused before any work
    device = default_device(args.device)
    book = book_loop(args.model, args.epochs, device, args.subset, args.cache)
    ours = our_loop(args.model, args.epochs, device, args.subset)
    result = {"model": args.model, "device": str(device), "epochs": args.epochs, "subset": args.subset,
              "ours_per_s": round(ours["per_s"], 1), "book_per_s": round(book["per_s"], 1),
              "ratio": round(ours["per_s"] / book["per_s"], 2),
              "ours_seconds_per_epoch": round(ours["seconds"] / args.epochs, 2),
              "book_seconds_per_epoch": round(book["seconds"] / args.epochs, 2),
              "ours_train_only_per_s": round(ours["train_only_per_s"], 1),
              "book_compute_only_per_s": book["compute_only_per_s"],
              "ours_test_acc": ours["test_acc"], "book_test_acc": book["test_acc"]}
    text = (f"{args.model} on {device}, {args.epochs} epoch(s), the book's recipe\n"
            f"ours: {result['ours_per_s']:>10,.0f} examples/s  {result['ours_seconds_per_epoch']:.1f} s/epoch"
            f"  test acc {ours['test_acc']:.3f}\n"
            f"book: {result['book_per_s']:>10,.0f} examples/s  {result['book_seconds_per_epoch']:.1f} s/epoch"
            f"  test acc {book['test_acc']}\n"
            f"ratio: {result['ratio']:.2f}x (wall time over whole epochs, evaluation included)")
    emit(result, args.json, text)
    return 0
