"""Drawing helpers shared by the pictures and widgets: mosaics, overlays, the widget panel."""

from __future__ import annotations

import math

import torch

from ..display import redraw


def mosaic(maps: torch.Tensor, ncols: int | None = None, pad: int = 1, normalize: bool = True,
           fill: float = float("nan")):
    """Tile (N, H, W) maps into one (rows*H, cols*W) array for imshow, ``pad`` pixels apart.

    Drawing one image is far faster than drawing N subplots. With ``normalize`` each map is
    scaled to 0..1 on its own, so that weak and strong channels are both visible; the gaps are
    ``fill`` (NaN draws as background).
    """
    n, h, w = maps.shape
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    maps = maps.float()
    if normalize:
        low = maps.amin(dim=(1, 2), keepdim=True)
        high = maps.amax(dim=(1, 2), keepdim=True)
        maps = (maps - low) / (high - low).clamp_min(1e-8)
    cells = torch.full((nrows * ncols, h + pad, w + pad), fill)
    cells[:n, :h, :w] = maps
    grid = cells.view(nrows, ncols, h + pad, w + pad).permute(0, 2, 1, 3)
    grid = grid.reshape(nrows * (h + pad), ncols * (w + pad))
    return grid[:grid.shape[0] - pad, :grid.shape[1] - pad].numpy()


def overlay(ax, image: torch.Tensor, heat: torch.Tensor, title: str, cmap: str = "jet") -> None:
    """A grayscale image with a heat map blended over it (both the same size)."""
    ax.imshow(image.numpy(), cmap="gray")
    ax.imshow(heat.numpy(), cmap=cmap, alpha=0.45)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def panel(name: str, controls: dict, draw) -> "widgets.VBox":
    """A widget: a row of controls over an Output redrawn by ``draw()`` whenever one changes.

    The box gets the CSS class ``d2lcnn-<name>`` (the browser test finds widgets by it) and
    keeps its controls as attributes (``box.layer``, ``box.image``, ...) and its ``output``,
    so code and tests can set ``box.layer.value = ...`` and see the picture redrawn.
    """
    import ipywidgets as widgets

    output = widgets.Output()
    box = widgets.VBox([widgets.HBox(list(controls.values())), output])
    box.add_class(f"d2lcnn-{name}")
    box.output = output
    box.controls = controls
    for key, control in controls.items():
        setattr(box, key, control)

    def update(change=None):
        redraw(output, draw)

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return box


def images_of(data, n: int = 32):
    """The first ``n`` test images of a FashionMNIST (as the model sees them) and their labels."""
    n = min(n, len(data.test_labels))
    return data.to_float(data.test_images[:n]), data.test_labels[:n]
