"""How ``bench --all`` runs: worker processes, a time budget, a stop, a results file always valid.

* **Jobs in worker processes.** :func:`run_all` starts ``python -m d2lcnn.benchmark worker``
  (:func:`worker`), which reads jobs as JSON lines on stdin and answers each with a JSON line on
  stdout (:func:`run_job`). A worker takes many jobs, so Python, torch and CUDA start once. Each
  worker runs in a session of its own, so that Ctrl-C reaches the benchmark only, which stops
  the workers itself.
* **Alone, then side by side.** The jobs of :func:`d2lcnn.benchmark.jobs.plan` to run alone
  get one worker; the accuracy runs then get ``jobs`` workers at once, fed from one queue.
* **A time budget.** No job starts after ``budget`` seconds; the jobs not started are listed as
  skipped.
* **A stop.** Ctrl-C (and SIGTERM, which ``bench --all`` turns into Ctrl-C) kills the workers and
  writes the file with what finished; the jobs that did not are listed as skipped.
* **The results file** (:class:`Results`) is rewritten after every job, atomically
  (:func:`write_atomic`), with the Markdown table beside it: whenever the run ends, and however,
  it says exactly what it holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from ..runtime import default_device
from .jobs import SPEEDRUN, Settings, plan
from .measure import compare_with_book, train_run
from .report import FORMAT, _versus, _what, markdown, summarize


# ----------------------------------------------------------------------------------------------
# A worker's side: one job per line in, one result per line out
# ----------------------------------------------------------------------------------------------

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
# The results file: where it was measured, what finished, rewritten whole
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# The benchmark's side: the workers, the budget, a stop
# ----------------------------------------------------------------------------------------------

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
