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
    assert train.Trainer.from_checkpoint("done.pt", device="cpu").epoch == 2   # saved where it resumed from


def test_checkpoint_that_cannot_be_written_at_the_end_is_kept_elsewhere(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import checkpoint
    from d2lcnn.commands import main
    from d2lcnn.commands import train as command

    real = checkpoint.save
    monkeypatch.setattr(command, "_rescue_paths", lambda model, failed: [tmp_path / "rescued.pt"])

    def save(state, path):
        if str(path).endswith("wanted.pt"):
            raise OSError(28, "No space left on device")
        return real(state, path)

    monkeypatch.setattr(checkpoint, "save", save)
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "wanted.pt")]) == 2
    err = capsys.readouterr().err
    assert "could not write" in err and "saved in" in err and "rescued.pt" in err and '"train_loss"' in err
    assert (tmp_path / "rescued.pt").exists()


# ----------------------------------------------------------------------------------------------
# Issue 26: nothing trained is lost (resume, full disk, divergence), no hang, no raw traceback
# ----------------------------------------------------------------------------------------------

def interrupted_checkpoint(tmp_path, monkeypatch, capsys, name="model.pt"):
    """An interrupted quick run saved to ``name`` in tmp_path (the working folder); its bytes."""
    from d2lcnn.commands import main

    monkeypatch.chdir(tmp_path)
    stop_at_step(monkeypatch, 3)
    assert main(["train", "lenet", "--device", "cpu", "--out", name]) == 130
    capsys.readouterr()
    monkeypatch.undo()
    monkeypatch.setenv("D2LCNN_QUICK", "1")
    monkeypatch.chdir(tmp_path)
    return (tmp_path / name).read_bytes()


def test_a_resumed_run_is_saved_to_the_file_it_came_from(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    interrupted_checkpoint(tmp_path, monkeypatch, capsys)
    assert train.Trainer.from_checkpoint("model.pt", device="cpu").interrupted
    assert main(["train", "lenet", "--resume", "model.pt", "--device", "cpu"]) == 0
    assert "checkpoint saved to model.pt (the file it resumed from)" in capsys.readouterr().out
    done = train.Trainer.from_checkpoint("model.pt", device="cpu")
    assert done.epoch == 1 and done._plan is None and not done.interrupted
    # With --out, there instead (the file it came from stays as it was).
    before = (tmp_path / "model.pt").read_bytes()
    assert main(["train", "lenet", "--resume", "model.pt", "--epochs", "1", "--out", "more.pt", "--device", "cpu"]) == 0
    assert "checkpoint saved to more.pt" in capsys.readouterr().out
    assert train.Trainer.from_checkpoint("more.pt", device="cpu").epoch == 2
    assert (tmp_path / "model.pt").read_bytes() == before


def test_epochs_with_the_resume_of_an_interrupted_run_is_refused(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn.commands import main

    before = interrupted_checkpoint(tmp_path, monkeypatch, capsys)
    assert main(["train", "lenet", "--resume", "model.pt", "--epochs", "7", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "holds a run interrupted in epoch 1 of 1" in err and "Drop --epochs 7" in err and "trains N more" in err
    assert (tmp_path / "model.pt").read_bytes() == before


def enospc_once(monkeypatch):
    """Make torch's writer fail once as it does on a full disk: a RuntimeError, not an OSError."""
    import torch

    real, calls = torch.save, []

    def save(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) == 1:
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0\n"
                               "PytorchStreamWriter failed writing file data/0: file write failed")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_full_disk_is_rescued_and_said(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main
    from d2lcnn.commands import train as command

    for folder in ("tmp", "home", "work"):
        (tmp_path / folder).mkdir()
    monkeypatch.setattr(command.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    monkeypatch.chdir(tmp_path / "work")
    enospc_once(monkeypatch)
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "wanted.pt")]) == 2
    err = capsys.readouterr().err
    assert "could not write" in err and "RuntimeError" in err and "full disk" in err and '"train_loss"' in err
    rescued = list(tmp_path.glob("*/d2lcnn-lenet-*.pt"))
    assert len(rescued) == 1 and f"saved in {rescued[0]} instead" in err
    assert train.Trainer.from_checkpoint(rescued[0], device="cpu").epoch == 1
    assert not (tmp_path / "wanted.pt").exists()


def test_when_the_first_rescue_place_is_full_the_next_is_used(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn.commands import main
    from d2lcnn.commands import train as command

    monkeypatch.setattr(command, "_rescue_paths", lambda model, failed: [tmp_path / "full.pt", tmp_path / "rescued.pt"])
    real_save = command.Trainer.save

    def save(self, path):
        if str(path).endswith(("wanted.pt", "full.pt")):
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")
        return real_save(self, path)

    monkeypatch.setattr(command.Trainer, "save", save)
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "wanted.pt")]) == 2
    assert f"saved in {tmp_path / 'rescued.pt'} instead" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rescued.pt"]


def test_the_rescue_goes_to_another_filesystem_first(tmp_path, monkeypatch):
    from pathlib import Path

    from d2lcnn.commands import train as command

    monkeypatch.setattr(command.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(Path, "home", lambda: tmp_path / "home")
    monkeypatch.chdir(tmp_path)
    full = tmp_path / "tmp" / "wanted.pt"
    # The temporary folder is on the full filesystem; home is elsewhere: home comes first.
    monkeypatch.setattr(command, "_device_of", lambda p: 2 if "home" in str(p) else 1)
    paths = command._rescue_paths("lenet", full)
    assert paths[0].parent == tmp_path / "home" and len(paths) == 3


def test_divergence_in_the_last_epoch_saves_the_good_weights(tmp_path, quick, monkeypatch, capsys):
    import torch

    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.setattr(train, "QUICK", {**train.QUICK, "epochs": 2})
    real = train.Trainer.train_step

    def step(self, X, y):    # the second epoch's loss is NaN (the weights stay finite)
        loss, right = real(self, X, y)
        return (loss * float("nan"), right) if self.epoch == 1 else (loss, right)

    monkeypatch.setattr(train.Trainer, "train_step", step)
    out = tmp_path / "model.pt"
    assert main(["train", "lenet", "--device", "cpu", "--epochs", "2", "--out", str(out), "--json"]) == 3
    captured = capsys.readouterr()
    assert "training diverged in epoch 2" in captured.err
    assert "The weights of epoch 1 (the last good one, test acc" in captured.err and str(out) in captured.err
    result = json.loads(captured.out)
    assert result["checkpoint"] == str(out) and result["saved_epoch"] == 1
    saved = train.Trainer.from_checkpoint(out, device="cpu")
    assert saved.epoch == 1 and all(bool(torch.isfinite(p).all()) for p in saved.model.parameters())
    # Diverged in its first epoch: nothing good to save, and it says so.
    monkeypatch.setattr(train.Trainer, "train_step", lambda self, X, y: (lambda r: (r[0] * float("nan"), r[1]))(real(self, X, y)))
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "none.pt")]) == 3
    assert "Nothing was saved to" in capsys.readouterr().err and not (tmp_path / "none.pt").exists()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_distributed_run_without_its_peers_stops_and_says_what_is_missing(quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.setattr(train, "FashionMNIST", lambda *a, **k: pytest.fail("the data was loaded"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert main(["train", "lenet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "WORLD_SIZE=2" in err and "RANK, MASTER_ADDR, MASTER_PORT are not set" in err and "torchrun" in err
    # Rank 0 of 2, and rank 1 never comes: it waits $D2LCNN_RENDEZVOUS_TIMEOUT seconds, not forever.
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("D2LCNN_RENDEZVOUS_TIMEOUT", "1")
    assert main(["train", "lenet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "rank 0 of WORLD_SIZE=2" in err and "not all came" in err and "1/2 clients joined" in err
    assert "D2LCNN_RENDEZVOUS_TIMEOUT" in err and "Traceback" not in err


def test_an_out_name_too_long_is_one_line(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn import train
    from d2lcnn.commands import main

    monkeypatch.setattr(train.Trainer, "fit", lambda *a, **k: pytest.fail("it trained"))
    assert main(["train", "lenet", "--out", str(tmp_path / ("m" * 300 + ".pt"))]) == 2
    err = capsys.readouterr().err
    assert "too long for this filesystem (303 bytes" in err and "Choose a shorter name" in err
    # 240 bytes pass the name limit of 255, but not with the temporary file's suffix: refused too.
    assert main(["train", "lenet", "--out", str(tmp_path / ("m" * 237 + ".pt"))]) == 2
    assert "too long" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_readme_says_what_nproc_per_node_takes():
    """torchrun --nproc_per_node=0 fails inside torch with a bare AssertionError: our README says what to pass."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "`torchrun --nproc_per_node=N` starts N processes on this machine: N is 1 or more" in readme
    assert "$D2LCNN_RENDEZVOUS_TIMEOUT" in readme


def test_when_nothing_can_be_written_the_history_is_still_printed(tmp_path, quick, monkeypatch, capsys):
    from d2lcnn.commands import main
    from d2lcnn.commands import train as command

    monkeypatch.setattr(command, "_rescue_paths", lambda model, failed: [tmp_path / "full.pt"])

    def save(self, path):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(command.Trainer, "save", save)
    assert main(["train", "lenet", "--device", "cpu", "--out", str(tmp_path / "wanted.pt")]) == 2
    captured = capsys.readouterr()
    assert "the model could not be saved anywhere" in captured.err and '"train_loss"' in captured.err
    assert "checkpoint saved" not in captured.out and list(tmp_path.iterdir()) == []
