"""Feature maps: every channel a layer outputs for one image, as one mosaic, and one enlarged."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from ..data import CLASSES
from .capture import (ActivationCache, capture, check_image, check_layer, check_range, check_weights, layer_menu,
                      require_conv_maps, same_maps)
from .draw import images_of, mosaic, panel


class FeatureMapFigure:
    """The feature-map picture: the input, every channel as one mosaic (one ``imshow`` of a tiled
    array: drawing dozens of subplots would cost far more than the network), and one channel
    enlarged, framed in the mosaic.

    The layout is fixed (no ``tight_layout``), so the widget keeps one figure and only swaps the
    images' data on a redraw; ``figure`` is the matplotlib figure to use, by default a new
    pyplot one (the static :func:`show_feature_maps`).
    """

    def __init__(self, figure=None):
        self.fig = figure if figure is not None else plt.figure(figsize=(12, 4.8))
        self.fig.set_size_inches(12, 4.8)
        boxes = [(0.01, 0.2, 0.17, 0.6), (0.2, 0.02, 0.5, 0.88), (0.72, 0.1, 0.27, 0.72)]
        self.axes = [self.fig.add_axes(box) for box in boxes]
        # Titles as figure text: an axes title makes matplotlib measure the (hidden) tick labels.
        self.titles = [self.fig.text(x + w / 2, y + h + 0.02, "", ha="center", va="bottom", fontsize=10)
                       for x, y, w, h in boxes]
        for ax in self.axes:
            ax.set_axis_off()
        self.images = [None, None, None]
        self.frame = Rectangle((0, 0), 1, 1, fill=False, edgecolor="red", linewidth=1.2)
        self.axes[1].add_patch(self.frame)

    def _show(self, i: int, array, cmap: str, interpolation: str = "nearest") -> None:
        if self.images[i] is None or self.images[i].get_array().shape != array.shape:
            if self.images[i] is not None:
                self.images[i].remove()
            self.images[i] = self.axes[i].imshow(array, cmap=cmap, interpolation=interpolation)
        else:
            self.images[i].set_data(array)
        self.images[i].autoscale()    # colour range of the new data

    def update(self, image: torch.Tensor, maps: torch.Tensor, layer: str, channel: int, title: str = "",
               grid=None) -> "Figure":
        """Show ``maps`` (C, H, W) of ``layer`` for ``image`` (1, H, W), channel ``channel`` enlarged.

        ``grid`` is ``mosaic(maps)`` when the caller has it already (it does not change with
        the channel)."""
        count, height, width = maps.shape
        check_channel(channel, count, layer)
        grid = mosaic(maps) if grid is None else grid
        self._show(0, image[0].float().cpu().numpy(), "gray")
        self._show(1, grid, "viridis", "antialiased")     # often shrunk: smooth, not aliased
        self._show(2, maps[channel].numpy(), "viridis")
        columns = math.ceil(math.sqrt(count))
        row, col = divmod(channel, columns)
        self.frame.set_bounds(col * (width + 1) - 1, row * (height + 1) - 1, width + 1, height + 1)
        self.titles[0].set_text(title or "input")
        self.titles[1].set_text(f"{layer}: {count} channels of {height}x{width}")
        self.titles[2].set_text(f"channel {channel}")
        return self.fig


def check_channel(channel: int, count: int, layer: str) -> int:
    """``channel`` if ``layer``'s output has it; OutOfRange otherwise (never another channel)."""
    return check_range("channel", channel, 0, count - 1, f"layer {layer!r} outputs {count} channels",
                       "Pick one of them (0 is the first); the feature_maps widget's slider offers them all.")


def show_feature_maps(model: nn.Module, image: torch.Tensor, layer: str, channel: int = 0,
                      activations: dict | None = None, title: str = ""):
    """Draw all channels of ``layer``'s output for one image (1, H, W) and channel ``channel`` enlarged.

    Each channel is scaled to its own range, so weak ones stay visible. ``activations`` (a
    ``{layer: (C, H, W)}`` dict) skips the forward pass when the caller already has them.
    """
    check_weights(model, "show_feature_maps")
    check_image(model, image, "show_feature_maps")
    if activations is None:
        activations = {n: a[0] for n, a in capture(model, image.unsqueeze(0)).items() if a.dim() == 4}
    offered = require_conv_maps(model, list(activations), "show_feature_maps")
    check_layer(model, layer, offered, "a layer with image-shaped (N, C, H, W) output")
    check_channel(channel, activations[layer].shape[0], layer)
    return FeatureMapFigure().update(image, activations[layer], layer, channel, title)


def feature_maps(model: nn.Module, data, layer: str | None = None, n_images: int | None = None):
    """Widget: pick an image (by index or class), a layer and a channel; see the feature maps.

    ``n_images``: how many test images to offer (default 32, or all when fewer). The activations
    of each image are computed once and cached: moving a slider only redraws.
    """
    import ipywidgets as widgets

    images, labels = images_of(data, n_images)
    cache = ActivationCache(model, images)
    names = require_conv_maps(model, cache.names, "feature_maps")
    layer = names[0] if layer is None else check_layer(model, layer, names,
                                                       "a layer with image-shaped (N, C, H, W) output")
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)
    by_class = widgets.Dropdown(options=[(c, i) for i, c in enumerate(CLASSES)], value=int(labels[0]),
                                description="class")
    options = layer_menu(model, names, cache[0])            # typed labels, each tensor once
    pick = widgets.Dropdown(options=options, value=same_maps(cache[0], layer, options), description="layer")
    channel = widgets.IntSlider(0, 0, cache[0][pick.value].shape[0] - 1, description="channel",
                                continuous_update=False)

    def on_class(change):          # the first image of that class (if these images have one)
        matches = (labels.cpu() == change["new"]).nonzero()
        if len(matches):
            image.value = int(matches[0])

    def on_image(change):          # the class menu names the image's class
        by_class.value = int(labels[change["new"]])

    def on_layer(change):
        channel.max = cache[image.value][change["new"]].shape[0] - 1

    picture = FeatureMapFigure(Figure())     # reused; not pyplot's, so never shown by itself
    grids: dict = {}                         # (image, layer) -> mosaic: a channel move reuses it

    def draw():
        maps = cache[image.value][pick.value]
        key = (image.value, pick.value)
        if key not in grids:
            if len(grids) >= 8:
                grids.pop(next(iter(grids)))
            grids[key] = mosaic(maps)
        return picture.update(images[image.value], maps, pick.value, channel.value, grid=grids[key],
                              title=f"test image {image.value}: {CLASSES[int(labels[image.value])]}")

    return panel("feature-maps", {"image": image, "by_class": by_class, "layer": pick, "channel": channel},
                 draw, linked={"image": on_image, "by_class": on_class, "layer": on_layer}, fixed=True)
