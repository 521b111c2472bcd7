"""Look at a network's shapes: the layer table, model comparisons, and why an input does not fit.

Everything here runs one forward pass (in eval mode, without gradients) with hooks on the
network's layers, and restores the model afterwards (its mode, and no hook left behind). By
default a table has one row per *leaf* layer, the ones with no sub-layers (``Conv2d``, ``ReLU``,
...); ``depth=1`` gives one row per top-level block instead (GoogLeNet's stages b1..b5).

FLOPs are counted by PyTorch's ``torch.utils.flop_counter.FlopCounterMode``: convolutions and
matrix products, where a multiply-add counts as two FLOPs (activations, pooling, additions and
BatchNorm are not counted; they are a small share). A model on the "meta" device is traced
without computing anything, which makes even 224x224 ImageNet networks quick to inspect.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ShapeMismatchError", "LayerTable", "Comparison", "count_params", "layer_table", "describe",
           "check_input", "explain", "compare", "trace"]


class ShapeMismatchError(ValueError):
    """An input that does not fit a network; the message names the layer where shapes broke.

    ``layer`` is that layer's name (its place in the model, e.g. "features.3"), ``module`` the
    layer itself and ``shape`` the shape that arrived there.
    """

    def __init__(self, message: str, layer: str | None = None, module: nn.Module | None = None,
                 shape: tuple[int, ...] | None = None):
        super().__init__(message)
        self.layer, self.module, self.shape = layer, module, shape


def count_params(model: nn.Module) -> int:
    """The number of parameters (weights and biases) of a module."""
    return sum(p.numel() for p in model.parameters())


def _human(n: float) -> str:
    """1234 -> '1.2K', 5_000_000 -> '5.0M': short, deterministic, for FLOPs."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:,.1f}{unit}"
    return f"{int(n)}"


def _depth(name: str) -> int:
    return 0 if name == "" else name.count(".") + 1


def _rows_for(model: nn.Module, depth: int | None) -> set[str]:
    """The names of the modules that get a row: the leaves, or the blocks ``depth`` levels down
    (and any leaf above that level, so that every layer is inside exactly one row)."""
    chosen = set()
    for name, module in model.named_modules():
        leaf = not list(module.children())
        if (depth is None and leaf) or (depth is not None and (_depth(name) == depth or (leaf and _depth(name) < depth))):
            chosen.add(name)
    return chosen


def _registered_shape(model: nn.Module) -> tuple[int, ...] | None:
    """The input shape of a network built by ``models.build`` (it carries its registry name)."""
    tag = getattr(model, "d2lcnn_name", None)
    if tag is None:
        return None
    from . import models

    try:
        return models.spec(*tag.split("/")).input_shape
    except KeyError:
        return None


def _as_input(model: nn.Module, shape_or_tensor) -> torch.Tensor:
    if isinstance(shape_or_tensor, torch.Tensor):
        return shape_or_tensor
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros(tuple(shape_or_tensor), device=device)


def _pair(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _channels(n: int) -> str:
    return f"{n} channel" if n == 1 else f"{n} channels"


def _spatial_dims(layer: nn.Module) -> int:
    """2 for Conv2d or MaxPool2d, 1 for Conv1d, 3 for AvgPool3d."""
    if isinstance(layer, nn.modules.conv._ConvNd):
        return len(layer.kernel_size)
    name = type(layer).__name__
    return int(name[-2]) if name[-1] == "d" and name[-2].isdigit() else 2


def _explain(name: str, layer: nn.Module, x: torch.Tensor | None, error: Exception,
             built_for: tuple[int, ...] | None = None) -> str:
    """Why ``x`` does not fit ``layer``, in words."""
    got = tuple(x.shape) if x is not None else "?"
    leaf = not list(layer.children())
    what = str(layer) if leaf else type(layer).__name__
    head = f"The input does not fit layer '{name}' ({what}): it received shape {got}"
    tail = f" The network was built for inputs of shape {built_for}." if built_for else ""
    if isinstance(x, torch.Tensor):
        if isinstance(layer, nn.Linear) and x.dim() >= 1 and x.shape[-1] != layer.in_features:
            return (f"{head}, but it wants {layer.in_features} features in the last dimension. The maps "
                    f"that reach it are {'bigger' if x.shape[-1] > layer.in_features else 'smaller'} than "
                    "the layer was built for: use the input size the network was designed for, or "
                    f"change in_features to {x.shape[-1]}.{tail}")
        if isinstance(layer, nn.modules.conv._ConvNd):
            n = len(layer.kernel_size)
            if x.dim() not in (n + 1, n + 2):
                return (f"{head}, a {x.dim()}-dimensional tensor, but it wants {n + 2} dimensions "
                        f"(batch, channels, {', '.join('HW'[:n] if n <= 2 else 'DHW')}). Did a Flatten come too "
                        "early, or is the batch dimension missing (x.unsqueeze(0))?")
            channels = x.shape[1] if x.dim() == n + 2 else x.shape[0]
            if channels != layer.in_channels:
                return (f"{head}, but it wants {_channels(layer.in_channels)} (dimension 1), not {channels}. "
                        "Check the input's channels (Fashion-MNIST has 1, ImageNet 3) or the previous "
                        f"layer's out_channels.{tail}")
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and x.dim() >= 2 and x.shape[1] != layer.num_features:
            return (f"{head}, but it wants {_channels(layer.num_features)} (num_features, dimension 1), not "
                    f"{x.shape[1]}. BatchNorm's num_features must equal the previous layer's out_channels.")
        windowed = (nn.modules.conv._ConvNd, nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)
        if isinstance(layer, windowed):
            n = _spatial_dims(layer)
            size = tuple(x.shape[-n:]) if x.dim() > n else None
            k, d = _pair(layer.kernel_size, n), _pair(getattr(layer, "dilation", 1), n)
            p = (0,) * n if layer.padding == "valid" else _pair(layer.padding, n)
            if size is not None and all(isinstance(v, int) for v in p):
                span = tuple(di * (ki - 1) + 1 for di, ki in zip(d, k))
                if any(si + 2 * pi < wi for si, pi, wi in zip(size, p, span)):
                    return (f"{head}: its {'x'.join(map(str, size))} maps (padded by {p[0]}) are smaller than "
                            f"its {'x'.join(map(str, span))} window. Earlier layers shrank the image too much: "
                            f"use a larger input (resize) or fewer downsampling layers.{tail}")
    return f"{head}. PyTorch says: {error}{tail}"


@contextlib.contextmanager
def _traced(model: nn.Module, depth: int | None = None):
    """Eval mode, no gradients, hooks on every module; the model is restored however it ends.

    Yields a dict that collects, per call of a chosen module (the leaves, or the blocks at
    ``depth``), its name, output shape and FLOPs, and keeps the stack of running modules, whose
    top is the innermost layer that was running when an error was raised.
    """
    state = {"rows": [], "running": [], "outputs": []}
    counter = FlopCounterMode(display=False)
    chosen = _rows_for(model, depth)

    def before(name):
        def hook(module, inputs):
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            state["running"].append((name or "(model)", module, first, counter.get_total_flops()))
        return hook

    def after(name):
        def hook(module, inputs, output):
            label, _, _, flops_before = state["running"].pop()
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else None
            state["outputs"].append((label, type(module).__name__, shape))
            if name in chosen:
                state["rows"].append({"name": label, "type": type(module).__name__, "output_shape": shape,
                                      "params": count_params(module),
                                      "flops": counter.get_total_flops() - flops_before})
        return hook

    handles = []
    was_training = {m: m.training for m in model.modules()}
    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(before(name)))
            handles.append(module.register_forward_hook(after(name)))
        model.eval()
        with torch.no_grad(), counter:
            yield state
        state["total_flops"] = counter.get_total_flops()
    finally:
        for h in handles:
            h.remove()
        for m, mode in was_training.items():
            m.training = mode


def _input_problem(model: nn.Module, x: torch.Tensor) -> ShapeMismatchError | None:
    """What is wrong with the input itself, before any layer: its type, or no batch dimension."""
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))), None)
    if first is None:
        return None
    name, layer = first
    weight_dtype = layer.weight.dtype
    if not x.is_floating_point() and weight_dtype.is_floating_point:
        return ShapeMismatchError(
            f"The input is a {str(x.dtype).replace('torch.', '')} tensor, but the network computes in "
            f"{str(weight_dtype).replace('torch.', '')} (its first layer '{name}' is {layer}). Convert the "
            "images first: x.float() / 255 for 0..255 pixels (FashionMNIST.to_float does it).",
            name, layer, tuple(x.shape))
    if isinstance(layer, nn.modules.conv._ConvNd) and x.dim() == len(layer.kernel_size) + 1:
        return ShapeMismatchError(
            f"The input has shape {tuple(x.shape)}: {x.dim()} dimensions, but the network's first layer '{name}' "
            f"({layer}) wants {x.dim() + 1}, (batch, channels, height, width). The batch dimension is missing: "
            f"use x.unsqueeze(0), shape {(1, *x.shape)}, for one image.", name, layer, tuple(x.shape))
    return None


def _run(model: nn.Module, input_shape, depth: int | None = None) -> tuple[dict, torch.Tensor]:
    """One traced forward pass: the state of ``_traced`` (rows, total_flops, every module's
    output shape in the order they finished) and the output."""
    x = _as_input(model, input_shape)
    problem = _input_problem(model, x)
    if problem is not None:
        raise problem
    with _traced(model, depth) as state:
        try:
            out = model(x)
        except (RuntimeError, ValueError) as err:
            if not state["running"]:
                raise
            name, layer, arrived, _ = state["running"][-1]
            message = _explain(name, layer, arrived, err, _registered_shape(model))
            raise ShapeMismatchError(message, name, layer, tuple(arrived.shape) if arrived is not None else None) from err
    return state, out


def trace(model: nn.Module, input_shape, depth: int | None = None) -> tuple[list[dict], torch.Tensor]:
    """Run one input through ``model``; the rows (see ``layer_table``) and the output.

    Raises ShapeMismatchError, naming the innermost layer that was running, when it does not fit.
    """
    state, out = _run(model, input_shape, depth)
    return state["rows"], out


def check_input(model: nn.Module, input_shape) -> tuple[int, ...]:
    """The output shape for ``input_shape``; ShapeMismatchError naming the layer when it does not fit."""
    return tuple(trace(model, input_shape)[1].shape)


def explain(model: nn.Module, input_shape) -> str:
    """Does ``input_shape`` fit ``model``? One sentence: the output shape, or where and why not.

    >>> print(explain(models.build("lenet"), (1, 1, 32, 32)))   # doctest: +SKIP
    The input does not fit layer '7' (Linear(in_features=400, ...)): it received shape (1, 576), ...
    """
    shape = tuple(input_shape.shape) if isinstance(input_shape, torch.Tensor) else tuple(input_shape)
    try:
        out = check_input(model, input_shape)
    except ShapeMismatchError as err:
        return str(err)
    return f"An input of shape {shape} fits: the output has shape {out}."


@dataclass
class LayerTable:
    """Every layer's output shape, parameters and FLOPs, with totals; prints as text.

    ``rows`` is a list of dicts with keys ``name`` (the layer's place in the model, e.g.
    "features.3" or "b3.0.branch2.1"), ``type``, ``output_shape``, ``params`` and ``flops``.
    """

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


def layer_table(model: nn.Module, input_shape: Sequence[int] | torch.Tensor | None = None,
                depth: int | None = None) -> LayerTable:
    """The layer table of ``model`` for one input of ``input_shape`` (e.g. ``(1, 1, 28, 28)``).

    ``input_shape`` may be a tensor, or left out for a network built by ``models.build`` (it
    knows its input size). ``depth=None`` lists every leaf layer; ``depth=1`` one row per
    top-level block, ``depth=2`` one level further down, and so on. Totals are the whole
    model's: ``total_params == sum(p.numel() for p in model.parameters())``.

    Raises ShapeMismatchError, naming the layer, when the input does not fit.
    """
    if input_shape is None:
        input_shape = _registered_shape(model)
        if input_shape is None:
            raise ValueError("give the input shape, e.g. layer_table(net, (1, 1, 28, 28)); only networks "
                             "built by models.build know theirs")
    state, _ = _run(model, input_shape, depth)
    shape = tuple(input_shape.shape) if isinstance(input_shape, torch.Tensor) else tuple(input_shape)
    return LayerTable(state["rows"], shape, count_params(model), state["total_flops"])


def describe(spec, resize: int | None = None, build: dict | None = None) -> dict:
    """Name, configuration, parameters, FLOPs and input shape of one registered network.

    ``spec`` is its registration (``models.spec(name)``); ``resize`` an image size other than its
    own (a run at a reduced size: FLOPs grow with the pixels), ``build`` the builder's arguments
    such a run needed (AlexNet's ``adaptive_pool=True``). The network is built and traced on
    the "meta" device, so this allocates and computes nothing: ``python -m d2lcnn models``, the
    benchmark's table and the comparison lesson all describe networks with it.
    """
    shape = tuple(spec.input_shape[:2]) + (resize, resize) if resize else tuple(spec.input_shape)
    with torch.device("meta"):
        table = layer_table(spec.build(**(build or {})), shape)
    return {"name": spec.name, "config": spec.config, "params": table.total_params,
            "flops": table.total_flops, "input_shape": list(shape),
            "reference_params": spec.reference_params, "family": spec.family}


@dataclass
class Comparison:
    """Several networks side by side: parameters, FLOPs, input and output shapes."""

    rows: list[dict]

    def __str__(self) -> str:
        w = max([len("model")] + [len(r["model"]) for r in self.rows])
        c = max([len("last maps")] + [len(r["last_maps"]) for r in self.rows])
        lines = [f"{'model':<{w}}  {'params':>13}  {'FLOPs':>9}  {'input':<18}  {'last maps':<{c}}  output",
                 f"{'-' * w}  {'-' * 13}  {'-' * 9}  {'-' * 18}  {'-' * c}  {'-' * 10}"]
        for r in self.rows:
            lines.append(f"{r['model']:<{w}}  {r['params']:>13,}  {_human(r['flops']):>9}  "
                         f"{str(r['input_shape']):<18}  {r['last_maps']:<{c}}  {r['output_shape']}")
        lines.append("FLOPs for one image; a multiply-add counts as two")
        lines.append("last maps: channels x height x width of the last feature maps, before flattening or "
                     "global pooling")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def compare(networks: Mapping[str, nn.Module | tuple[nn.Module, Sequence[int]]]) -> Comparison:
    """Compare networks: ``{"LeNet": net, "AlexNet": (alexnet, (1, 1, 224, 224))}``.

    A network built by ``models.build`` knows its input shape; give others as (net, shape).
    Each row has the parameters, FLOPs, the input shape, the last feature maps ("256x5x5":
    what the classifier or the global pooling receives) and the output shape.
    """
    rows = []
    for label, item in networks.items():
        net, shape = item if isinstance(item, tuple) else (item, None)
        shape = shape if shape is not None else _registered_shape(net)
        if shape is None:
            raise ValueError(f"give the input shape of {label!r}: ({label!r}: (net, (1, 1, 28, 28)))")
        state, out = _run(net, shape)
        # Every module's output, blocks included (an Inception block's concatenation is not any
        # leaf's output), in the order they finished; global pooling is the head, not a map.
        maps = [s for _, kind, s in state["outputs"] if s and len(s) == 4 and not kind.startswith("Adaptive")]
        last_maps = "x".join(map(str, maps[-1][1:])) if maps else "-"
        rows.append({"model": label, "params": count_params(net), "flops": state["total_flops"],
                     "input_shape": tuple(shape), "last_maps": last_maps, "output_shape": tuple(out.shape)})
    return Comparison(rows)
