"""Training curves: loss and accuracy against epochs, for one history or several overlaid."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt

Record = Mapping[str, float]


def plot_history(histories: Sequence[Record] | Mapping[str, Sequence[Record]], axes=None):
    """Plot train loss (left) and train/test accuracy (right) from Trainer histories.

    ``histories`` is one history (a list of per-epoch records, as ``Trainer.history``) or a
    mapping ``{label: history}`` to compare runs: each run gets one colour, train curves are
    dashed, test curves solid. Records may carry fractional epochs and lack some metrics (the
    live plot feeds it points taken mid-epoch); interrupted epochs are left out. Returns the
    figure.
    """
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    fig = axes[0].figure
    for i, (label, history) in enumerate(histories.items()):
        colour = f"C{i}"
        prefix = f"{label} " if label else ""
        records = [r for r in history if not r.get("interrupted")]
        for ax, key, style, name in [(axes[0], "train_loss", "--", "train loss"),
                                     (axes[0], "test_loss", "-", "test loss"),
                                     (axes[1], "train_acc", "--", "train acc"),
                                     (axes[1], "test_acc", "-", "test acc")]:
            points = sorted((r["epoch"], r[key]) for r in records if r.get(key) is not None)
            if points:
                x, y = zip(*points)
                ax.plot(x, y, style, color=colour, marker="o" if len(points) < 3 else None,
                        label=prefix + name)
    axes[0].set_title("loss")
    axes[1].set_title("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
