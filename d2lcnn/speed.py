"""The compute path measured: how much faster the Trainer's choice trains than plain float32.

:func:`d2lcnn.train.compute_path` chooses, per device and network, bfloat16 autocast and the
channels-last memory format where they pay. This module checks that choice the honest way, per
``fashion`` network at its lesson's CPU setting (:data:`LESSON_CPU`: image size, images per
class, epochs, batch size):

* **Speed.** Two Trainers of the same network, seed and data, one on plain eager float32, one on
  the chosen path, take turns on the same batches in one process (a round each, A B B A, so that
  a change in the machine's load hits both sides alike); examples/s of each and their ratio.
  Training steps only, after two untimed warm-up steps each.
* **Accuracy.** The lesson's run both ways (same seed, same batches): test accuracy of each.
  It costs the lesson's own time twice; ``subset``/``epochs`` shrink it when time is short.

``python -m d2lcnn speed`` runs it and writes JSON and a Markdown table.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import statistics
import time

import torch

from . import models
from .benchmark import no_quick_mode
from .data import FashionMNIST
from .recipe import make_optimizer
from .train import Recipe, Trainer

LESSON_CPU = {
    "lenet": {"resize": 28, "subset": None, "test_subset": None, "epochs": 10, "lesson": "02"},
    "bn_lenet": {"resize": 28, "subset": None, "test_subset": None, "epochs": 10, "lesson": "07"},
    "alexnet": {"resize": 96, "subset": 3000, "test_subset": None, "epochs": 2, "lesson": "03",
                "build": {"adaptive_pool": True}},
    "vgg11": {"resize": 64, "subset": 3000, "test_subset": None, "epochs": 2, "lesson": "04",
              "build": {"adaptive_pool": True}},
    "nin": {"resize": 128, "subset": 2000, "test_subset": None, "epochs": 2, "lesson": "05"},
    "googlenet": {"resize": 28, "subset": 1000, "test_subset": 200, "epochs": 3, "lesson": "06"},
    "resnet18": {"resize": 28, "subset": 500, "test_subset": 200, "epochs": 2, "lesson": "08"},
    "resnet_speedrun": {"resize": 28, "subset": 300, "test_subset": 300, "epochs": 3, "lesson": "17"},
    "densenet": {"resize": 32, "subset": 500, "test_subset": 200, "epochs": 2, "lesson": "09"},
    "resnext": {"resize": 28, "subset": 500, "test_subset": None, "epochs": 3, "lesson": "10"},
    "se_resnet": {"resize": 28, "subset": 500, "test_subset": None, "epochs": 3, "lesson": "11"},
    "mobilenet_v1": {"resize": 28, "subset": 500, "test_subset": None, "epochs": 3, "lesson": "12"},
    "mobilenet_v2": {"resize": 28, "subset": 500, "test_subset": None, "epochs": 3, "lesson": "12"},
    "shufflenet_v2": {"resize": 28, "subset": 1000, "test_subset": None, "epochs": 3, "lesson": "13"},
    "efficientnet_b0": {"resize": 28, "subset": 300, "test_subset": 300, "epochs": 3, "batch_size": 64,
                        "lesson": "14"},
    "regnet": {"resize": 28, "subset": 500, "test_subset": 300, "epochs": 3, "lesson": "15"},
    "convnext": {"resize": 32, "subset": 300, "test_subset": 200, "epochs": 3, "lesson": "16"},
}
"""Each fashion network's CPU setting, as its lesson trains it (images per class; None: all).

AlexNet and VGG are built with ``adaptive_pool=True`` there, as their lessons build them, so that
the smaller images fit. MobileNet v1 takes lesson 12's setting (the lesson trains v2); the
speedrun network lesson 17's.
"""

PLAIN = {"amp": False, "channels_last": False, "compile": False}
"""The path every other is measured against: eager float32, contiguous tensors."""


def setting(name: str, subset: int | None = None, epochs: int | None = None) -> dict:
    """The lesson's CPU setting of ``name``, with images per class and epochs capped when given."""
    if name not in LESSON_CPU:
        raise KeyError(f"no lesson CPU setting for {name!r}; known: {', '.join(LESSON_CPU)}")
    s = dict(LESSON_CPU[name])

    def cap(value, limit):
        return limit if value is None or (limit is not None and limit < value) else value

    s["subset"] = cap(s["subset"], subset)
    s["test_subset"] = cap(s["test_subset"], subset)
    s["epochs"] = min(s["epochs"], epochs or s["epochs"])
    return s


def _recipe(name: str, s: dict) -> Recipe:
    return Recipe.modern(name, resize=s["resize"], epochs=s["epochs"],
                         **({"batch_size": s["batch_size"]} if "batch_size" in s else {}))


def _trainer(name: str, s: dict, data: FashionMNIST, seed: int, **path) -> Trainer:
    net = models.build(name, **s.get("build", {}))
    return Trainer(net, data=data, recipe=_recipe(name, s), device="cpu", seed=seed, **path)


def _data(name: str, s: dict, seed: int) -> FashionMNIST:
    recipe = _recipe(name, s)
    return FashionMNIST(batch_size=recipe.batch_size, resize=s["resize"], device="cpu", augment=recipe.augment,
                        normalize=recipe.normalize, subset=s["subset"], test_subset=s["test_subset"], seed=seed)


def _warm_up(trainers: dict, batches: list) -> None:
    """A gentle learning rate (the weights stay sane over the timed steps), then two untimed
    steps each: oneDNN picks its kernels at the first steps."""
    for t in trainers.values():
        for group in t.optimizer.param_groups:
            group["lr"] = t.recipe.lr / 10
        for X, y in batches[:2]:
            t.train_step(X, y)


def _take_turns(turns: dict, rounds: int) -> tuple[dict, list[dict]]:
    """Run each side's ``turns[side]()`` once per round, in A B, B A order, so that a change in the
    machine's load hits both sides alike. Returns each side's total seconds and each round's."""
    total = {side: 0.0 for side in turns}
    per_round = []
    for r in range(rounds):
        took = {}
        for side in (list(turns) if r % 2 == 0 else list(turns)[::-1]):
            start = time.perf_counter()
            turns[side]()
            took[side] = time.perf_counter() - start
            total[side] += took[side]
        per_round.append(took)
    return total, per_round


def _steps(trainer: Trainer, batches: list):
    """One turn: a training step on each of ``batches``."""
    def turn():
        for X, y in batches:
            trainer.train_step(X, y)
    return turn


def throughput(name: str, rounds: int = 3, steps: int = 5, subset: int | None = None, seed: int = 0,
               turn_seconds: float = 2.0, amp: bool | None = None) -> dict:
    """Examples/s of plain float32 and of the chosen path, taking turns on the same batches.

    A turn is ``steps`` training steps, or more for a small network: as many as float32 needs for
    ``turn_seconds``, so that a busy machine's time slices do not decide the ratio. ``amp=True``
    measures the bfloat16 path even for a network whose registration keeps float32 on a CPU
    (see :func:`d2lcnn.train.compute_path`).
    """
    s = setting(name, subset)
    with no_quick_mode():
        data = _data(name, s, seed)
        sides = {"float32": _trainer(name, s, data, seed, **PLAIN), "chosen": _trainer(name, s, data, seed, amp=amp)}
    available = list(data.train_batches(epoch=0))
    _warm_up(sides, available)
    start = time.perf_counter()
    sides["float32"].train_step(*available[0])
    step_seconds = time.perf_counter() - start
    steps = max(steps, min(200, math.ceil(turn_seconds / max(step_seconds, 1e-6))))
    batches = [available[i % len(available)] for i in range(steps)]
    seconds, rounds_took = _take_turns({side: _steps(t, batches) for side, t in sides.items()}, rounds)
    per_round = [round(took["float32"] / took["chosen"], 3) for took in rounds_took]
    examples = rounds * sum(len(y) for _, y in batches)
    rate = {side: examples / seconds[side] for side in sides}
    return {"float32_per_s": round(rate["float32"], 1), "chosen_per_s": round(rate["chosen"], 1),
            "ratio": round(rate["chosen"] / rate["float32"], 3), "ratio_per_round": per_round,
            "path": str(sides["chosen"].path), "batch_size": len(batches[0][1]), "steps": steps, "rounds": rounds}


def accuracy(name: str, subset: int | None = None, epochs: int | None = None, seed: int = 0,
             amp: bool | None = None) -> dict:
    """Test accuracy after the lesson's CPU-setting run on plain float32 and on the chosen path
    (with ``amp=True``: the bfloat16 path, whatever the network's registration says)."""
    s = setting(name, subset, epochs)
    out = {"subset": s["subset"], "test_subset": s["test_subset"], "epochs": s["epochs"]}
    for side, path in (("float32", PLAIN), ("chosen", {"amp": amp})):
        with no_quick_mode(), contextlib.redirect_stderr(io.StringIO()):
            trainer = _trainer(name, s, _data(name, s, seed), seed, **path)
            trainer.fit()
        last = trainer.history[-1]
        out[f"{side}_test_acc"] = last["test_acc"]
        out[f"{side}_fit_seconds"] = round(sum(r["seconds"] for r in trainer.history), 1)
    out["difference"] = round(out["chosen_test_acc"] - out["float32_test_acc"], 4)
    return out


def optimizer_update(name: str, rounds: int = 3, updates: int = 10, steps: int = 5, subset: int | None = None,
                     seed: int = 0) -> dict:
    """Milliseconds per SGD update of network ``name``, built as its lesson builds it: PyTorch's
    default SGD (on a CPU a loop of small operations over the parameter tensors) against the
    Trainer's fused one (:func:`d2lcnn.recipe.make_optimizer`), taking turns on the same gradients.
    Then what that is worth in a whole training step: two Trainers on the chosen compute path and
    the lesson's CPU setting, one with each optimizer, take turns on the same ``steps`` batches
    (``steps=0`` skips it; ``subset`` caps the images per class)."""
    s = setting(name, subset)
    recipe = _recipe(name, s)
    torch.manual_seed(seed)
    sides = {}
    for side in ("default", "fused"):
        net = models.build(name, **s.get("build", {}))
        for p in net.parameters():
            p.grad = torch.randn_like(p) * 1e-3
        sides[side] = make_optimizer(net, recipe, fused=side == "fused")
        sides[side].step()                      # the first update makes the momentum buffers
    def updating(optimizer):
        def turn():
            for _ in range(updates):
                optimizer.step()
        return turn

    seconds, _ = _take_turns({side: updating(o) for side, o in sides.items()}, rounds)
    ms = {side: 1000 * seconds[side] / (rounds * updates) for side in sides}
    row = {"model": name, "parameters": sum(p.numel() for p in net.parameters()),
           "default_ms": round(ms["default"], 2), "fused_ms": round(ms["fused"], 2),
           "ratio": round(ms["default"] / ms["fused"], 2),
           "fused": all(g["fused"] for g in sides["fused"].param_groups)}
    if steps:
        row.update(_step_with_each_optimizer(name, s, rounds, steps, seed))
    return row


def _step_with_each_optimizer(name: str, s: dict, rounds: int, steps: int, seed: int) -> dict:
    """Milliseconds per training step with PyTorch's default SGD and with the fused one, taking turns."""
    with no_quick_mode(), contextlib.redirect_stderr(io.StringIO()):
        data = _data(name, s, seed)
        trainers = {side: _trainer(name, s, data, seed) for side in ("default", "fused")}
    trainers["default"].optimizer = make_optimizer(trainers["default"].model, trainers["default"].recipe, fused=False)
    batches = list(data.train_batches(epoch=0))[:steps]
    _warm_up(trainers, batches)
    seconds, rounds_took = _take_turns({side: _steps(t, batches) for side, t in trainers.items()}, rounds)
    per_round = [round(took["default"] / took["fused"], 3) for took in rounds_took]
    ms = {side: 1000 * seconds[side] / (rounds * len(batches)) for side in trainers}
    return {"step_default_ms": round(ms["default"], 1), "step_fused_ms": round(ms["fused"], 1),
            "step_ratio": round(ms["default"] / ms["fused"], 3), "step_ratio_per_round": per_round,
            "step_path": str(trainers["fused"].path),
            "step_batch_size": len(batches[0][1])}


def optimizer_markdown(rows: list[dict]) -> str:
    """The optimizer measurement as a Markdown table."""
    lines = ["| network | parameters | PyTorch's default SGD, ms/update | fused, ms/update | speed-up |"
             " training step, default SGD | training step, fused | speed-up |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        step = (f"{r['step_default_ms']:,.1f} ms | {r['step_fused_ms']:,.1f} ms | {r['step_ratio']:.2f}x"
                if "step_ratio" in r else "- | - | -")
        lines.append(f"| {r['model']} | {r['parameters']:,} | {r['default_ms']:.2f} | {r['fused_ms']:.2f}"
                     f"{'' if r['fused'] else ' (not fused: this torch has no fused SGD here)'} | {r['ratio']:.1f}x | {step} |")
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> dict:
    """Median and lowest speed ratio, and the largest accuracy difference either way, over the networks."""
    ratios = [r["ratio"] for r in rows]
    gaps = [abs(r["accuracy"]["difference"]) for r in rows if r.get("accuracy")]
    return {"networks": len(rows), "median_ratio": round(statistics.median(ratios), 3) if ratios else None,
            "lowest_ratio": min(ratios, default=None), "accuracy_networks": len(gaps),
            "largest_accuracy_difference": max(gaps, default=None)}


def machine() -> dict:
    """What the numbers depend on: CPU, its bfloat16 instructions, threads, torch, the load now."""
    from .runtime import native_bf16

    return {"cpu_bf16": native_bf16(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "load": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
            else None}


def _rate(per_s: float) -> str:
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.1f}"


def markdown(result: dict) -> str:
    """The results as the Markdown table the README shows."""
    lines = ["| network | lesson CPU setting | chosen path | float32 examples/s | chosen examples/s | speed-up |"
             " test acc float32 | test acc chosen |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        s, a = r["setting"], r.get("accuracy")
        where = f"{s['resize']}px, {s['subset'] or 'all'}/class, {s['epochs']} ep"
        path = r["path"].split(": ", 1)[-1]
        accs = (f"{a['float32_test_acc']:.3f} | {a['chosen_test_acc']:.3f}"
                + (f" ({a['subset']}/class, {a['epochs']} ep)" if (a["subset"], a["epochs"]) != (s["subset"], s["epochs"])
                   else "")) if a else "- | -"
        lines.append(f"| {r['model']} | {where} | {path} | {_rate(r['float32_per_s'])} | {_rate(r['chosen_per_s'])} | "
                     f"{r['ratio']:.2f}x | {accs} |")
    m = result["summary"]
    lines.append("")
    gap = m["largest_accuracy_difference"]
    lines.append(f"Median speed-up {m['median_ratio']:.2f}x, lowest {m['lowest_ratio']:.2f}x over {m['networks']} "
                 f"networks" + (f"; test accuracy of the two paths within {gap * 100:.1f} points on the "
                                f"{m['accuracy_networks']} networks trained both ways" if gap is not None else "") + ".")
    return "\n".join(lines) + "\n"
