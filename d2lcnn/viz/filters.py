"""The learned filters of a convolution, as one mosaic on a colour scale centred at zero."""

from __future__ import annotations

import matplotlib.pyplot as plt
from torch import nn

from .capture import check_count, check_layer, check_range, conv_layers, get_layer, layer_menu, require_conv_maps
from .draw import mosaic, panel


def show_filters(model: nn.Module, layer: str | None = None, in_channel: int = 0, max_filters: int = 128):
    """Draw the kernels of a Conv2d layer (default: the first) as one mosaic.

    For a layer with one input channel each kernel is one small image; deeper layers have one
    slice per input channel, and ``in_channel`` picks which (within its group, for a grouped
    convolution). A 1x1 convolution has no picture to show, only a mixing of channels: its
    weights are drawn as the (output, input) matrix they are. Red is positive, blue negative,
    and all kernels share one scale, symmetric around zero, so their strengths compare.
    """
    names = require_conv_maps(model, conv_layers(model), "show_filters")
    check_count("max_filters", max_filters, "it is how many of the layer's filters to draw (the default, 128, "
                "draws them all in most layers)")
    layer = check_layer(model, layer, names, "a convolution (Conv2d)") if layer is not None else names[0]
    conv = get_layer(model, layer)
    weight = conv.weight.detach().float().cpu()
    out_channels, per_group_in = weight.shape[:2]
    shown = f"first {max_filters} of " if out_channels > max_filters else ""
    group = " (of its group)" if conv.groups > 1 else ""
    if weight.shape[2:] == (1, 1):
        grid = weight[:max_filters, :, 0, 0].numpy()
        title = f"{layer}: 1x1 kernels, {shown}{out_channels} outputs (rows) x {per_group_in} inputs{group}"
    else:
        check_range("in_channel", in_channel, 0, per_group_in - 1,
                    f"the kernels of layer {layer!r} have {per_group_in} input channel(s){group}",
                    "Pick one of them (0 is the first).")
        grid = mosaic(weight[:max_filters, in_channel], normalize=False)
        title = (f"{layer}: {shown}{out_channels} filters {tuple(weight.shape[2:])}, "
                 f"input channel {in_channel}{group}")
    limit = float(abs(grid[grid == grid]).max(initial=0.0)) or 1.0     # NaN gaps left out
    fig, ax = plt.subplots(figsize=(5, 4.2))
    image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig


def filters(model: nn.Module, layer: str | None = None):
    """Widget: pick a convolution (and an input channel) and see its filters."""
    import ipywidgets as widgets

    names = require_conv_maps(model, conv_layers(model), "filters")
    layer = check_layer(model, layer, names, "a convolution (Conv2d)") if layer is not None else names[0]
    pick = widgets.Dropdown(options=layer_menu(model, names), value=layer, description="layer")
    channel = widgets.IntSlider(0, 0, 0, description="in channel", continuous_update=False)

    def on_layer(change):               # a 1x1 layer is drawn as one matrix: no channel to pick
        weight = get_layer(model, change["new"]).weight
        channel.value = 0
        channel.max = weight.shape[1] - 1
        channel.disabled = weight.shape[2:] == (1, 1) or weight.shape[1] == 1

    on_layer({"new": layer})
    return panel("filters", {"layer": pick, "in_channel": channel},
                 lambda: show_filters(model, pick.value, channel.value), linked={"layer": on_layer})
