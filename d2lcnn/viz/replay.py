"""Training replay: small snapshots taken during training, stepped through with a Play widget.

``Replay`` is a Trainer callback. After every epoch (and once before the first) it keeps the
first convolution's filters, the feature maps of one fixed test image at that layer, and the
test accuracy: a few kilobytes per epoch, enough to watch the filters form.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import nn

from .capture import VizError, capture, check_layer, check_range, conv_layers, get_layer, require_conv_maps
from .draw import mosaic, panel


class Replay:
    """Trainer callback keeping per-epoch snapshots: the first convolution's filters, the feature
    maps of one fixed test image at ``layer`` (default: that first convolution) and the test
    accuracy. Epoch 0 is the network before training.

    >>> replay = Replay(data)                                         # doctest: +SKIP
    >>> Trainer(net, data=data, callbacks=[replay]).fit(); viz.replay(replay)
    """

    def __init__(self, data, layer: str | None = None, image_index: int = 0, max_maps: int = 64):
        count = len(data.test_labels)
        check_range("image_index", image_index, 0, count - 1, f"the data holds {count:,} test images",
                    "Pick one of them (0 is the first).")
        self.image = data.to_float(data.test_images[image_index:image_index + 1])
        self.layer, self.max_maps = layer, max_maps
        self.filter_layer: str | None = None
        self.snapshots: list[dict] = []

    def _choose_layers(self, model: nn.Module) -> None:
        """The first snapshot, before any training: the model must have maps to show and
        ``layer`` must be one of them (nothing is set unless both hold)."""
        acts = capture(model, self.image)
        offered = [n for n, a in acts.items() if a.dim() == 4]
        convs = require_conv_maps(model, [n for n in conv_layers(model) if n in offered], "Replay")
        if self.layer is not None:
            check_layer(model, self.layer, offered, "a layer with image-shaped (N, C, H, W) output")
        self.layer, self.filter_layer = self.layer or convs[0], convs[0]

    def snapshot(self, model: nn.Module, epoch: float, test_acc: float | None) -> None:
        """Record the filters and the maps now (a few kilobytes, on the CPU)."""
        if self.filter_layer is None:
            self._choose_layers(model)
        weight = get_layer(model, self.filter_layer).weight.detach().float().cpu()
        maps = capture(model, self.image, [self.layer])[self.layer]
        self.snapshots.append({"epoch": epoch, "test_acc": test_acc,
                               "filters": weight[:self.max_maps, 0].clone(), "maps": maps[0, :self.max_maps]})

    def on_fit_start(self, trainer) -> None:
        if not self.snapshots:
            self.snapshot(trainer.model, trainer.epoch, None)

    def on_epoch_end(self, trainer, record: dict) -> None:
        self.snapshot(trainer.model, record["epoch"], record.get("test_acc"))


def show_replay(replay: Replay, index: int = -1):
    """One snapshot: the filters (shared colour scale centred at 0) and the feature maps."""
    count = len(replay.snapshots)
    if not count:
        raise VizError("the replay holds no snapshot yet: pass it to a Trainer's callbacks and fit")
    check_range("index", index, -count, count - 1,
                f"the replay holds {count} snapshots (0 is before training, -1 the last)",
                "Pick one of them.")
    snap = replay.snapshots[index]
    limit = max(s["filters"].abs().max().item() for s in replay.snapshots) or 1.0
    fig, (ax_f, ax_m) = plt.subplots(1, 2, figsize=(9, 3.8))
    ax_f.imshow(mosaic(snap["filters"], normalize=False), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_f.set_title(f"{replay.filter_layer} filters", fontsize=9)
    ax_m.imshow(mosaic(snap["maps"]), cmap="viridis", interpolation="nearest")
    ax_m.set_title(f"{replay.layer} maps of one test image", fontsize=9)
    for ax in (ax_f, ax_m):
        ax.axis("off")
    acc = "before training" if snap["test_acc"] is None else f"test acc {snap['test_acc']:.3f}"
    fig.suptitle(f"epoch {snap['epoch']}: {acc}", fontsize=10)
    fig.tight_layout()
    return fig


def replay(replay: Replay):
    """Widget: a Play button and a slider stepping through the snapshots, epoch by epoch (an empty
    replay is refused by the first drawing, in the cell that makes the widget)."""
    import ipywidgets as widgets

    last = max(0, len(replay.snapshots) - 1)
    play = widgets.Play(value=0, min=0, max=last, interval=800, description="play")
    step = widgets.IntSlider(0, 0, last, description="snapshot")
    widgets.jslink((play, "value"), (step, "value"))
    # Only the slider redraws: in the browser the Play button moves it.
    return panel("replay", {"play": play, "epoch": step}, lambda: show_replay(replay, step.value),
                 quiet=("play",))
