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
                         env=env or os.environ, timeout=300)
    assert out.returncode == 0, out.stderr
    return out


def test_models_json_lists_every_model():
    rows = json.loads(run("models", "--json").stdout)
    assert {(r["name"], r["config"]) for r in rows} == {(s.name, s.config) for s in models.specs()}
    lenet = next(r for r in rows if r["name"] == "lenet" and r["config"] == "fashion")
    assert lenet["params"] == 61_706 and lenet["flops"] == 833_040 and lenet["input_shape"] == [1, 1, 28, 28]
    assert all(r["params"] == r["reference_params"] for r in rows)


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
                          "--device", "cpu", "--json"], capture_output=True, text=True, env=QUICK, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["world_size"] == 2
    first, second = result["rank_checksums"]
    assert first == second
    assert first != result["weights_checksum_start"]


@pytest.mark.slow
def test_bench_against_the_book_json():
    result = json.loads(run("bench", "lenet", "--device", "cpu", "--json").stdout)
    assert {"ours_per_s", "book_per_s", "ratio"} <= result.keys()
    assert result["ours_per_s"] > 0 and result["book_per_s"] > 0
    assert result["book_test_acc"] is not None
