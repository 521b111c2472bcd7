"""The compute path: what the Trainer chooses on a CPU with and without bfloat16 instructions
(the detection mocked), the overrides, the one line a fit says, that the choice is really applied,
and ``python -m d2lcnn speed`` on tiny data. Nothing here depends on the machine's speed."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from d2lcnn import data, models, runtime, speed, train
from d2lcnn.commands import main

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small():
    return data.FashionMNIST(batch_size=20, device="cpu", subset=4, test_subset=2)


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda: "AVX512-BF16")


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda: None)


@pytest.mark.parametrize("flags, found", [({"avx2", "avx512f"}, None), ({"avx512f", "avx512_bf16"}, "AVX512-BF16"),
                                          ({"amx_tile", "amx_bf16", "avx512_bf16"}, "AMX"), (set(), None)])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, flags, found):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: flags)
    assert runtime.native_bf16() == found


def test_cpu_flags_are_a_set_of_words():
    flags = runtime.cpu_flags()
    assert isinstance(flags, set) and all(" " not in f for f in flags)


def test_cpu_with_bf16_gets_channels_last_and_bf16_by_default(bf16_cpu):
    """Measured faster on most networks and as accurate at every lesson's setting: the default."""
    path = train.compute_path(CPU, "resnext/fashion")
    assert (path.amp_dtype, path.channels_last, path.compile) == (torch.bfloat16, True, False)
    assert str(path).startswith("compute path on cpu, ") and "bfloat16 autocast, channels-last, eager" in str(path)
    assert train.compute_path(CPU, "Sequential").amp_dtype == torch.bfloat16      # not registered: the default
    assert train.compute_path(CPU).amp_dtype == torch.bfloat16


def test_cpu_without_bf16_keeps_float32_and_says_why(plain_cpu):
    path = train.compute_path(CPU, "resnext/fashion")
    assert path.amp_dtype is None and path.channels_last
    assert "float32 (this CPU has no bfloat16 instructions)" in str(path)
    assert train.compute_path(CPU, "resnext/fashion", amp=True).amp_dtype is None   # never emulated


def test_overrides_are_obeyed(bf16_cpu):
    path = train.compute_path(CPU, "resnext/fashion", amp=False, channels_last=False, compile=True)
    assert (path.amp_dtype, path.channels_last, path.compile) == (None, False, True)
    assert "float32 (amp=False), contiguous, torch.compile" in str(path)


def test_a_network_registered_slower_with_channels_last_keeps_it_off_unless_asked(bf16_cpu, monkeypatch):
    key = ("lenet", "fashion")
    monkeypatch.setitem(models._REGISTRY, key, dataclasses.replace(models._REGISTRY[key],
                                                                   cpu={"channels_last": False}))
    assert train.compute_path(CPU, "lenet/fashion").channels_last is False
    assert train.compute_path(CPU, "lenet/fashion", channels_last=True).channels_last is True
    assert train.compute_path(CPU, "Sequential").channels_last is True    # not registered: the default


def test_other_devices_keep_their_paths():
    mps = train.compute_path(torch.device("mps"), "lenet/fashion")
    assert (mps.amp_dtype, mps.channels_last) == (None, False)


def first_conv(net):
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))


def test_bf16_and_channels_last_are_applied(small, bf16_cpu):
    seen = {}

    def hook(module, inputs, output):
        seen.update(input_cl=inputs[0].is_contiguous(memory_format=torch.channels_last), out=output.dtype)

    t = train.Trainer(models.build("resnext"), data=small, recipe=train.Recipe.modern("resnext"), amp=True)
    assert t.amp_dtype == torch.bfloat16 and t.channels_last
    assert first_conv(t.model).weight.is_contiguous(memory_format=torch.channels_last)
    first_conv(t.model).register_forward_hook(hook)
    X, y = next(iter(small.train_batches()))
    t.train_step(X, y)
    assert seen == {"input_cl": True, "out": torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in t.model.parameters())   # the weights stay float32


def test_plain_path_runs_float32_contiguous(small, bf16_cpu):
    seen = {}
    t = train.Trainer(models.build("resnext"), data=small, recipe=train.Recipe.modern("resnext"),
                      amp=False, channels_last=False)
    first_conv(t.model).register_forward_hook(lambda m, i, o: seen.update(out=o.dtype, cl=o.is_contiguous()))
    t.train_step(*next(iter(small.train_batches())))
    assert seen == {"out": torch.float32, "cl": True}


def test_a_fit_says_its_path_once_on_stderr(small, bf16_cpu, capsys):
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), amp=True)
    t.fit()
    err = capsys.readouterr().err
    assert err.count("compute path on cpu") == 1 and "bfloat16 autocast, channels-last, eager" in err
    t.fit(1)
    assert capsys.readouterr().err.count("compute path on cpu") == 1


def test_speed_setting_caps_and_refuses():
    assert speed.setting("alexnet")["resize"] == 96
    capped = speed.setting("alexnet", subset=5, epochs=1)
    assert (capped["subset"], capped["test_subset"], capped["epochs"]) == (5, 5, 1)
    assert set(speed.LESSON_CPU) == {s.name for s in models.specs("fashion")}
    with pytest.raises(KeyError, match="no lesson CPU setting for 'foo'"):
        speed.setting("foo")


def test_speed_command_on_tiny_data(tmp_path, capsys, bf16_cpu):
    out = tmp_path / "speed.json"
    assert main(["speed", "--models", "lenet", "--subset", "2", "--epochs", "1", "--rounds", "2", "--steps", "2",
                 "--amp", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(out.read_text())
    assert printed["rows"] == saved["rows"] and [r["model"] for r in saved["rows"]] == ["lenet"]
    row = saved["rows"][0]
    assert row["float32_per_s"] > 0 and row["chosen_per_s"] > 0 and len(row["ratio_per_round"]) == 2
    assert "bfloat16 autocast" in row["path"]
    assert {"float32_test_acc", "chosen_test_acc", "difference"} <= row["accuracy"].keys()
    assert saved["summary"]["networks"] == 1 and {"cpu_bf16", "threads", "load"} <= saved["machine"].keys()
    table = out.with_suffix(".md").read_text()
    assert table.startswith("| network |") and "| lenet |" in table and "Median speed-up" in table


def test_speed_command_times_the_optimizer_update(tmp_path, capsys):
    out = tmp_path / "optimizer.json"
    assert main(["speed", "--optimizer", "--models", "lenet", "--rounds", "1", "--steps", "3", "--subset", "2",
                 "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    row = json.loads(out.read_text())["rows"][0]
    assert printed["rows"] == [row] and row["model"] == "lenet" and row["parameters"] == 61_706
    assert row["default_ms"] > 0 and row["fused_ms"] > 0 and row["fused"] is True
    assert row["step_default_ms"] > 0 and row["step_fused_ms"] > 0 and "compute path on cpu" in row["step_path"]
    assert "| lenet | 61,706 |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("argv, message", [(["--models", ","], "--models names no network"),
                                           (["--models", "foo"], "no lesson CPU setting"),
                                           (["--steps", "0"], "--steps must be a whole number")])
def test_speed_command_refuses_bad_arguments(capsys, argv, message):
    assert main(["speed", *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("name, amp_dtype, channels_last", [("bn_lenet", None, False), ("efficientnet_b0", None, True),
                                                            ("shufflenet_v2", None, True), ("lenet", torch.bfloat16, True)])
def test_networks_keep_off_what_measured_slower_on_the_cpu(bf16_cpu, name, amp_dtype, channels_last):
    """Measured (measurements/cpu-path.json): bfloat16 slowed bn_lenet, EfficientNet and ShuffleNet
    down, and bn_lenet is too small for channels-last to pay; channels-last speeds EfficientNet and
    ShuffleNet up. A fit says why it keeps float32; amp=True still gets bfloat16."""
    path = train.compute_path(CPU, f"{name}/fashion")
    assert (path.amp_dtype, path.channels_last) == (amp_dtype, channels_last)
    if amp_dtype is None:
        assert "float32 (measured faster than bfloat16 for this network)" in str(path)
        assert train.compute_path(CPU, f"{name}/fashion", amp=True).amp_dtype == torch.bfloat16


def test_a_registration_that_keeps_float32_matters_only_on_a_cpu(bf16_cpu, monkeypatch):
    monkeypatch.setattr(train, "gpu_capability", lambda device: (9, 0))
    path = train.compute_path(torch.device("cuda"), "shufflenet_v2/fashion")
    assert (path.amp_dtype, path.channels_last) == (torch.bfloat16, True)


def test_the_committed_measurement_is_complete_and_the_readme_shows_it():
    """measurements/cpu-path.json covers every fashion network, no chosen path is slower than float32,
    and the README's table is its rendering."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    result = json.loads((root / "measurements/cpu-path.json").read_text())
    assert [r["model"] for r in result["rows"]] == [s.name for s in models.specs("fashion")]
    assert result["summary"]["lowest_ratio"] >= 1.0 and result["machine"]["cpu_bf16"]
    assert speed.markdown(result) in (root / "README.md").read_text()
