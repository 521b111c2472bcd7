"""Look at a network's shapes: the layer table, model comparisons, and why an input does not fit.

Everything here runs one forward pass (in eval mode, without gradients) with hooks on the
*leaf* layers, the ones with no sub-layers, and restores the model afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class ShapeMismatchError(ValueError):
    """An input that does not fit a network; the message names the layer where shapes broke."""


def count_params(model: nn.Module) -> int:
    """The number of parameters (weights and biases) of a module."""
    return sum(p.numel() for p in model.parameters())


def _human(n: float) -> str:
    """1234 -> '1.2K', 5_000_000 -> '5.0M': short, deterministic, for FLOPs."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:,.1f}{unit}"
    return f"{int(n)}"


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name or "(model)", m) for name, m in model.named_modules() if not list(m.children())]


def _as_input(model: nn.Module, shape_or_tensor) -> torch.Tensor:
    if isinstance(shape_or_tensor, torch.Tensor):
        return shape_or_tensor
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros(tuple(shape_or_tensor), device=device)


def _explain(name: str, layer: nn.Module, x: torch.Tensor | None, error: Exception) -> str:
    """Why ``x`` does not fit ``layer``, in words."""
    got = tuple(x.shape) if x is not None else "?"
    head = f"The input does not fit layer '{name}' ({layer}): it received shape {got}"
    if isinstance(layer, nn.Linear) and x is not None:
        return (f"{head}, but it wants {layer.in_features} features in the last dimension. The maps "
                f"that reach it are {'bigger' if x.shape[-1] > layer.in_features else 'smaller'} than "
                "the layer was built for: use the input size the network was designed for, or "
                f"change in_features to {x.shape[-1]}.")
    if isinstance(layer, (nn.Conv2d, nn.BatchNorm2d)) and x is not None and x.dim() == 4:
        want = layer.in_channels if isinstance(layer, nn.Conv2d) else layer.num_features
        if x.shape[1] != want:
            return (f"{head}, but it wants {want} channels (dimension 1), not {x.shape[1]}. "
                    "Check the input's channels (Fashion-MNIST has 1, ImageNet 3) or the previous "
                    "layer's out_channels.")
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and x is not None and x.dim() == 4:
        k = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * 2
        p = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,) * 2
        if isinstance(p, tuple) and all(isinstance(v, int) for v in p):
            if x.shape[2] + 2 * p[0] < k[0] or x.shape[3] + 2 * p[1] < k[1]:
                return (f"{head}: its {x.shape[2]}x{x.shape[3]} maps (padded by {p[0]}) are smaller "
                        f"than its {k[0]}x{k[1]} window. Earlier layers shrank the image too much: "
                        "use a larger input (resize) or fewer downsampling layers.")
    return f"{head}. PyTorch says: {error}"


@contextlib.contextmanager
def _traced(model: nn.Module):
    """Eval mode, no gradients, hooks on every leaf; the model is restored however it ends.

    Yields a dict that collects, per call of a leaf, its name, output shape and FLOPs, and
    remembers which leaf was running when an error was raised.
    """
    state = {"rows": [], "running": []}
    counter = FlopCounterMode(display=False)

    def before(name):
        def hook(module, inputs):
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            state["running"].append((name, module, first, counter.get_total_flops()))
        return hook

    def after(name):
        def hook(module, inputs, output):
            _, _, _, flops_before = state["running"].pop()
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            state["rows"].append({"name": name, "type": type(module).__name__, "output_shape": shape,
                                  "params": count_params(module),
                                  "flops": counter.get_total_flops() - flops_before})
        return hook

    handles = []
    was_training = model.training
    try:
        for name, module in _leaves(model):
            handles.append(module.register_forward_pre_hook(before(name)))
            handles.append(module.register_forward_hook(after(name)))
        model.eval()
        with torch.no_grad(), counter:
            yield state
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def trace(model: nn.Module, input_shape) -> tuple[list[dict], torch.Tensor]:
    """Run one input through ``model``; per-leaf rows and the output, or ShapeMismatchError."""
    x = _as_input(model, input_shape)
    with _traced(model) as state:
        try:
            out = model(x)
        except (RuntimeError, ValueError) as err:
            if not state["running"]:
                raise
            name, layer, arrived, _ = state["running"][-1]
            raise ShapeMismatchError(_explain(name, layer, arrived, err)) from err
    return state["rows"], out


def check_input(model: nn.Module, input_shape) -> tuple[int, ...]:
    """The output shape for ``input_shape``; ShapeMismatchError naming the layer when it does not fit."""
    return tuple(trace(model, input_shape)[1].shape)


@dataclass
class LayerTable:
    """Every leaf layer's output shape, parameters and FLOPs, with totals; prints as text."""

    rows: list[dict]
    input_shape: tuple[int, ...]
    total_params: int
    total_flops: int

    def __str__(self) -> str:
        w = max([len("layer")] + [len(r["name"]) for r in self.rows])
        t = max([len("type")] + [len(r["type"]) for r in self.rows])
        s = max([len("output shape")] + [len(str(r["output_shape"])) for r in self.rows])
        lines = [f"{'layer':<{w}}  {'type':<{t}}  {'output shape':<{s}}  {'params':>12}  {'FLOPs':>9}",
                 f"{'-' * w}  {'-' * t}  {'-' * s}  {'-' * 12}  {'-' * 9}"]
        for r in self.rows:
            lines.append(f"{r['name']:<{w}}  {r['type']:<{t}}  {str(r['output_shape']):<{s}}  "
                         f"{r['params']:>12,}  {_human(r['flops']):>9}")
        lines.append(f"{'total':<{w}}  {'':<{t}}  {'':<{s}}  {self.total_params:>12,}  "
                     f"{_human(self.total_flops):>9}")
        lines.append(f"input {self.input_shape}; FLOPs count a multiply-add as two")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def layer_table(model: nn.Module, input_shape: Sequence[int] | torch.Tensor) -> LayerTable:
    """The layer table of ``model`` for one input of ``input_shape`` (e.g. ``(1, 1, 28, 28)``).

    Raises ShapeMismatchError, naming the layer, when the input does not fit.
    """
    rows, _ = trace(model, input_shape)
    shape = tuple(input_shape.shape) if isinstance(input_shape, torch.Tensor) else tuple(input_shape)
    return LayerTable(rows, shape, count_params(model), sum(r["flops"] for r in rows))


@dataclass
class Comparison:
    """Several networks side by side: parameters, FLOPs, input and output shapes."""

    rows: list[dict]

    def __str__(self) -> str:
        w = max([len("model")] + [len(r["model"]) for r in self.rows])
        lines = [f"{'model':<{w}}  {'params':>13}  {'FLOPs':>9}  {'input':<18}  output",
                 f"{'-' * w}  {'-' * 13}  {'-' * 9}  {'-' * 18}  {'-' * 10}"]
        for r in self.rows:
            lines.append(f"{r['model']:<{w}}  {r['params']:>13,}  {_human(r['flops']):>9}  "
                         f"{str(r['input_shape']):<18}  {r['output_shape']}")
        lines.append("FLOPs for one image; a multiply-add counts as two")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def compare(networks: Mapping[str, nn.Module | tuple[nn.Module, Sequence[int]]]) -> Comparison:
    """Compare networks: ``{"LeNet": net, "AlexNet": (alexnet, (1, 1, 224, 224))}``.

    A network built by ``models.build`` knows its input shape; give others as (net, shape).
    """
    from . import models

    rows = []
    for label, item in networks.items():
        net, shape = item if isinstance(item, tuple) else (item, None)
        if shape is None:
            tag = getattr(net, "d2lcnn_name", None)
            if tag is None:
                raise ValueError(f"give the input shape of {label!r}: ({label!r}: (net, (1, 1, 28, 28)))")
            shape = models.spec(*tag.split("/")).input_shape
        table = layer_table(net, shape)
        rows.append({"model": label, "params": table.total_params, "flops": table.total_flops,
                     "input_shape": tuple(shape), "output_shape": table.rows[-1]["output_shape"]})
    return Comparison(rows)
