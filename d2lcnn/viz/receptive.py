"""Receptive fields: how much of the input one unit of a layer sees, computed from the architecture.

For a chain of layers, with kernel k, stride s, padding p and dilation d, each layer's output
unit sees ``rf_out = rf_in + (k - 1) * d * jump_in`` input pixels, neighbouring units are
``jump_out = jump_in * s`` pixels apart, and the first unit is centred at
``start_out = start_in + ((k - 1) * d / 2 - p) * jump_in`` (in input-pixel coordinates).
Layers that do not mix neighbouring pixels (ReLU, BatchNorm, 1x1 convolutions) change nothing.

We follow the tensors of a real forward pass, so branches and skips are handled by one rule:
when a tensor comes from something that is not a layer (``torch.cat`` of Inception branches,
``x + shortcut`` in a residual block), it gets the largest receptive field among the tensors
already seen with the same spatial size: the widest branch, the residual block's main path.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from torch import nn

from .capture import get_layer
from .draw import images_of, panel


@dataclass(frozen=True)
class Field:
    """Receptive field of a layer's units: size ``rf``, spacing ``jump``, first centre ``start``."""

    rf: float
    jump: float
    start: float


def _pair(v) -> tuple:
    return v if isinstance(v, tuple) else (v, v)


def _through(layer: nn.Module, field: Field, size_in: int) -> Field:
    """The field after ``layer`` (along one axis, the networks here are square)."""
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = _pair(layer.kernel_size)[0], _pair(layer.stride)[0], _pair(layer.padding)[0]
        d = _pair(getattr(layer, "dilation", 1))[0]
    elif isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = _pair(layer.output_size)[0] or size_in
        s = size_in // out
        k, p, d = size_in - (out - 1) * s, 0, 1
    else:
        return field
    return Field(rf=field.rf + (k - 1) * d * field.jump, jump=field.jump * s,
                 start=field.start + ((k - 1) * d / 2 - p) * field.jump)


def receptive_fields(model: nn.Module, input_shape) -> list[dict]:
    """Per module with an image-shaped output, in execution order: name, type, size, rf, jump, start."""
    fields: dict[int, Field] = {}
    seen: list[tuple[int, Field]] = []   # (spatial size, field) of every tensor so far
    rows = []
    param = next(model.parameters())
    x = torch.zeros(tuple(input_shape), device=param.device)
    fields[id(x)] = Field(1.0, 1.0, 0.0)
    seen.append((x.shape[-1], fields[id(x)]))
    keep = []   # keep outputs alive so that their ids stay unique during the pass

    def field_of(t: torch.Tensor) -> Field:
        if id(t) in fields:
            return fields[id(t)]
        same = [f for size, f in seen if size == t.shape[-1]]
        return max(same, key=lambda f: f.rf) if same else Field(float("inf"), 1.0, 0.0)

    def hook(name):
        def record(module, inputs, output):
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                return
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            if list(module.children()):        # a block: its output is some leaf's, or a merge
                field = field_of(output)
            else:
                field = _through(module, field_of(first), first.shape[-1]) if first is not None and first.dim() == 4 \
                    else field_of(output)
            fields[id(output)] = field
            keep.append(output)
            seen.append((output.shape[-1], field))
            rows.append({"name": name, "type": type(module).__name__, "size": output.shape[-1],
                         "rf": field.rf, "jump": field.jump, "start": field.start})
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def show_receptive_field(model: nn.Module, image: torch.Tensor, layer: str, unit: tuple[int, int] | None = None):
    """The image with the receptive field of one unit of ``layer`` drawn on it (clipped to the image).

    ``unit`` is (row, column) in the layer's output; default: the centre unit.
    """
    get_layer(model, layer)
    rows = {r["name"]: r for r in receptive_fields(model, (1, *image.shape))}
    if layer not in rows:
        raise ValueError(f"layer {layer!r} has no image-shaped output; layers that do: {', '.join(rows)}")
    r = rows[layer]
    i, j = unit if unit is not None else (r["size"] // 2, r["size"] // 2)
    side = image.shape[-1]
    half = (r["rf"] - 1) / 2
    cy, cx = r["start"] + i * r["jump"], r["start"] + j * r["jump"]
    top, left = max(cy - half, 0) - 0.5, max(cx - half, 0) - 0.5
    bottom, right = min(cy + half, side - 1) + 0.5, min(cx + half, side - 1) + 0.5
    fig, ax = plt.subplots(figsize=(4.2, 4.4))
    ax.imshow(image[0].float().cpu().numpy(), cmap="gray")
    ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, color="red", linewidth=2))
    ax.plot([cx], [cy], "r+", markersize=10)
    ax.set_title(f"{layer} ({r['type']}), unit ({i}, {j}) of {r['size']}x{r['size']}\n"
                 f"receptive field {r['rf']:g}x{r['rf']:g}, stride {r['jump']:g}", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def receptive_field(model: nn.Module, data, layer: str | None = None):
    """Widget: pick a layer and a unit; see the part of the image that unit sees."""
    import ipywidgets as widgets

    images, _ = images_of(data, 8)
    rows = receptive_fields(model, (1, *images[0].shape))
    names = list(dict.fromkeys(r["name"] for r in rows))
    sizes = {r["name"]: r["size"] for r in rows}
    pick = widgets.Dropdown(options=names, value=layer or names[0], description="layer")
    row = widgets.IntSlider(sizes[pick.value] // 2, 0, sizes[pick.value] - 1, description="row",
                            continuous_update=False)
    col = widgets.IntSlider(sizes[pick.value] // 2, 0, sizes[pick.value] - 1, description="column",
                            continuous_update=False)

    def on_layer(change):
        size = sizes[change["new"]]
        for s in (row, col):
            s.max = size - 1
            s.value = size // 2

    pick.observe(on_layer, names="value")
    return panel("receptive-field", {"layer": pick, "row": row, "col": col},
                 lambda: show_receptive_field(model, images[0], pick.value,
                                              (min(row.value, row.max), min(col.value, col.max))))
