"""What one job measures: a training run for the accuracy table, and the book's loop against ours.

:func:`train_run` trains one network at its modern recipe for one seed and returns what the
table shows (accuracy per epoch, seconds, examples/s, peak memory, stuck at chance or not).
:func:`compare_with_book` is ``python -m d2lcnn bench MODEL`` and a ``"book"`` job of
``bench --all``. Both run in the calling process: ``bench --all`` calls them inside its workers
(see :mod:`d2lcnn.benchmark.runner`), ``bench MODEL`` directly. Quick mode is ignored
(:func:`no_quick_mode`): a measurement does the whole work.

The book comparison, one model: both sides train the same architecture with the book's recipe
(batch size, learning rate, image size, plain SGD, Xavier init) on the same device, resolved once
and recorded, in float32 on both sides (the book's loop has no mixed precision, so ours runs
without it here):

* the book: ``d2l.torch.load_data_fashion_mnist`` (torchvision's FashionMNIST, PIL ``Resize`` +
  ``ToTensor``, a DataLoader with 4 workers) and ``d2l.torch.train_ch6``, its live plot replaced
  by a no-op (in the book's favour), optionally on a subset (``subset`` images per class);
* ours: :class:`d2lcnn.train.Trainer` with :meth:`Recipe.book`.

Two ratios, each on one footing for both sides:

* **compute** (``compute_ratio``): examples/s of the training steps alone, once a batch is ready:
  the figure ``train_ch6`` prints (its timer runs from a batch in hand to the step's loss read
  back), and our Trainer's training time per epoch (it makes each batch on the device from
  tensors read once: that indexing and resizing is inside our figure);
* **whole epochs** (``ratio``): wall time over everything, data loading and the test-set
  evaluation included.

Data loading is reported apart (``book_data_s``, ``ours_data_s``): for the book the files read
by torchvision and every wait for the DataLoader's next batch, for us reading the files into
tensors once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import re
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from .. import models
from ..data import FashionMNIST, _read_folder, balanced_indices, torchvision_root
from ..runtime import QUICK_ENV, default_device
from ..train import CHANCE, Recipe, Trainer, TrainingWarning


# ----------------------------------------------------------------------------------------------
# The book's loop and ours, one model (also ``python -m d2lcnn bench MODEL``)
# ----------------------------------------------------------------------------------------------

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
    from torch.utils import data

    def loader(dataset, shuffle):
        keep = balanced_indices(torch.as_tensor(dataset.targets), per_class).tolist()
        return data.DataLoader(data.Subset(dataset, keep), batch_size, shuffle=shuffle,
                               num_workers=d2l.get_dataloader_workers())

    return loader(train_iter.dataset, True), loader(test_iter.dataset, False)


def check_book_subset(name: str, subset: int | None) -> None:
    """Refuse a subset too small for ``train_ch6``, which needs five batches (it plots every fifth)."""
    batch_size = Recipe.book(name).batch_size
    if subset is not None and subset * 10 < 5 * batch_size:
        raise ValueError(f"--subset {subset} is too small for the book's loop with {name}: it needs five batches "
                         f"of {batch_size}, i.e. --subset {-(-batch_size // 2)} or more")


class _TimedLoader:
    """A DataLoader that adds to ``clock["s"]`` the time spent waiting for its batches."""

    def __init__(self, loader, clock: dict):
        self.loader, self.clock, self.dataset = loader, clock, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        start = time.perf_counter()
        batches = iter(self.loader)      # starts the loader's worker processes
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                self.clock["s"] += time.perf_counter() - start
                return
            self.clock["s"] += time.perf_counter() - start
            yield batch
            start = time.perf_counter()


def book_loop(name: str, epochs: int, device, subset: int | None = None, cache=None) -> dict:
    """Seconds and examples/s of d2l's own data pipeline and ``train_ch6`` for one model, with the
    time spent loading data (reading the files, waiting for the DataLoader) apart."""
    import d2l.torch as d2l

    recipe = Recipe.book(name)
    check_book_subset(name, subset)
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
            loading = {"s": time.perf_counter() - start}
            examples = len(train_iter.dataset)
            d2l.train_ch6(net, _TimedLoader(train_iter, loading), _TimedLoader(test_iter, loading), epochs,
                          recipe.lr, device)
            seconds = time.perf_counter() - start
    finally:
        d2l.Animator = saved_animator
    text = printed.getvalue()
    compute = re.search(r"([\d.]+) examples/sec", text)
    acc = re.search(r"test acc ([\d.]+)", text)
    return {"seconds": seconds, "per_s": epochs * examples / seconds, "examples": examples,
            "compute_only_per_s": float(compute.group(1)) if compute else None,
            "data_s": loading["s"], "test_acc": float(acc.group(1)) if acc else None}


@contextlib.contextmanager
def no_quick_mode():
    """Quick mode would shrink only our side (and every benchmark): measurements do the whole work."""
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
    """Seconds and examples/s of our Trainer with the book's recipe, in float32 as the book's loop
    (data loading included in ``per_s``, apart in ``data_s``; ``train_only_per_s``: the steps)."""
    recipe = Recipe.book(name, epochs=epochs)
    _read_folder.cache_clear()   # a first read of the files, as the book's side does, not one kept from before
    start = time.perf_counter()
    with no_quick_mode():
        data = FashionMNIST(batch_size=recipe.batch_size, resize=recipe.resize, device=device,
                            subset=subset, test_subset=subset)
        data_s = time.perf_counter() - start
        trainer = Trainer(models.build(name), data=data, recipe=recipe, device=device, amp=False)
        with contextlib.redirect_stderr(io.StringIO()):
            trainer.fit()
    seconds = time.perf_counter() - start
    examples = len(data.train_labels)
    done = [r for r in trainer.history if not r.get("interrupted")]
    train_s = sum(len(data.train_labels) / r["examples_per_s"] for r in done)
    return {"seconds": seconds, "per_s": epochs * examples / seconds, "examples": examples,
            "train_only_per_s": len(done) * examples / train_s, "data_s": data_s,
            "test_acc": trainer.history[-1]["test_acc"]}


def compare_with_book(name: str, epochs: int, device, subset: int | None = None,
                      book_subset: int | None = None, cache=None) -> dict:
    """Both loops on one model, on one device (resolved here once: None is the best there is, for
    both sides): examples/s of each, their ratios (ours / the book's) and the data loading apart."""
    device = default_device(device)
    book = book_loop(name, epochs, device, book_subset, cache)
    ours = our_loop(name, epochs, device, subset)
    compute = book["compute_only_per_s"]
    return {"model": name, "device": str(device), "precision": "float32", "epochs": epochs, "subset": subset,
            "book_subset": book_subset,
            "ours_per_s": round(ours["per_s"], 1), "book_per_s": round(book["per_s"], 1),
            "ratio": round(ours["per_s"] / book["per_s"], 2),
            "ours_seconds_per_epoch": round(ours["seconds"] / epochs, 2),
            "book_seconds_per_epoch": round(book["seconds"] / epochs, 2),
            "ours_train_only_per_s": round(ours["train_only_per_s"], 1),
            "book_compute_only_per_s": compute,
            "compute_ratio": round(ours["train_only_per_s"] / compute, 2) if compute else None,
            "ours_data_s": round(ours["data_s"], 2), "book_data_s": round(book["data_s"], 2),
            "ours_test_acc": ours["test_acc"], "book_test_acc": book["test_acc"]}


# ----------------------------------------------------------------------------------------------
# One training run, as the accuracy table needs it
# ----------------------------------------------------------------------------------------------

def train_run(name: str, seed: int, epochs: int | None, device, subset: int | None = None, warmup: bool = False,
              build: dict | None = None, changes: dict | None = None, amp: bool | None = None) -> dict:
    """Train ``name`` at its modern recipe for ``epochs`` epochs and return what the table shows.

    Seconds and examples/s are the median over the epochs after the first (which includes cuDNN's
    autotuning and, on a GPU, the first kernel launches); with one epoch, that epoch's. ``warmup``
    first trains a throwaway copy for one untimed epoch, so that the timed run starts warm (the
    speedrun's rule, as in the fastest public training code). ``build`` goes to the network's
    builder, ``changes`` to the recipe, ``amp`` to the Trainer (the speedrun's CPU track uses all
    three); ``epochs=None`` keeps the recipe's.
    """
    device = default_device(device)
    recipe = Recipe.modern(name, **{**(changes or {}), **({} if epochs is None else {"epochs": epochs})})
    build = build or {}
    cuda = device.type == "cuda"
    with no_quick_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        data = FashionMNIST(batch_size=recipe.batch_size, resize=recipe.resize, device=device,
                            augment=recipe.augment, normalize=recipe.normalize, subset=subset,
                            test_subset=subset, seed=seed)
        if warmup:
            with contextlib.redirect_stderr(io.StringIO()):
                Trainer(models.build(name, **build), data=data, recipe=dataclasses.replace(recipe, epochs=1),
                        device=device, seed=seed + 1000, amp=amp).fit()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        trainer = Trainer(models.build(name, **build), data=data, recipe=recipe, device=device, seed=seed, amp=amp)
        with contextlib.redirect_stderr(io.StringIO()):
            trainer.fit()
    done = [r for r in trainer.history if not r.get("interrupted")]
    timed = done[1:] or done
    last = done[-1]
    return {"test_acc": last["test_acc"], "test_acc_by_epoch": [r["test_acc"] for r in done],
            "train_loss": last["train_loss"], "epochs": len(done),
            "seconds_per_epoch": statistics.median(r["seconds"] for r in timed),
            "first_epoch_seconds": done[0]["seconds"],
            "train_seconds": sum(r["seconds"] for r in done),
            "examples_per_s": statistics.median(r["examples_per_s"] for r in timed),
            "peak_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if cuda else None,
            # The Trainer's own rule: at chance after two epochs or more (one epoch proves nothing).
            "stuck": len(done) >= 2 and last["test_acc"] is not None and last["test_acc"] < CHANCE,
            "warmed_up": warmup, "compute_path": str(trainer.path),
            "warnings": [str(w.message) for w in caught if issubclass(w.category, TrainingWarning)]}
