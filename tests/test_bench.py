"""``python -m d2lcnn bench``: our Trainer against d2l's train_ch6 on the same model and data."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_bench_json_keys_on_a_tiny_run():
    # Quick mode is set to show that bench ignores it: both sides must do the same work.
    env = {**os.environ, "D2LCNN_QUICK": "1"}
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "bench", "lenet", "--device", "cpu",
                          "--subset", "128", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert {"ours_per_s", "book_per_s", "ratio", "ours_seconds_per_epoch", "book_seconds_per_epoch",
            "book_compute_only_per_s"} <= result.keys()
    assert result["ours_per_s"] > 0 and result["book_per_s"] > 0
    assert result["ratio"] == round(result["ours_per_s"] / result["book_per_s"], 2)
    assert result["subset"] == 128 and result["book_compute_only_per_s"] > 0
    # The same footing: one device for both, float32 for both, compute apart from data loading.
    assert result["device"] == "cpu" and result["precision"] == "float32"
    assert result["compute_ratio"] == round(result["ours_train_only_per_s"] / result["book_compute_only_per_s"], 2)
    assert result["book_data_s"] > 0 and result["ours_data_s"] > 0


def test_bench_subset_too_small_for_the_books_loop_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "bench", "lenet", "--device", "cpu",
                          "--subset", "10"], capture_output=True, text=True)
    assert out.returncode == 2 and "--subset 128 or more" in out.stderr


# ------------------------------------------------------------------------------------------------
# bench --all: every model, several seeds, a results file written as it goes
# ------------------------------------------------------------------------------------------------

import signal
import threading
import time
from pathlib import Path

import tempfile

import pytest
import torch

from d2lcnn import benchmark, models, train
from d2lcnn.benchmark import cpu_track, measure, report, runner


def bench(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "d2lcnn", "bench", *args], capture_output=True, text=True,
                          **kwargs)


def job(model, seed=0, acc=0.95, concurrent=4, role="accuracy", **extra):
    """A finished training job as a worker reports it (only what the summary reads)."""
    return {"kind": "train", "role": role, "model": model, "seed": seed, "test_acc": acc, "test_acc_by_epoch": [acc],
            "epochs": 1, "seconds_per_epoch": 2.0 + seed, "first_epoch_seconds": 3.0, "train_seconds": 3.0,
            "examples_per_s": 1000.0 * (seed + 1), "peak_memory_mib": None, "stuck": acc < 0.2,
            "warmed_up": False, "concurrent": concurrent, **extra}


def test_summary_goals_seeds_and_solo_timing():
    jobs = [job("mobilenet_v1", 0, 0.93, concurrent=1), job("mobilenet_v1", 1, 0.89),
            job("resnext", 0, 0.5, concurrent=1, role="timing"), job("resnext", 0, 0.91), job("resnext", 1, 0.92),
            job("lenet", 0, 0.10), {"kind": "train", "role": "accuracy", "model": "lenet", "seed": 1, "concurrent": 4,
                                    "error": "TrainingDiverged: training diverged in epoch 1"},
            {"kind": "book", "model": "lenet", "ratio": 12.5, "ours_per_s": 1e5, "book_per_s": 8e3,
             "ours_seconds_per_epoch": 0.6, "book_seconds_per_epoch": 7.5, "book_compute_only_per_s": 9e3,
             "book_subset": 1000, "book_test_acc": 0.7, "ours_test_acc": 0.8, "epochs": 1}]
    table = benchmark.summarize(jobs)
    mobile, resnext, lenet = table["mobilenet_v1"], table["resnext"], table["lenet"]
    assert mobile["test_acc_min"] == 0.89 and mobile["met_goal"] is False        # every seed must reach 0.90
    assert resnext["met_goal"] is True and resnext["test_acc_mean"] == pytest.approx(0.915)
    assert resnext["seconds_per_epoch"] == 2.0 and resnext["examples_per_s"] == 1000.0   # the timing run, alone
    assert resnext["seeds"] == 2 and mobile["seconds_per_epoch"] is None   # no timing run: no time, even alone
    assert lenet["goal"] == 0.808 and "book" in lenet["goal_source"]
    assert lenet["seeds"] == 2 and lenet["stuck_runs"] == 1 and lenet["met_goal"] is False  # the diverged seed counts
    assert lenet["book"]["ratio"] == 12.5
    assert mobile["params"] == 273_674 and mobile["resize"] == 28


def test_speedrun_goal_is_mean_accuracy_within_the_time():
    fast = [job("resnet_speedrun", s, acc, 1, "speedrun", train_seconds=9.0) for s, acc in enumerate((0.945, 0.938, 0.941))]
    assert benchmark.summarize(fast)["resnet_speedrun"]["met_goal"] is True
    slow = fast[:2] + [job("resnet_speedrun", 2, 0.941, 1, "speedrun", train_seconds=10.5)]
    assert benchmark.summarize(slow)["resnet_speedrun"]["met_goal"] is False


def test_markdown_says_where_what_and_what_is_missing():
    data = {"format": benchmark.FORMAT, "command": "python -m d2lcnn bench --all", "device": "cuda",
            "device_name": "NVIDIA H200", "torch": "2.11.0", "date": "2026-11-30T00:00:00+00:00",
            "complete": False, "elapsed_s": 400.0,
            "cpu_count": 16, "settings": {"epochs": 10, "seeds": 3, "subset": None, "jobs": 4, "book": True, "book_epochs": 1, "book_subset": 1000,
                         "timing_epochs": 2},
            "jobs": [job("lenet", 0, 0.10)], "skipped": [{"kind": "train", "model": "lenet", "seed": 1}]}
    data["models"] = benchmark.summarize(data["jobs"])
    text = benchmark.markdown(data)
    assert "| lenet | 61,706 | 833.0K | 28×28 | 0.100 (0.100–0.100), 1, **1 stuck at chance** | 0.808 ✗ |" in text
    assert "NVIDIA H200" in text and "**incomplete**" in text and "Not run (time budget or interruption): lenet seed 1" in text


def test_bench_all_writes_a_valid_results_file(tmp_path):
    out = tmp_path / "r" / "bench.json"
    done = bench("--all", "--models", "lenet", "--seeds", "2", "--epochs", "1", "--subset", "20", "--jobs", "2",
                 "--no-book", "--device", "cpu", "--out", str(out))
    assert done.returncode == 0, done.stderr
    data = benchmark.load(out)
    assert data["complete"] and not data["skipped"] and data["settings"]["subset"] == 20
    assert sorted((j["role"], j["seed"], j["concurrent"]) for j in data["jobs"]) == [
        ("accuracy", 0, 2), ("accuracy", 1, 2), ("timing", 0, 1)]
    assert data["jobs"][0]["role"] == "timing" and data["jobs"][0]["epochs"] == 2
    assert data["models"]["lenet"]["seeds"] == 2 and data["torch"] and data["date"]
    assert "--models lenet" in data["command"]
    assert "[  3/3]" in done.stderr                                   # progress, one line per job
    assert out.with_suffix(".md").read_text() == done.stdout == bench("--table", str(out)).stdout


def test_bench_all_budget_leaves_a_file_listing_what_did_not_run(tmp_path):
    out = tmp_path / "bench.json"
    done = bench("--all", "--models", "lenet,resnext", "--seeds", "2", "--no-book", "--device", "cpu",
                 "--budget", "0", "--out", str(out))
    assert done.returncode == 3, done.stderr
    data = benchmark.load(out)
    assert not data["complete"] and data["jobs"] == [] and len(data["skipped"]) == 6   # 2 timing + 2x2 seeds


def test_bench_all_interrupted_keeps_a_valid_file(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.Popen([sys.executable, "-m", "d2lcnn", "bench", "--all", "--models", "resnet_speedrun,lenet",
                             "--seeds", "2", "--epochs", "1", "--subset", "20", "--no-book", "--device", "cpu",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not out.exists() and proc.poll() is None:     # the file exists (empty) before the first job starts
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    data = benchmark.load(out)
    assert not data["complete"] and "interrupted" in err
    assert len(data["jobs"]) + len(data["skipped"]) == 5     # 2 speedrun seeds, lenet's timing run and 2 seeds


def test_a_stop_while_the_workers_start_is_a_clean_stop(tmp_path, monkeypatch):
    """SIGTERM or Ctrl-C can land inside Thread.start() (CI saw it once in the test above): the stop
    must still kill what started, leave a valid file and end as an interruption, not a RuntimeError."""
    starts = []

    class StopAtTheThirdStart(threading.Thread):
        def start(self):
            starts.append(self)
            if len(starts) == 3:        # alone: 1 thread; shared: the first starts, the second is stopped
                raise KeyboardInterrupt
            super().start()

    monkeypatch.setattr(runner.threading, "Thread", StopAtTheThirdStart)
    out = tmp_path / "bench.json"
    settings = benchmark.Settings(models=["lenet"], seeds=2, epochs=1, subset=20, book=False, timing_epochs=1,
                                  jobs=2, device="cpu")
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_all(settings, out, "test", progress=lambda text: None)
    data = benchmark.load(out)
    assert not data["complete"]
    assert [j["role"] for j in data["jobs"]][:1] == ["timing"]                 # the job alone finished
    assert len(data["jobs"]) + len(data["skipped"]) == 3                        # timing + 2 seeds
    assert not any(t.is_alive() for t in starts)


@pytest.mark.parametrize("args, message", [
    ((), "name one MODEL, or --all"),
    (("lenet", "--all"), "name one MODEL, or --all"),
    (("--all", "--models", "lenett"), "known: "),
    (("--all", "--seeds", "0"), "--seeds"),
    (("--all", "--book-subset", "10"), "too small for the book's loop"),
    (("--all", "--device", "gpu"), "gpu"),
    (("--all", "--models", ","), "--models ',' names no model"),
    (("--all", "--models", ""), "--models '' names no model"),
    (("--all", "--budget", "-5"), "--budget must be 0 seconds or more, got -5"),
    (("lenet", "--seeds", "0"), "--seeds is for --all"),
    (("lenet", "--jobs", "0"), "--jobs is for --all"),
    (("lenet", "--models", "foo"), "--models is for --all"),
    (("lenet", "--no-book"), "--no-book is for --all"),
    (("lenet", "--seeds", "0", "--jobs", "0", "--models", "foo", "--no-book"),
     "--models, --seeds, --jobs, --no-book are for --all"),
    (("--speedrun-cpu", "--all"), "or --speedrun-cpu for the speedrun's CPU track"),
    (("--speedrun-cpu", "--jobs", "2", "--device", "cuda"), "--jobs, --device cuda: --speedrun-cpu trains on the CPU"),
    (("--speedrun-cpu", "--seeds", "0"), "--seeds"),
])
def test_bench_refuses_bad_arguments_before_any_work(tmp_path, args, message):
    out = ("--out", str(tmp_path / "x.json")) if "--all" in args else ()
    done = bench(*args, *out)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1          # one line, no traceback
    assert not (tmp_path / "x.json").exists()


def test_bench_all_resolves_the_device_once_and_records_it(tmp_path, monkeypatch):
    """Without --device, every job (the book's side too) gets the device the benchmark found, not None
    (d2l's train_ch6 given None trains on the CPU while ours would pick a GPU)."""
    from d2lcnn.commands import main

    seen = {}
    monkeypatch.setattr(benchmark, "run_all", lambda settings, out, command: seen.setdefault("settings", settings)
                        and {"complete": True, "jobs": [], "models": {}, "settings": {}})
    monkeypatch.setattr(benchmark, "markdown", lambda data: "")
    main(["bench", "--all", "--models", "lenet", "--out", str(tmp_path / "b.json")])
    assert seen["settings"].device == "cpu"
    assert {j["device"] for j in sum(benchmark.plan(seen["settings"]), [])} == {"cpu"}

    calls = []
    monkeypatch.setattr(measure, "book_loop", lambda name, epochs, device, *a: calls.append(device) or {
        "per_s": 1.0, "seconds": 1.0, "compute_only_per_s": 2.0, "data_s": 0.5, "test_acc": 0.1})
    monkeypatch.setattr(measure, "our_loop", lambda name, epochs, device, *a: calls.append(device) or {
        "per_s": 2.0, "seconds": 0.5, "train_only_per_s": 3.0, "data_s": 0.1, "test_acc": 0.2})
    result = benchmark.compare_with_book("lenet", 1, None)
    assert calls == [torch.device("cpu")] * 2 and result["device"] == "cpu" and result["compute_ratio"] == 1.5


def test_stuck_at_chance_takes_two_epochs_as_the_trainer_says(monkeypatch):
    monkeypatch.setattr(train.Trainer, "evaluate", lambda self, limit=None: {"test_loss": 2.3, "test_acc": 0.1})
    one = benchmark.train_run("lenet", 0, 1, "cpu", subset=20)
    assert one["test_acc"] == 0.1 and one["stuck"] is False
    assert benchmark.train_run("lenet", 0, 2, "cpu", subset=20)["stuck"] is True


def test_seeds_cut_short_by_the_budget_do_not_meet_the_goal():
    jobs = [job("resnext", 0, 0.91), job("resnext", 1, 0.92), job("lenet", 0, 0.85), job("lenet", 1, 0.85),
            job("lenet", 2, 0.85)]
    table = benchmark.summarize(jobs, {"resnext": 3, "lenet": 3})
    assert table["resnext"]["goal_reached"] and not table["resnext"]["met_goal"]
    assert table["lenet"]["met_goal"]
    data = {"format": benchmark.FORMAT, "command": "python -m d2lcnn bench --all", "device": "cpu",
            "device_name": "a CPU", "torch": "2.11.0", "date": "2026-11-30T00:00:00+00:00", "complete": False,
            "elapsed_s": 9.0, "cpu_count": 2, "jobs": jobs, "skipped": [],
            "settings": {"models": ["resnext", "lenet"], "seeds": 3, "epochs": 10, "subset": None, "jobs": 4,
                         "book": False, "book_epochs": 1, "book_subset": 1000, "timing_epochs": 2}}
    data["models"] = benchmark.summarize(jobs, {"resnext": 3, "lenet": 3})
    text = benchmark.markdown(data)
    assert "| 0.900 2 of 3 seeds |" in text and "| 0.808 ✓ |" in text
    path = Path(tempfile.mkdtemp()) / "r.json"
    path.write_text(json.dumps(data))
    assert benchmark.load(path)["models"]["resnext"]["seeds_planned"] == 3     # from the file's own settings


def test_book_column_names_compute_and_whole_epochs():
    book = {"kind": "book", "model": "lenet", "ratio": 12.5, "compute_ratio": 2.25, "ours_per_s": 1e5,
            "book_per_s": 8e3, "ours_seconds_per_epoch": 0.6, "book_seconds_per_epoch": 7.5,
            "book_compute_only_per_s": 9e3, "ours_train_only_per_s": 2.0e4, "ours_data_s": 0.4, "book_data_s": 5.1,
            "book_subset": 1000, "book_test_acc": 0.7, "ours_test_acc": 0.8, "epochs": 1}
    row = benchmark.summarize([job("lenet"), book])["lenet"]
    assert report._versus(row["book"]) == "2.2× compute, 12.5× whole epochs"
    old = {k: v for k, v in book.items() if k not in ("compute_ratio", "ours_data_s", "book_data_s")}
    assert report._versus(benchmark.summarize([job("lenet"), old])["lenet"]["book"]) == "12.5× whole epochs"


def test_load_refuses_another_file(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a d2lcnn benchmark results file"):
        benchmark.load(path)


def test_published_results_are_valid_and_the_readme_shows_them():
    """The committed results file (package data) loads, names registered networks, and the README's
    results table is exactly its rendering (refresh with ``python -m d2lcnn bench --table FILE``)."""
    data = benchmark.published()
    fashion = {s.name for s in models.specs("fashion")}
    assert set(data["models"]) <= fashion and len(data["models"]) >= 8 and benchmark.full_data(data)
    assert data["device_name"] and data["date"] and data["command"].startswith("python -m d2lcnn ")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert benchmark.markdown(data) in readme
    for other in benchmark.committed():          # every full-data file has its table there, a GPU's too
        if benchmark.full_data(other):
            assert benchmark.markdown(other) in readme, other["device_name"]


def test_published_prefers_full_data_then_complete_then_coverage_then_gpu(tmp_path, monkeypatch):
    def write(name, device, complete, date, subset=None, epochs=10, trained=1):
        models_ = {f"net{i}": {"test_acc_mean": 0.9} for i in range(trained)}
        (tmp_path / name).write_text(json.dumps({"format": benchmark.FORMAT, "device": device, "complete": complete,
                                                 "date": date, "settings": {"subset": subset, "epochs": epochs},
                                                 "models": models_}))
    write("smoke.json", "cpu", True, "2026-12-03", subset=200, epochs=3, trained=17)
    write("full.json", "cpu", False, "2026-12-01", trained=14)
    monkeypatch.setattr(report, "PUBLISHED", tmp_path)
    assert benchmark.published()["date"] == "2026-12-01"     # full data, though cut short, over a newer smoke run
    write("gpu-smoke.json", "cuda", True, "2026-11-02", subset=128, epochs=1, trained=17)
    assert benchmark.published()["date"] == "2026-12-01"     # a GPU smoke run does not replace full data
    write("gpu-cut.json", "cuda", False, "2026-11-04", trained=12)
    assert benchmark.published()["date"] == "2026-12-01"     # both cut short: more networks trained wins
    write("gpu-cut2.json", "cuda", False, "2026-11-05", trained=14)
    assert benchmark.published()["date"] == "2026-11-05"     # as many networks: the GPU's
    write("full2.json", "cpu", True, "2026-11-30", epochs=None, trained=17)
    assert benchmark.published()["date"] == "2026-11-30"     # complete over cut short
    write("gpu.json", "cuda", True, "2026-11-01", trained=17)
    assert benchmark.published()["date"] == "2026-11-01"     # complete both: the GPU's over the CPU's


def test_the_speedrun_trains_for_its_recipes_epochs_unless_told():
    """bench --all trains each network for its recipe's epochs: 10, the speedrun's 16 (it taught 16
    and trained 10); --epochs N sets every run."""
    def epochs(settings):
        alone, shared = benchmark.plan(settings)
        return {(j["model"], j["role"]): j["epochs"] for j in alone + shared if j["kind"] == "train"}

    default = epochs(benchmark.Settings(models=["lenet", benchmark.SPEEDRUN], seeds=1, book=False))
    assert default[(benchmark.SPEEDRUN, "speedrun")] == train.Recipe.modern(benchmark.SPEEDRUN).epochs == 16
    assert default[("lenet", "accuracy")] == 10
    told = epochs(benchmark.Settings(models=["lenet", benchmark.SPEEDRUN], seeds=1, book=False, epochs=3))
    assert set(told.values()) - {2} == {3}    # every run 3 epochs (the timing run keeps its own 2)


def test_full_runs_give_their_own_time_and_their_resize():
    """Runs gathered from separate full trainings (role "full", tools/full_results.py) count for
    accuracy and give their own seconds; a reduced resize is what the table shows, and its FLOPs are
    those of that size (with the builder's arguments the run needed)."""
    jobs = [dict(job("alexnet", s, 0.9), role="full", resize=96, build={"adaptive_pool": True},
                 seconds_per_epoch=100.0 + s) for s in (0, 1)]
    row = benchmark.summarize(jobs, {"alexnet": 1})["alexnet"]
    assert row["seeds"] == 2 and row["seconds_per_epoch"] == 100.5 and row["resize"] == 64 + 32
    at_224 = benchmark.summarize([job("alexnet", 0, 0.9)])["alexnet"]
    assert row["params"] == at_224["params"] and row["flops"] < at_224["flops"] / 4
    small = benchmark.summarize([dict(job("resnet18", 0, 0.92), role="full", resize=28)])["resnet18"]
    assert small["flops"] < benchmark.summarize([job("resnet18", 0, 0.92)])["resnet18"]["flops"] / 8
    data = {"format": benchmark.FORMAT, "command": "python -m d2lcnn train", "device": "cpu", "device_name": "a CPU",
            "cpu_count": 2, "torch": "2.14", "date": "2026-12-04T00:00:00+00:00", "complete": False, "elapsed_s": 1.0,
            "settings": {"epochs": 10, "seeds": 3, "subset": None, "jobs": 2, "book": False, "book_epochs": 1,
                         "book_subset": None, "timing_epochs": 0, "planned_seeds": {"alexnet": 1}},
            "note": "They shared the CPU.", "jobs": jobs, "skipped": [], "models": {"alexnet": row}}
    text = benchmark.markdown(data)
    assert "| 96×96 |" in text and "of the runs themselves" in text and "They shared the CPU." in text


def test_the_cpu_track_writes_its_seeds_and_says_a_shrunk_check_has_no_goal(tmp_path):
    out = tmp_path / "sc.json"
    done = bench("--speedrun-cpu", "--subset", "10", "--epochs", "1", "--seeds", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["format"] == cpu_track.FORMAT and [r["seed"] for r in data["runs"]] == [0, 1]
    assert data["entry"]["build"] == {"channels": [16, 32, 64]} and data["device"] == "cpu"
    assert all(r["epochs"] == 1 and 0 <= r["test_acc"] <= 1 and r["train_seconds"] > 0 for r in data["runs"])
    assert data["summary"]["test_acc_mean"] == round(sum(r["test_acc"] for r in data["runs"]) / 2, 4)
    assert "the goal does not apply" in done.stdout and "| 1 |" in done.stdout


def test_the_cpu_track_goal_is_the_mean_with_every_seed_in_time():
    def runs(*pairs):
        return [{"test_acc": a, "train_seconds": t} for a, t in pairs]

    assert cpu_track.summary(runs((0.931, 290), (0.929, 299), (0.932, 250)))["met_goal"]
    assert not cpu_track.summary(runs((0.931, 290), (0.925, 299), (0.932, 250)))["met_goal"]    # mean 0.9293
    assert not cpu_track.summary(runs((0.95, 290), (0.95, 301)))["met_goal"]                    # one seed too slow


def test_the_cpu_track_network_is_the_speedruns_a_quarter_as_wide():
    wide, narrow = models.build(benchmark.SPEEDRUN), models.build(benchmark.SPEEDRUN, **cpu_track.SPEEDRUN_CPU["build"])
    assert narrow.b1[0].out_channels * 4 == wide.b1[0].out_channels
    assert narrow(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert cpu_track.COMMITTED.parent != report.PUBLISHED          # published() never reads it as a bench file


def test_full_results_counts_only_runs_of_todays_recipe():
    """tools/full_results.py sets apart a run whose recorded recipe has changed since (ConvNeXt's
    initialisation): its accuracy no longer says what the recipe gives."""
    import dataclasses
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tools" / "full_results.py"
    spec = importlib.util.spec_from_file_location("full_results", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    today = dataclasses.asdict(train.Recipe.modern("convnext"))
    assert tool.superseded({"model": "convnext", "resize": 32, "recipe": today}) == []
    assert tool.superseded({"model": "convnext", "resize": 32, "recipe": {**today, "init": "kaiming"}}) == [
        "init 'kaiming' (now 'pytorch')"]
    assert tool.superseded({"model": "lenet", "resize": 28}) == []       # no recipe recorded: it counts


def test_full_results_keeps_each_recipes_epochs_and_plans_seeds_by_time(tmp_path):
    """A gathered file with the speedrun's 16 epochs says "each network's recipe's epochs", not "10
    epochs"; three seeds are planned for a network whose run took at most 20 minutes, one for the
    others, the speedrun too (its CPU run takes hours)."""
    def run(model, seed, epochs, seconds):
        return {"model": model, "seed": seed, "threads": 1, "test_acc": 0.9, "acc_by_epoch": [0.9] * epochs,
                "seconds_per_epoch": [seconds / epochs] * epochs, "examples_per_s": [100] * epochs,
                "train_seconds": seconds, "finished": "2026-12-04 10:00:00 UTC"}

    source = tmp_path / "runs.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in
                              (run("lenet", 0, 10, 300.0), run(benchmark.SPEEDRUN, 0, 16, 9000.0))))
    out = tmp_path / "full.json"
    tool = Path(__file__).resolve().parent.parent / "tools" / "full_results.py"
    done = subprocess.run([sys.executable, str(tool), str(source), "-o", str(out)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tool.parent.parent)})
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["settings"]["epochs"] is None and benchmark.full_data(data)
    assert data["settings"]["planned_seeds"] == {"lenet": 3, benchmark.SPEEDRUN: 1}
    assert "each network's recipe's epochs (10; the speedrun 16)" in done.stdout
    assert data["models"][benchmark.SPEEDRUN]["test_acc_mean"] == 0.9
