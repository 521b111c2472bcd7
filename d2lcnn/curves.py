"""Training curves: loss and accuracy against epochs, for one history or several overlaid."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt

Record = Mapping[str, float]

CURVES = (("train_loss", "--", "train loss", 0), ("test_loss", "-", "test loss", 0),
          ("train_acc", "--", "train acc", 1), ("test_acc", "-", "test acc", 1))
"""(key, line style, label, panel): train curves dashed, test curves solid; loss left, accuracy right."""


def plot_history(histories: Sequence[Record] | Mapping[str, Sequence[Record]], axes=None, ax=None):
    """Plot train loss (left) and train/test accuracy (right) from Trainer histories.

    ``histories`` is one history (a list of per-epoch records, as ``Trainer.history``) or a
    mapping ``{label: history}`` to compare runs: each run gets one colour, train curves are
    dashed, test curves solid. Records may carry fractional epochs and lack some metrics (the
    live plot feeds it points taken mid-epoch); interrupted epochs are left out.

    Draws into ``axes`` (a pair: loss, accuracy) when given, or into one ``ax`` with every
    curve on it (as the book's ``Animator`` draws), else into a new figure with two panels.
    Returns the figure.
    """
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    if ax is not None:
        panels = [ax, ax]
    elif axes is not None:
        panels = list(axes)
    else:
        _, panels = plt.subplots(1, 2, figsize=(9, 3.2))
        panels = list(panels)
    fig = panels[0].figure
    for i, (label, history) in enumerate(histories.items()):
        colour = f"C{i}"
        prefix = f"{label} " if label else ""
        records = [r for r in history if not r.get("interrupted")]
        for key, style, name, panel in CURVES:
            points = sorted((r["epoch"], r[key]) for r in records if r.get(key) is not None)
            if not points:
                continue
            x, y = zip(*points)
            # On one shared axes the colour tells the curve apart (as the book), else the run.
            c = f"C{panel * 2 + (key.startswith('test'))}" if ax is not None and len(histories) == 1 else colour
            panels[panel].plot(x, y, style, color=c, marker="o" if len(points) < 3 else None, label=prefix + name)
    if ax is not None:
        ax.set_title("loss and accuracy")
    else:
        panels[0].set_title("loss")
        panels[1].set_title("accuracy")
    for a in dict.fromkeys(panels):
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    fig.tight_layout()
    return fig
