"""Every device's code path, driven on the CPU as far as torch allows.

* the T4 path (float16 autocast, a real ``torch.amp.GradScaler``), chosen through
  ``train.amp_dtype`` exactly as on CUDA, with ``train.gpu_capability`` patched to say "T4";
* the H100 path (bfloat16, channels-last, ``torch.compile``), the same way with "H100";
* MPS: no float64 on the training device anywhere in the package, no autocast context when
  mixed precision is off (torch 2.3/2.4 raise on MPS even for a disabled one);
* ``torchrun`` with one process makes a real process group;
* the GPU script's smoke form (``SMOKE=1 bash tools/gpu_evidence.sh``) and its pieces.
* the runs script (``tools/gpu_runs.sh``) with a stand-in for the training command.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tokenize
import warnings
from pathlib import Path

import pytest
import torch

from d2lcnn import checkpoint, data, models, train
from tests.test_train import stop_in_forward

ROOT = Path(__file__).resolve().parent.parent
T4, H100 = (7, 5), (9, 0)


@pytest.fixture(scope="module")
def small():
    """60 training and 20 test images per class, batches of 50: 12 steps per epoch."""
    return data.FashionMNIST(batch_size=50, device="cpu", subset=60, test_subset=20)


def gpu(monkeypatch, capability):
    """Make the Trainer's own choice (``amp_dtype`` through ``gpu_capability``) see this GPU."""
    monkeypatch.setattr(train, "gpu_capability", lambda device: capability)


class HostReads:
    """Counts reads of a tensor's value by the host (a GPU would synchronise) inside ``train_step``."""

    def __init__(self, monkeypatch, trainer):
        self.n, self.steps, inside = 0, 0, [False]
        for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            real = getattr(torch.Tensor, name)

            def counted(tensor, *args, _real=real, **kwargs):
                self.n += inside[0]
                return _real(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)
        step = trainer.train_step

        def train_step(X, y):
            inside[0] = True
            self.steps += 1
            try:
                return step(X, y)
            finally:
                inside[0] = False

        monkeypatch.setattr(trainer, "train_step", train_step)


def test_t4_path_float16_with_a_real_scaler(small, monkeypatch, tmp_path):
    gpu(monkeypatch, T4)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=2), seed=1)
    assert t.amp_dtype == torch.float16 and isinstance(t.scaler, torch.amp.GradScaler) and t.scaler.is_enabled()
    reads = HostReads(monkeypatch, t)
    t.fit()
    assert reads.steps == 24 and reads.n == 0          # the scaler's skip decision stays on the device
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in t.history)
    assert [type(r["skipped_steps"]) for r in t.history] == [int, int]

    # float16 really ran: a forward pass under the Trainer's own context gives float16 logits.
    with t._autocast():
        assert t.forward_model(small.test_images[:2, None].float()).dtype == torch.float16

    # The scaler's state goes into the checkpoint and comes back.
    t.scaler.update(1024.0)
    path = t.save(tmp_path / "t4.pt")
    assert checkpoint.read(path)["scaler"]["scale"] == 1024.0
    resumed = train.Trainer.from_checkpoint(path, device="cpu")
    assert resumed.scaler.get_scale() == 1024.0
    assert resumed.optimizer.param_groups[0]["fused"] is True


def test_t4_path_records_and_explains_skipped_steps(small, monkeypatch):
    gpu(monkeypatch, T4)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), seed=1)
    t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)   # every scaled gradient overflows float16
    before = [p.detach().clone() for p in t.model.parameters()]
    with pytest.warns(train.TrainingWarning, match="12 of the 12 steps of epoch 1 were skipped"):
        t.fit()
    assert t.history[-1]["skipped_steps"] == 12
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))   # no update was applied
    # The fused optimizer's momentum starts at zero, not at whatever its first skipped step left.
    assert all(not s["momentum_buffer"].any() for s in t.optimizer.state.values())
    assert t.scaler.get_scale() == 2.0 ** (40 - 12)


def test_t4_run_stopped_mid_epoch_resumes_with_its_scale_and_skipped_steps(small, monkeypatch, tmp_path):
    gpu(monkeypatch, T4)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), seed=1)
    t.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    handle = stop_in_forward(t, 5)
    t.fit()
    handle.remove()
    assert t.interrupted and t._plan["partial"]["skipped"] == 5
    resumed = train.Trainer.from_checkpoint(t.save(tmp_path / "stopped.pt"), device="cpu")
    assert resumed.scaler.get_scale() == 2.0 ** 35
    resumed.fit()
    assert resumed.history[-1]["skipped_steps"] == 12 and not resumed.interrupted


def test_a_plain_checkpoint_without_a_scaler_still_loads(small, monkeypatch, tmp_path):
    path = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1)).save(
        tmp_path / "cpu.pt")
    assert "scaler" not in checkpoint.read(path)
    gpu(monkeypatch, T4)
    t = train.Trainer.from_checkpoint(path, device="cpu")
    assert t.scaler.get_scale() == 65536.0 and t.optimizer.param_groups[0]["fused"] is True


def test_h100_path_bfloat16_channels_last_compile(small, monkeypatch):
    gpu(monkeypatch, H100)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), seed=1,
                      channels_last=True, compile=True)
    assert t.amp_dtype == torch.bfloat16 and t.scaler is None
    conv = next(m for m in t.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert t.forward_model is not t.model                          # the compiled module
    reads = HostReads(monkeypatch, t)
    t.fit()
    assert reads.n == 0 and t.history[-1]["skipped_steps"] == 0
    assert torch.isfinite(torch.tensor(t.history[-1]["train_loss"])) and t.history[-1]["test_acc"] is not None
    with torch.no_grad(), t._autocast():
        assert t.forward_model(t._prepare(small.test_images[:2, None].float())).dtype == torch.bfloat16


def test_no_autocast_context_when_mixed_precision_is_off(small, monkeypatch):
    def refuse(*args, **kwargs):     # what torch 2.3/2.4 do on MPS, even for enabled=False
        raise RuntimeError("User specified an unsupported autocast device_type 'mps'")

    monkeypatch.setattr(torch, "autocast", refuse)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), amp=False)
    assert t.amp_dtype is None and t.scaler is None
    t.fit()
    assert t.history[-1]["test_acc"] is not None


def _code_names(path: Path) -> list[tuple[int, list[str]]]:
    """(line, the names and operators before it) for every NAME token, strings and comments left out."""
    tokens = [tok for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
              if tok.type in (tokenize.NAME, tokenize.OP)]
    return [(tok.start[0], [t.string for t in tokens[max(0, i - 5):i + 1]]) for i, tok in enumerate(tokens)
            if tok.type == tokenize.NAME]


def test_no_float64_on_the_training_device_in_the_package():
    """MPS has no float64: the package makes none, except by ``.cpu().double()`` (on the CPU)."""
    found = []
    for path in sorted((ROOT / "d2lcnn").rglob("*.py")):
        for line, window in _code_names(path):
            name = window[-1]
            if name in ("float64", "cdouble", "complex128") or (
                    name == "double" and window[-6:] != [".", "cpu", "(", ")", ".", "double"]):
                found.append(f"{path.relative_to(ROOT)}:{line}")
    assert found == []


def test_weights_checksum_is_made_on_the_cpu(monkeypatch):
    """``train``'s checksum sums in float64: only ever of a CPU copy (as from a GPU, simulated here)."""
    from d2lcnn.commands import train as command

    model = models.build("lenet")
    copies, real_cpu, real_double = [], torch.Tensor.cpu, torch.Tensor.double

    def cpu(tensor):
        copies.append(tensor.clone())
        return copies[-1]

    def double(tensor):
        assert any(tensor is c for c in copies), "float64 made on the training device"
        return real_double(tensor)

    monkeypatch.setattr(torch.Tensor, "cpu", cpu)
    monkeypatch.setattr(torch.Tensor, "double", double)
    expected = sum(p.detach().sum().item() for p in model.parameters())
    assert command._checksums(model, False)[0] == pytest.approx(expected, rel=1e-5)


def test_estimate_leaves_out_the_first_step(small, monkeypatch):
    """torch.compile compiles inside the first step: 100 s there and 0.01 s per later step must
    not be estimated as a long run (it was: "about 18 min more")."""
    clock = {"now": 0.0, "steps": 0}
    real_step = train.Trainer.train_step

    def step(self, X, y):
        clock["steps"] += 1
        clock["now"] += 100.0 if clock["steps"] == 1 else 0.01
        return real_step(self, X, y)

    monkeypatch.setattr(train.Trainer, "train_step", step)
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(train, "ESTIMATE_AFTER_S", 0.03)
    monkeypatch.setattr(train, "LONG_RUN_S", 60)
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=3))
    with warnings.catch_warnings(record=True) as caught:    # ("error" would not do: warn() says "always")
        t.fit(1)
    assert clock["steps"] == 12
    assert [str(w.message) for w in caught if w.category is train.TrainingWarning] == []


# ------------------------------------------------------------------------------------------------
# torchrun, and the GPU script's pieces on the CPU
# ------------------------------------------------------------------------------------------------

QUICK = {**os.environ, "D2LCNN_QUICK": "1", "OMP_NUM_THREADS": "1"}


def test_torchrun_with_one_process_makes_a_process_group():
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=1", "-m", "d2lcnn", "train", "lenet",
                          "--device", "cpu", "--json"], capture_output=True, text=True, env=QUICK)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["world_size"] == 1 and result["process_group"] == "gloo"
    assert len(result["rank_checksums"]) == 1


def test_book_module_imports_without_scipy_through_the_scripts_stand_in():
    """The GPU machine has no scipy; d2l.torch imports scipy.spatial.distance_matrix at the top."""
    stub = ROOT / "tools" / "gpu_stub"
    code = f"""
import importlib.abc, importlib.machinery, sys
class NoScipy(importlib.abc.MetaPathFinder):   # scipy as on the GPU machine: only the stand-in
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] != "scipy":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path if path else [{str(stub)!r}])
        if spec is None:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return spec
sys.meta_path.insert(0, NoScipy())
import d2l.torch
import scipy
assert scipy.__file__.startswith({str(stub)!r}), scipy.__file__
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def script(tmp_path, **env):
    return subprocess.run(["bash", str(ROOT / "tools" / "gpu_evidence.sh")], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "SMOKE": "1", "OUT": str(tmp_path),
                               "PYTHON": sys.executable, **env})


def test_gpu_script_smoke_runs_every_step_on_the_cpu(tmp_path):
    done = script(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    bench = json.loads((tmp_path / "bench.json").read_text())
    book = [j for j in bench["jobs"] if j["kind"] == "book"]
    assert book and all("error" not in j for j in book) and book[0]["device"] == "cpu"
    assert bench["settings"]["device"] == "cpu"
    assert json.loads((tmp_path / "compile.json").read_text())["ok"] is True
    assert json.loads((tmp_path / "nccl.json").read_text().strip().splitlines()[-1])["process_group"] == "gloo"
    assert len(list(tmp_path.iterdir())) <= 8
    assert "all steps passed" in done.stdout and "d2lcnn/results/" in done.stdout


def test_gpu_script_exits_non_zero_and_names_the_step_that_failed(tmp_path):
    (tmp_path / "nccl.json").mkdir()      # its output cannot be written: the step fails
    done = script(tmp_path, STEPS="nccl")
    assert done.returncode != 0
    assert "FAILED: nccl" in done.stdout


def fake_trainer(tmp_path):
    """A stand-in for `python -m d2lcnn train ... --json` that answers in two seconds, fails at once for
    the model "broken", and hands every other command to this interpreter."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m d2lcnn train" ]; then
    [ "$4" = broken ] && {{ echo "no such model" >&2; exit 2; }}
    echo "compute path on cpu, 1 thread: float32, channels-last, eager" >&2
    sleep 2
    echo '{{"device": "cpu", "test_acc": 0.9, "recipe": {{"resize": 28}}, "history": [
        {{"test_acc": 0.8, "seconds": 2.0, "examples_per_s": 100.0}},
        {{"test_acc": 0.9, "seconds": 1.0, "examples_per_s": 200.0}}]}}'
    exit 0
fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    return fake


def gpu_runs(tmp_path, *items, **env):
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(ROOT / "tools" / "gpu_runs.sh"), *items], capture_output=True, text=True,
                          env={**os.environ, "OUT": str(out), "PYTHON": str(fake_trainer(tmp_path)), "DEVICE": "cpu",
                               **env})
    assert done.returncode == 0, done.stderr
    return out, [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines()]


def test_gpu_runs_script_runs_in_parallel_and_writes_one_line_per_finished_run(tmp_path):
    out, lines = gpu_runs(tmp_path, "lenet:0", "resnext:1", "lenet:1", "broken:0", PARALLEL="3", DEADLINE="60",
                          FIRST_ESTIMATE="1")
    assert sorted((l["model"], l["seed"]) for l in lines) == [("lenet", 0), ("lenet", 1), ("resnext", 1)]
    run = next(l for l in lines if l["model"] == "resnext")
    assert run["acc_by_epoch"] == [0.8, 0.9] and run["train_seconds"] == 3.0 and run["seconds_per_epoch"] == [2.0, 1.0]
    assert run["concurrent"] == 3 and run["key"] == "resnext-r28-s1-cpu" and run["device"] == "cpu"
    assert "compute path: float32, channels-last, eager" in run["note"]
    assert "skipped" not in (out / "queue.txt").read_text()
    assert (out / "runs" / "resnext-s1.json").exists()


def test_gpu_runs_script_packs_the_raw_outputs_into_one_file_when_asked(tmp_path):
    out, lines = gpu_runs(tmp_path, "lenet:0", DEADLINE="60", FIRST_ESTIMATE="1", PACK="1")
    assert len(lines) == 1 and not (out / "runs").exists()
    with tarfile.open(out / "runs.tgz") as packed:
        assert sorted(packed.getnames()) == ["runs", "runs/lenet-s0.json", "runs/lenet-s0.log"]


def test_gpu_runs_script_starts_no_run_that_would_not_end_before_its_deadline(tmp_path):
    # the first run takes 2 s; then a run is estimated at 2 s and at most 1 s of the 3 is left
    out, lines = gpu_runs(tmp_path, "lenet:0", "lenet:1", "lenet:2", PARALLEL="1", DEADLINE="3", FIRST_ESTIMATE="1")
    assert [(l["model"], l["seed"]) for l in lines] == [("lenet", 0)]
    queue = (out / "queue.txt").read_text()
    assert "skipped lenet:1" in queue and "skipped lenet:2" in queue
