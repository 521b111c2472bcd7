"""The learned filters of a convolution, as one mosaic on a colour scale centred at zero."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import nn

from .capture import conv_layers, get_layer
from .draw import mosaic, panel


def show_filters(model: nn.Module, layer: str | None = None, in_channel: int = 0, max_filters: int = 128):
    """Draw the kernels of a Conv2d layer (default: the first) as one mosaic.

    For a layer with one input channel each kernel is one small image; deeper layers have one
    slice per input channel, and ``in_channel`` picks which. Red is positive, blue negative, and
    all kernels share one scale, symmetric around zero, so their strengths compare.
    """
    layer = layer or conv_layers(model)[0]
    conv = get_layer(model, layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"layer {layer!r} is a {type(conv).__name__}, not a Conv2d; "
                         f"convolutions: {', '.join(conv_layers(model))}")
    weight = conv.weight.detach().float().cpu()
    per_group_in = weight.shape[1]
    if not 0 <= in_channel < per_group_in:
        raise ValueError(f"in_channel must be in 0..{per_group_in - 1} for layer {layer!r}")
    kernels = weight[:max_filters, in_channel]
    limit = kernels.abs().max().item() or 1.0
    grid = mosaic(kernels, normalize=False)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, fraction=0.046)
    shown = f"first {max_filters} of " if weight.shape[0] > max_filters else ""
    ax.set_title(f"{layer}: {shown}{weight.shape[0]} filters {tuple(weight.shape[2:])}, "
                 f"input channel {in_channel}", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def filters(model: nn.Module, layer: str | None = None):
    """Widget: pick a convolution (and an input channel) and see its filters."""
    import ipywidgets as widgets

    names = conv_layers(model)
    if not names:
        raise ValueError("the model has no Conv2d layer")
    pick = widgets.Dropdown(options=names, value=layer or names[0], description="layer")
    channel = widgets.IntSlider(0, 0, get_layer(model, pick.value).weight.shape[1] - 1,
                                description="in channel", continuous_update=False)

    def on_layer(change):
        channel.value = 0
        channel.max = get_layer(model, change["new"]).weight.shape[1] - 1

    pick.observe(on_layer, names="value")
    return panel("filters", {"layer": pick, "in_channel": channel},
                 lambda: show_filters(model, pick.value, min(channel.value, channel.max)))
