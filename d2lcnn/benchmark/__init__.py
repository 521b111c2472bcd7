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

The package, one module per question, each read in one sitting:

* :mod:`~d2lcnn.benchmark.jobs`: what to run (the settings, the jobs in order, each network's goal);
* :mod:`~d2lcnn.benchmark.measure`: what one job measures (a training run; the book's loop
  against ours, also ``bench MODEL``);
* :mod:`~d2lcnn.benchmark.runner`: how it runs (the worker processes, the budget, a stop, the
  results file rewritten atomically after every job);
* :mod:`~d2lcnn.benchmark.report`: what it says (the summary per model, the Markdown table, the
  committed results the comparison lesson shows);
* :mod:`~d2lcnn.benchmark.cpu_track`: the speedrun's CPU track (``bench --speedrun-cpu``), seeds
  run one after another, with a results file of its own.

The names below are what the command line, the lessons and the tools use, importable from here
as ``benchmark.published()``, ``from d2lcnn.benchmark import no_quick_mode``. A test that
replaces a function for another to call (``monkeypatch``) replaces it in its own module, where
the caller looks it up.
"""

from __future__ import annotations

from .jobs import SPEEDRUN, SPEEDRUN_GOAL, Settings, plan
from .measure import check_book_subset, compare_with_book, no_quick_mode, train_run
from .report import FORMAT, committed, device_label, full_data, load, markdown, published, summarize
from .runner import environment, run_all, write_atomic

__all__ = ["SPEEDRUN", "SPEEDRUN_GOAL", "Settings", "plan", "check_book_subset", "compare_with_book",
           "no_quick_mode", "train_run", "FORMAT", "committed", "device_label", "full_data", "load", "markdown", "published",
           "summarize", "environment", "run_all", "write_atomic"]
