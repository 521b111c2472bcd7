"""Receptive fields: how much of the input one unit of a layer sees, computed from the architecture.

Along each axis, a layer with kernel k, stride s, padding p and dilation d (a Conv2d, MaxPool2d
or AvgPool2d; an adaptive pool as the kernel and stride it amounts to) maps the field of its
input's units to that of its output's:

    rf_out    = rf_in + (k - 1) * d * jump_in        pixels of the input one unit sees
    jump_out  = jump_in * s                          input pixels between neighbouring units
    start_out = start_in + ((k - 1) * d / 2 - p) * jump_in    centre of the first unit

starting from rf = 1, jump = 1, start = 0 at the input. Everything else (ReLU, BatchNorm,
dropout, a 1x1 convolution's field is its input's) changes nothing.

We follow the tensors of a real forward pass (every torch operation is watched, not only the
modules), so nested ``Sequential``, branches and skips need no special case. One rule covers
every merge: a tensor computed from several (``torch.cat`` of Inception branches or DenseNet's
concatenations, ``y + shortcut(x)`` in a residual block) gets the field of the input with the
largest receptive field among those of its own spatial size: the widest branch, the residual
block's main path. Inputs broadcast from a smaller map (SENet's per-channel weights) do not
count.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from torch import nn
from torch.overrides import TorchFunctionMode

from .capture import OutOfRange, VizError, check_layer, device_of, evaluating, layer_menu, require_conv_maps
from .draw import images_of, panel


@dataclass(frozen=True)
class Field:
    """Receptive field of a tensor's units, per axis (height, width): size, spacing, first centre."""

    rf: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]

    def through(self, layer: nn.Module, size_in: tuple[int, int]) -> "Field":
        """The field after ``layer`` (unchanged for a layer that does not mix neighbours)."""
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k = _pair(layer.kernel_size)
            s = _pair(layer.stride or layer.kernel_size)
            d = _pair(getattr(layer, "dilation", 1))
            if layer.padding == "same":
                p = tuple((ki - 1) * di / 2 for ki, di in zip(k, d))
            else:
                p = (0, 0) if layer.padding == "valid" else _pair(layer.padding)
        elif isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            out = tuple(o or n for o, n in zip(_pair(layer.output_size), size_in))
            s = tuple(n // o for n, o in zip(size_in, out))
            k = tuple(n - (o - 1) * si for n, o, si in zip(size_in, out, s))
            p, d = (0, 0), (1, 1)
        else:
            return self
        return Field(rf=tuple(r + (ki - 1) * di * j for r, ki, di, j in zip(self.rf, k, d, self.jump)),
                     jump=tuple(j * si for j, si in zip(self.jump, s)),
                     start=tuple(st + ((ki - 1) * di / 2 - pi) * j
                                 for st, ki, di, pi, j in zip(self.start, k, d, p, self.jump)))


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _tensors(value):
    """The tensors in a (nested) argument list."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)


class _Tracer(TorchFunctionMode):
    """Gives every tensor computed from traced tensors a field (see the module's merge rule)."""

    def __init__(self, fields: dict[int, Field], keep: list):
        super().__init__()
        self.fields, self.keep = fields, keep

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        sources = [t for t in _tensors((args, kwargs)) if id(t) in self.fields]
        for t in _tensors(out):
            if not sources or t.dim() < 2:
                continue
            same = [s for s in sources if s.dim() >= 2 and s.shape[-2:] == t.shape[-2:]] or sources
            self.fields[id(t)] = max((self.fields[id(s)] for s in same), key=lambda f: max(f.rf))
            self.keep.append(t)      # alive until the pass ends, so that no other tensor gets its id
        return out


def receptive_fields(model: nn.Module, input_shape) -> list[dict]:
    """Per module with an image-shaped output, in the order they finish during a forward pass.

    Each row: ``name``, ``type``, ``size`` (the output's (H, W)), ``rf`` (receptive field in
    input pixels, the larger of height and width), ``jump`` (input pixels between neighbouring
    units) and ``start`` (centre of unit (0, 0), in input pixels), and per axis ``rf_hw``,
    ``jump_hw``, ``start_hw``, and ``tensor``, which tells the outputs apart within this pass (a
    block's row has its last layer's). A module that runs twice appears twice.
    """
    fields: dict[int, Field] = {}
    keep: list[torch.Tensor] = []
    rows: list[dict] = []
    x = torch.zeros(tuple(input_shape), device=device_of(model))
    fields[id(x)] = Field((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))

    def hook(name):
        def record(module, inputs, output):
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                return
            first = next(_tensors(inputs), None)
            field = fields.get(id(output))
            if not list(module.children()) and first is not None and id(first) in fields and first.dim() == 4:
                field = fields[id(first)].through(module, tuple(first.shape[-2:]))
            if field is None:
                return
            fields[id(output)] = field
            keep.append(output)
            rows.append({"name": name, "type": type(module).__name__, "size": tuple(output.shape[-2:]),
                         "rf": max(field.rf), "jump": max(field.jump), "start": min(field.start),
                         "rf_hw": field.rf, "jump_hw": field.jump, "start_hw": field.start,
                         "tensor": id(output)})
        return record

    handles = []
    try:
        handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
        with evaluating(model), torch.no_grad(), _Tracer(fields, keep):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return rows


def field_box(row: dict, unit: tuple[int, int], image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """(top, left, bottom, right) in pixel-edge coordinates of ``unit``'s receptive field,
    clipped to an image of ``image_size`` (H, W): a unit near the border sees padding there."""
    edges = []
    for axis, (index, size) in enumerate(zip(unit, image_size)):
        centre = row["start_hw"][axis] + index * row["jump_hw"][axis]
        half = (row["rf_hw"][axis] - 1) / 2
        edges.append((max(centre - half, 0) - 0.5, min(centre + half, size - 1) + 0.5))
    (top, bottom), (left, right) = edges
    return top, left, bottom, right


def check_unit(unit, layer: str, size: tuple[int, int]) -> tuple[int, int]:
    """``unit`` (row, column) if ``layer``'s output of ``size`` (H, W) has it; None: the centre unit."""
    height, width = size
    centre = (height // 2, width // 2)
    if unit is None:
        return centre
    there = (f"layer {layer!r} outputs {height}x{width} units, so a unit is (row, column) with row in "
             f"0..{height - 1} and column in 0..{width - 1}")
    fix = f"Pick a unit inside, or leave unit out for the centre unit {centre}."
    try:
        if not isinstance(unit, (tuple, list)) or len(unit) != 2 or any(isinstance(v, bool) for v in unit):
            raise TypeError
        i, j = (operator.index(v) for v in unit)
    except TypeError:
        raise VizError(f"unit must be a (row, column) pair of whole numbers, got {unit!r}: {there}. {fix}") from None
    if not (0 <= i < height and 0 <= j < width):
        raise OutOfRange(f"unit={unit!r} is out of range: {there}. {fix}")
    return i, j


def show_receptive_field(model: nn.Module, image: torch.Tensor, layer: str, unit: tuple[int, int] | None = None,
                         rows: list[dict] | None = None):
    """The image (1, H, W) with the receptive field of one unit of ``layer`` drawn on it.

    ``unit`` is (row, column) in the layer's output; default: the centre unit. The rectangle
    is clipped to the image. ``rows`` (from :func:`receptive_fields`) saves recomputing them.
    """
    rows = rows if rows is not None else receptive_fields(model, (1, *image.shape))
    by_name = {r["name"]: r for r in rows}
    offered = require_conv_maps(model, list(by_name), "show_receptive_field")
    check_layer(model, layer, offered, "a layer with image-shaped (N, C, H, W) output")
    r = by_name[layer]
    height, width = r["size"]
    i, j = check_unit(unit, layer, (height, width))
    top, left, bottom, right = field_box(r, (i, j), tuple(image.shape[-2:]))
    cy = r["start_hw"][0] + i * r["jump_hw"][0]
    cx = r["start_hw"][1] + j * r["jump_hw"][1]
    fig, ax = plt.subplots(figsize=(4.2, 4.4))
    ax.imshow(image[0].float().cpu().numpy(), cmap="gray")
    ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, color="red", linewidth=2))
    ax.plot([cx], [cy], "r+", markersize=10)
    rf = "x".join(f"{v:g}" for v in r["rf_hw"])
    jump = "x".join(f"{v:g}" for v in r["jump_hw"]) if len(set(r["jump_hw"])) > 1 else f"{r['jump']:g}"
    ax.set_title(f"{layer} ({r['type']}), unit ({i}, {j}) of {height}x{width}\n"
                 f"receptive field {rf}, stride {jump}", fontsize=9)
    ax.set_xlim(-0.5, image.shape[-1] - 0.5)
    ax.set_ylim(image.shape[-2] - 0.5, -0.5)
    ax.axis("off")
    fig.tight_layout()
    return fig


def receptive_field(model: nn.Module, data, layer: str | None = None, n_images: int | None = None,
                    unit: tuple[int, int] | None = None):
    """Widget: pick a layer, a unit (row, column) and an image; see the part of the image that unit sees.

    ``layer`` and ``unit`` are where it starts (default: the first layer, its centre unit). The
    layer menu labels each layer with its type and offers each output once (a block whose output
    is its last layer's appears as that layer), as :func:`feature_maps` does;
    ``n_images``: how many test images to offer (default 8, or all when fewer).
    """
    import ipywidgets as widgets

    images, _ = images_of(data, n_images, default=8)
    rows = receptive_fields(model, (1, *images[0].shape))
    names = require_conv_maps(model, list(dict.fromkeys(r["name"] for r in rows)), "receptive_field")
    sizes = {r["name"]: r["size"] for r in rows}
    layer = names[0] if layer is None else check_layer(model, layer, names,
                                                       "a layer with image-shaped (N, C, H, W) output")
    first = {}                            # output tensor -> the first layer that gave it
    for r in rows:
        first.setdefault(r["tensor"], r["name"])
    offered = list(dict.fromkeys(first[r["tensor"]] for r in rows))    # a block is its last layer
    layer = first[next(r["tensor"] for r in rows if r["name"] == layer)]
    i, j = check_unit(unit, layer, sizes[layer])
    pick = widgets.Dropdown(options=layer_menu(model, offered), value=layer, description="layer")
    row = widgets.IntSlider(i, 0, sizes[layer][0] - 1, description="row", continuous_update=False)
    col = widgets.IntSlider(j, 0, sizes[layer][1] - 1, description="column", continuous_update=False)
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)

    def on_layer(change):                 # the new layer's centre unit
        height, width = sizes[change["new"]]
        for slider, size in ((row, height), (col, width)):
            slider.max = max(size - 1, slider.value)       # keep max >= value while moving both
            slider.value = size // 2
            slider.max = size - 1

    return panel("receptive-field", {"layer": pick, "row": row, "col": col, "image": image},
                 lambda: show_receptive_field(model, images[image.value], pick.value, (row.value, col.value), rows),
                 linked={"layer": on_layer})
