"""Measuring every network the same way: ``python -m d2lcnn bench --all``.

One command trains every registered ``fashion`` network at its default (modern) recipe for
several seeds, times our Trainer against the book's own loop for the networks the book trains,
and runs the speedrun (:data:`SPEEDRUN`). It writes a results file as it goes (JSON, beside it the
same as a Markdown table): a run cut short leaves a valid file that says what finished and what
did not.

How the work is laid out, and why:

* **Jobs in worker processes.** Each job (one model and seed, one book comparison) runs in a
  worker: ``python -m d2lcnn.benchmark worker`` reads jobs as JSON lines on stdin and answers
  each with a JSON line on stdout. A worker takes many jobs, so Python, torch and CUDA start once.
* **Timing alone, accuracy side by side.** A short run of every model, the book comparisons and
  the speedrun come first, one at a time, on an otherwise idle device: their seconds per epoch are
  the figures we report. Every seed's full run then trains in ``jobs`` concurrent workers, as small
  networks leave a big GPU mostly idle; those runs count for accuracy, not for time.
* **A time budget.** No job starts after ``budget`` seconds; those not started are listed as
  skipped, so the results file always says exactly what it holds.

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
import datetime
import functools
import io
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

from . import models
from .book import BOOK_RESULTS, SOURCE as BOOK_SOURCE
from .data import FashionMNIST, _read_folder, balanced_indices, torchvision_root
from .inspect import _human, describe
from .runtime import QUICK_ENV, default_device
from .train import CHANCE, Recipe, Trainer, TrainingWarning

FORMAT = "d2lcnn-bench-1"
"""The results file's format tag; :func:`load` refuses files of another format."""

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

def train_run(name: str, seed: int, epochs: int, device, subset: int | None = None, warmup: bool = False) -> dict:
    """Train ``name`` at its modern recipe for ``epochs`` epochs and return what the table shows.

    Seconds and examples/s are the median over the epochs after the first (which includes cuDNN's
    autotuning and, on a GPU, the first kernel launches); with one epoch, that epoch's. ``warmup``
    first trains a throwaway copy for one untimed epoch, so that the timed run starts warm (the
    speedrun's rule, as in the fastest public training code).
    """
    device = default_device(device)
    recipe = Recipe.modern(name, epochs=epochs)
    cuda = device.type == "cuda"
    with no_quick_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        data = FashionMNIST(batch_size=recipe.batch_size, resize=recipe.resize, device=device,
                            augment=recipe.augment, normalize=recipe.normalize, subset=subset,
                            test_subset=subset, seed=seed)
        if warmup:
            with contextlib.redirect_stderr(io.StringIO()):
                Trainer(models.build(name), data=data, recipe=dataclasses.replace(recipe, epochs=1),
                        device=device, seed=seed + 1000).fit()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        trainer = Trainer(models.build(name), data=data, recipe=recipe, device=device, seed=seed)
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
            "warmed_up": warmup,
            "warnings": [str(w.message) for w in caught if issubclass(w.category, TrainingWarning)]}


def run_job(job: dict) -> dict:
    """Do one job (``{"kind": "train" | "book", "model", "seed", ...}``) and return its result.

    A job that fails returns ``{"error": ...}`` (a diverged run, an out-of-memory, a missing book):
    the benchmark goes on and the results file shows it.
    """
    start = time.perf_counter()
    try:
        if job["kind"] == "book":
            result = compare_with_book(job["model"], job["book_epochs"], job["device"], job.get("subset"),
                                       job.get("book_subset"), job.get("cache"))
        else:
            result = train_run(job["model"], job["seed"], job["epochs"], job["device"], job.get("subset"),
                               warmup=job["model"] == SPEEDRUN)
    except Exception as exc:  # noqa: BLE001 - recorded in the results file, which is the point
        result = {"error": f"{type(exc).__name__}: {exc}"}
    return {**job, **result, "job_seconds": round(time.perf_counter() - start, 2)}


def worker() -> None:
    """``python -m d2lcnn.benchmark worker``: one job per JSON line on stdin, one result per line out."""
    out = sys.stdout
    sys.stdout = sys.stderr          # anything printed by a job goes to the log, not the answers
    for line in sys.stdin:
        if line.strip():
            out.write(json.dumps(run_job(json.loads(line)), default=str) + "\n")
            out.flush()


# ----------------------------------------------------------------------------------------------
# Every model: the plan, the workers, the results file
# ----------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=None)
def _describe(name: str) -> dict:
    """Parameters and FLOPs of a ``fashion`` network (traced once, on the meta device)."""
    return describe(models.spec(name))


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
            facts = _describe(name)
            target, source = goal(name)
            table[name] = {"params": facts["params"], "flops": facts["flops"], "resize": Recipe.modern(name).resize,
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
                "resize")})
    for name, row in table.items():
        counted = [r for r in row["runs"] if r["role"] != "timing"]
        accs = [r["test_acc"] for r in counted if r["test_acc"] is not None]
        # Times come from runs alone on the device; a "full" run (gathered by tools/full_results.py,
        # no timing run beside it) gives its own, as the file's notes say.
        solo = [r for r in row["runs"] if r["role"] in ("timing", "speedrun", "full") and r["error"] is None]
        row["resize"] = next((r["resize"] for r in row["runs"] if r.get("resize")), row["resize"])
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


def _cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device) -> dict:
    """Where the figures come from: device, versions, date."""
    device = default_device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    try:
        import torchvision
        tv = torchvision.__version__
    except ImportError:
        tv = None
    return {"device": str(device), "device_name": name, "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "torchvision": tv, "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


class Results:
    """The results file, rewritten atomically after every job (JSON, and the table beside it)."""

    def __init__(self, path: str | os.PathLike, settings: Settings, command: str):
        self.path = Path(path)
        self.started = time.monotonic()
        self.data = {"format": FORMAT, "command": command, **environment(settings.device),
                     "settings": dataclasses.asdict(settings), "complete": False, "elapsed_s": 0.0,
                     "jobs": [], "skipped": [], "models": {}}
        self.planned = settings.planned_seeds()

    def add(self, result: dict) -> None:
        self.data["jobs"].append(result)
        self.save()

    def save(self, complete: bool = False, skipped: list[dict] = ()) -> None:
        self.data["complete"] = complete
        self.data["skipped"] = [{"kind": j["kind"], "role": j.get("role"), "model": j["model"], "seed": j.get("seed")}
                                for j in skipped]
        self.data["elapsed_s"] = round(time.monotonic() - self.started, 1)
        self.data["models"] = summarize(self.data["jobs"], self.planned)
        write_atomic(self.path, json.dumps(self.data, indent=1, default=str) + "\n")
        write_atomic(self.path.with_suffix(".md"), markdown(self.data))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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


PUBLISHED = Path(__file__).parent / "results"
"""Where the committed results files live (package data, so that the lesson finds them on Colab too)."""


def full_data(data: dict) -> bool:
    """Whether a results file trained on all the data for the full epochs (not a smoke run)."""
    s = data.get("settings", {})
    return s.get("subset") is None and (s.get("epochs") is None or s["epochs"] >= 10)


def published() -> dict:
    """The committed results the comparison lesson shows: a GPU run over a CPU one, then a run on
    all the data for the full epochs over a smoke run (a few epochs on a few images per class),
    then a complete file over one cut short, then the newest (its ``device_name``, ``date`` and
    ``command`` say what it is)."""
    files = sorted(PUBLISHED.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no results file in {PUBLISHED}: run python -m d2lcnn bench --all and "
                                "copy its results file there")
    runs = [load(f) for f in files]
    return max(runs, key=lambda d: (d["device"].startswith("cuda"), full_data(d), d["complete"], d["date"]))


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
    timing = " (median over the epochs after the first)" if s["timing_epochs"] > 1 else ""
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


class _Worker:
    """One worker process: send it a job, read back its result."""

    def __init__(self, log):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # A session of its own: Ctrl-C in the terminal reaches the benchmark, which stops the workers,
        # not the workers themselves (whose Trainers would each stop in their own way).
        self.process = subprocess.Popen([sys.executable, "-m", "d2lcnn.benchmark", "worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                        start_new_session=True)

    def do(self, job: dict) -> dict:
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            return {**job, "error": f"the worker process ended (exit code {code}); see the log"}
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()


def run_all(settings: Settings, out: str | os.PathLike, command: str, progress=None) -> dict:
    """Run every job of :func:`plan`, saving the results file after each; return its contents.

    ``progress(text)`` is called with a line per finished job (default: print to stderr). An
    interruption (Ctrl-C, SIGTERM) kills the workers and leaves the file with what finished.
    """
    progress = progress or (lambda text: print(text, file=sys.stderr, flush=True))
    results = Results(out, settings, command)
    alone, shared = plan(settings)
    total = len(alone) + len(shared)
    skipped: list[dict] = []
    lock = threading.Lock()
    stopping = threading.Event()
    log = open(Path(out).with_suffix(".log"), "a")
    workers: list[_Worker] = []

    def over_budget() -> bool:
        return settings.budget is not None and time.monotonic() - results.started > settings.budget

    def serve(todo: queue.Queue, concurrent: int) -> None:
        with lock:                 # a stop that came first starts no worker; one that comes later kills it
            if stopping.is_set():
                return
            worker = _Worker(log)
            workers.append(worker)
        try:
            while not stopping.is_set():
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                if over_budget():
                    with lock:
                        skipped.append(job)
                    continue
                result = worker.do({**job, "concurrent": concurrent})
                with lock:
                    if stopping.is_set():      # the worker was killed under this job: it did not finish
                        return
                    results.add(result)
                    progress(_progress_line(result, len(results.data["jobs"]), total, results.started))
        finally:
            worker.close()

    results.save(skipped=alone + shared)
    threads: list[threading.Thread] = []
    try:
        for jobs, n in ((alone, 1), (shared, max(1, min(settings.jobs, len(shared))))):
            todo: queue.Queue = queue.Queue()
            for job in jobs:
                todo.put(job)
            threads = [threading.Thread(target=serve, args=(todo, n), daemon=True) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
    except KeyboardInterrupt:
        with lock:
            stopping.set()
            for w in workers:
                w.kill()
            done = {_key(j) for j in results.data["jobs"]}
            left = [j for j in alone + shared if _key(j) not in done]
            results.save(skipped=left)
        for t in threads:
            if t.is_alive():       # a stop can come while the threads are being started
                t.join(30)
        log.close()
        raise
    results.save(complete=not skipped, skipped=skipped)
    log.close()
    return results.data


def _key(job: dict) -> tuple:
    return job["kind"], job.get("role"), job["model"], job.get("seed")


def _progress_line(result: dict, done: int, total: int, started: float) -> str:
    elapsed = time.monotonic() - started
    head = f"[{done:>3}/{total}] {elapsed:6.0f} s  {result['model']:<16}"
    if "error" in result:
        return f"{head} {result['kind']} failed: {result['error']}"
    if result["kind"] == "book":
        return f"{head} vs the book: {_versus(result)}"
    shared = "" if result["concurrent"] == 1 else f", {result['concurrent']} sharing the device"
    return (f"{head} {_what(result)}: test acc {result['test_acc']:.3f}, {result['seconds_per_epoch']:.2f} "
            f"s/epoch{shared}")


if __name__ == "__main__":
    if sys.argv[1:] != ["worker"]:
        sys.exit("usage: python -m d2lcnn.benchmark worker   (started by python -m d2lcnn bench --all)")
    worker()
