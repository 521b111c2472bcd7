"""Drawing helpers shared by the pictures and widgets: mosaics, overlays, the widget panel."""

from __future__ import annotations

import base64
import io
import math

import torch

from ..display import redraw
from .capture import check_range


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


def png_output(fig, dpi: int = 90) -> dict:
    """Like :func:`d2lcnn.display.figure_output`, for a figure laid out already: no tight
    bounding box, which would draw the figure twice, and a light compression (a quarter of
    the time of the default, for a slightly larger file)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                     "text/plain": f"<Figure {fig.get_figwidth():g}x{fig.get_figheight():g} in>"}}


def panel(name: str, controls: dict, draw, linked: dict | None = None, quiet: tuple = (),
          fixed: bool = False) -> "widgets.VBox":
    """A widget: a row of controls over an Output redrawn by ``draw()`` whenever one changes.

    The box gets the CSS class ``d2lcnn-<name>`` (the browser test finds widgets by it) and
    keeps its controls as attributes (``box.layer``, ``box.image``, ...) and its ``output``,
    so code and tests can set ``box.layer.value = ...`` and see the picture redrawn.

    ``linked`` maps a control's key to a function of the change, run first when that control
    changes, to adjust the others (a new layer sets the channel slider's range); what it changes
    does not redraw on its own, so one move is one redraw. Controls named in ``quiet`` do not
    redraw at all (a Play button linked to a slider in the browser: the slider redraws).
    ``fixed``: ``draw()`` returns the same, laid-out figure every time (not pyplot's): it is
    rendered as it is and kept. ``box.redraws`` counts the redraws. When a redraw after a change fails, the Output shows
    the error's message (a callback's exception would otherwise only reach the browser's log)
    and ``box.error`` keeps it; on the first draw it is raised, in the cell that built the widget.
    """
    import ipywidgets as widgets

    output = widgets.Output()
    box = widgets.VBox([widgets.HBox(list(controls.values())), output])
    box.add_class(f"d2lcnn-{name}")
    box.output = output
    box.controls = controls
    box.redraws = 0
    for key, control in controls.items():
        setattr(box, key, control)
    linked = linked or {}
    busy = []

    def update(change=None):
        if busy:            # a linked adjustment: the redraw that follows it shows it
            return
        busy.append(True)
        try:
            for key, adjust in linked.items():
                if change is not None and change["owner"] is controls[key]:
                    adjust(change)
        finally:
            busy.clear()
        try:
            if fixed:
                output.outputs = (png_output(draw()),)
            else:
                redraw(output, draw)
            box.error = None
        except Exception as error:
            if change is None:
                raise
            box.error = error
            output.outputs = ({"output_type": "stream", "name": "stderr",
                               "text": f"{type(error).__name__}: {error}\n"},)
        box.redraws += 1

    for key, control in controls.items():
        if key not in quiet:
            control.observe(update, names="value")
    update()
    return box


def images_of(data, n: int | None = None, default: int = 32):
    """The first ``n`` test images of a FashionMNIST (as the model sees them) and their labels.

    ``None`` means ``default`` or all there are, when fewer; any other number must be one the
    data has (a widget asked for 100 images of 10 says so, rather than quietly offering 10).
    """
    count = len(data.test_labels)
    if n is None:
        n = min(default, count)
    else:
        check_range("n_images", n, 1, count, f"the data holds {count:,} test images",
                    f"Pass a number in that range, or leave n_images out for the first {min(default, count)}.")
    return data.to_float(data.test_images[:n]), data.test_labels[:n]
