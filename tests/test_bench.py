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


def test_bench_subset_too_small_for_the_books_loop_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "d2lcnn", "bench", "lenet", "--device", "cpu",
                          "--subset", "10"], capture_output=True, text=True)
    assert out.returncode == 2 and "--subset 128 or more" in out.stderr
