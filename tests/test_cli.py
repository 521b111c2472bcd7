"""The command line: models, train (also through torchrun with 2 processes), bench."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from d2lcnn import models

QUICK = {**os.environ, "D2LCNN_QUICK": "1"}


def run(*args, env=None):
    out = subprocess.run([sys.executable, "-m", "d2lcnn", *args], capture_output=True, text=True,
                         env=env or os.environ)
    assert out.returncode == 0, out.stderr
    return out


def test_models_json_lists_every_model():
    rows = json.loads(run("models", "--json").stdout)
    assert {(r["name"], r["config"]) for r in rows} == {(s.name, s.config) for s in models.specs()}
    lenet = next(r for r in rows if r["name"] == "lenet" and r["config"] == "fashion")
    assert lenet["params"] == 61_706 and lenet["flops"] == 833_040 and lenet["input_shape"] == [1, 1, 28, 28]
    assert all(r["params"] == r["reference_params"] for r in rows if r["reference_params"] is not None)


def test_train_json_and_checkpoint(tmp_path):
    ckpt = tmp_path / "lenet.pt"
    result = json.loads(run("train", "lenet", "--device", "cpu", "--recipe", "book", "--json",
                            "--out", str(ckpt), env=QUICK).stdout)
    assert {"test_acc", "examples_per_s", "history"} <= result.keys()
    assert result["recipe"]["lr"] == 0.9 and ckpt.exists()


def test_unknown_model_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "train", "lenett", "--json"],
                         capture_output=True, text=True, env=QUICK)
    assert out.returncode == 2 and "no model 'lenett'" in out.stderr


def test_torchrun_two_processes_end_with_identical_weights():
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run([str(torchrun), "--nproc_per_node=2", "-m", "d2lcnn", "train", "lenet",
                          "--device", "cpu", "--json"], capture_output=True, text=True, env=QUICK)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["world_size"] == 2
    first, second = result["rank_checksums"]
    assert first == second
    assert first != result["weights_checksum_start"]


def test_bench_against_the_book_json():
    # 128 images per class: five of the book's batches of 256, the least its loop can plot.
    result = json.loads(run("bench", "lenet", "--device", "cpu", "--subset", "128", "--json").stdout)
    assert {"ours_per_s", "book_per_s", "ratio"} <= result.keys()
    assert result["ours_per_s"] > 0 and result["book_per_s"] > 0
    assert result["book_test_acc"] is not None


# ----------------------------------------------------------------------------------------------
# Bad input, divergence, interruption and resume (in-process: quick and without a clock)
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("D2LCNN_QUICK", "1")


@pytest.mark.parametrize("args, words", [
    (["--batch-size", "-5"], "batch_size must be a whole number of at least 1, got -5"),
    (["--batch-size", "0"], "batch_size must be a whole number of at least 1, got 0"),
    (["--epochs", "0"], "epochs must be a whole number of at least 1, got 0"),
    (["--lr", "0"], "lr must be a number in (0, inf)"),
    (["--device", "gpu"], "'gpu' is not a device name. This machine has: cpu"),
    (["--resize", "32"], "Fashion-MNIST at resize=32"),
    (["--resume", "nowhere.pt"], "no checkpoint at nowhere.pt"),
])
def test_bad_arguments_are_refused_before_any_work(args, words, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    assert main(["train", "lenet", *args, "--json"]) == 2
    out = capsys.readouterr()
    assert words in out.err and "Traceback" not in out.err
    assert json.loads(out.out) == {"ok": False, "error": out.err.strip()[len("error: "):]}


def test_unwritable_out_is_refused_before_training(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.setattr(train.Trainer, "fit", lambda *a, **k: pytest.fail("it trained"))
    assert main(["train", "lenet", "--out", str(tmp_path)]) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["train", "lenet", "--out", str(tmp_path / "file" / "m.pt")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_diverged_run_exits_3_and_says_so(quick, capsys):
    from d2lcnn.commands import main

    assert main(["train", "lenet", "--recipe", "book", "--lr", "1e38", "--device", "cpu", "--json"]) == 3
    out = capsys.readouterr()
    result = json.loads(out.out)
    assert result["ok"] is False and result["diverged"] and "NaN or infinite" in result["error"]
    assert "training diverged in epoch 1" in out.err


def stop_at_step(monkeypatch, n):
    """Make every Trainer stop itself (as the stop button does) after its n-th, 2n-th, ... step."""
    from d2lcnn import train

    real = train.Trainer.train_step
    count = {"n": 0}

    def step(self, X, y):
        result = real(self, X, y)
        count["n"] += 1
        if count["n"] % n == 0:
            self.stop()
        return result

    monkeypatch.setattr(train.Trainer, "train_step", step)


def test_interrupted_run_saves_exits_130_and_resumes(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.chdir(tmp_path)
    stop_at_step(monkeypatch, 3)
    assert main(["train", "lenet", "--device", "cpu"]) == 130
    text = capsys.readouterr().out
    assert "interrupted in epoch 1 after 3 steps" in text
    assert "python -m d2lcnn train lenet --resume lenet-interrupted.pt" in text
    assert main(["train", "lenet", "--device", "cpu", "--json"]) == 130   # and in JSON
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["interrupted"] and result["resume"].endswith("--resume lenet-interrupted.pt")
    monkeypatch.undo()
    monkeypatch.setenv("D2LCNN_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "lenet", "--resume", "lenet-interrupted.pt", "--device", "cpu", "--json",
                 "--out", "done.pt"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] and result["epochs_done"] == 1 and result["test_acc"] is not None
    assert [r["epoch"] for r in result["history"]] == [1, 1] and result["history"][0]["interrupted"]
    # A finished run goes on only when told how far; recipe options do not mix with --resume.
    assert main(["train", "lenet", "--resume", "done.pt"]) == 2
    assert "finished its 1 epochs; add --epochs N" in capsys.readouterr().err
    assert main(["train", "lenet", "--resume", "done.pt", "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err
    assert main(["train", "nin", "--resume", "done.pt"]) == 2
    assert "holds 'lenet/fashion', not 'nin'" in capsys.readouterr().err
    assert main(["train", "lenet", "--resume", "done.pt", "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs_done"] == 2
    assert train.Trainer.from_checkpoint("done.pt", device="cpu").epoch == 1


def test_checkpoint_that_cannot_be_written_at_the_end_is_kept_elsewhere(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import checkpoint
    from d2lcnn.commands import main
    from d2lcnn.commands import train as command

    real = checkpoint.save
    monkeypatch.setattr(command, "_rescue_path", lambda model: tmp_path / "rescued.pt")

    def save(state, path):
        if str(path).endswith("wanted.pt"):
            raise OSError(28, "No space left on device")
        return real(state, path)

    monkeypatch.setattr(checkpoint, "save", save)
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "wanted.pt")]) == 2
    err = capsys.readouterr().err
    assert "could not write" in err and "saved in" in err and "rescued.pt" in err and '"train_loss"' in err
    assert (tmp_path / "rescued.pt").exists()
