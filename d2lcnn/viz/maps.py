"""Feature maps: every channel a layer outputs for one image, as one mosaic, and one enlarged."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import nn

from ..data import CLASSES
from .capture import ActivationCache, capture, get_layer
from .draw import images_of, mosaic, panel


def show_feature_maps(model: nn.Module, image: torch.Tensor, layer: str, channel: int = 0,
                      activations: dict | None = None, title: str = ""):
    """Draw all channels of ``layer``'s output for one image (1, H, W) and channel ``channel`` enlarged.

    Each channel is scaled to its own range, so weak ones stay visible. ``activations`` (a
    ``{layer: (C, H, W)}`` dict) skips the forward pass when the caller already has them.
    """
    if activations is None:
        get_layer(model, layer)
        activations = {n: a[0] for n, a in capture(model, image.unsqueeze(0), [layer]).items()}
    if layer not in activations:
        raise ValueError(f"layer {layer!r} has no image-shaped output to show "
                         f"(layers that do: {', '.join(activations)})")
    maps = activations[layer]
    channel = min(channel, maps.shape[0] - 1)
    fig, (ax_in, ax_all, ax_one) = plt.subplots(1, 3, figsize=(11, 3.8), width_ratios=(1, 2.2, 1))
    ax_in.imshow(image[0].float().cpu().numpy(), cmap="gray")
    ax_in.set_title(title or "input", fontsize=9)
    ax_all.imshow(mosaic(maps), cmap="viridis", interpolation="nearest")
    ax_all.set_title(f"{layer}: {maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]}", fontsize=9)
    ax_one.imshow(maps[channel].numpy(), cmap="viridis", interpolation="nearest")
    ax_one.set_title(f"channel {channel}", fontsize=9)
    for ax in (ax_in, ax_all, ax_one):
        ax.axis("off")
    fig.tight_layout()
    return fig


def feature_maps(model: nn.Module, data, layer: str | None = None, n_images: int = 32):
    """Widget: pick an image (by index or class), a layer and a channel; see the feature maps.

    The activations of each image are computed once and cached: moving a slider only redraws.
    """
    import ipywidgets as widgets

    images, labels = images_of(data, n_images)
    cache = ActivationCache(model, images)
    names = cache.names
    image = widgets.IntSlider(0, 0, len(images) - 1, description="image", continuous_update=False)
    by_class = widgets.Dropdown(options=[("-", -1)] + [(c, i) for i, c in enumerate(CLASSES)],
                                value=-1, description="class")
    pick = widgets.Dropdown(options=names, value=layer or names[0], description="layer")
    channel = widgets.IntSlider(0, 0, cache[0][pick.value].shape[0] - 1, description="channel",
                                continuous_update=False)

    def on_class(change):
        matches = (labels == change["new"]).nonzero()
        if change["new"] >= 0 and len(matches):
            image.value = int(matches[0])

    def on_layer(change):
        channel.max = cache[image.value][change["new"]].shape[0] - 1

    by_class.observe(on_class, names="value")
    pick.observe(on_layer, names="value")

    def draw():
        acts = cache[image.value]
        return show_feature_maps(model, images[image.value].cpu(), pick.value, channel.value, acts,
                                 title=f"test image {image.value}: {CLASSES[int(labels[image.value])]}")

    return panel("feature-maps", {"image": image, "by_class": by_class, "layer": pick, "channel": channel},
                 draw)
