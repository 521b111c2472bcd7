"""Training curves: loss and accuracy against epochs, for one history or several overlaid.

:func:`plot_history` draws finished histories; :class:`LiveCurves` redraws the curves of a fit
while it runs, in place, at a pace that keeps plotting to a few percent of the fit's time.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .display import figure_output

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


class LiveCurves:
    """The curves of a running fit, redrawn in place in an ``ipywidgets.Output``.

    Why not ``plot_history`` into a new figure at every redraw: pyplot's inline backend keeps
    every figure pyplot makes until the cell ends, closed or not, so a fit that redrew twice a
    second held hundreds of figures (+668 MB for 300 redraws), and each redraw cost 0.1-0.3 s on a
    CPU (one BN-LeNet epoch took 68.7 s in a notebook against 9.7 s in a terminal). So:

    * one :class:`matplotlib.figure.Figure` for the whole fit, made outside pyplot (nothing keeps
      it), cleared and redrawn;
    * :meth:`due` spaces redraws so that they take at most ``share`` of the fit's wall time:
      after a redraw that took ``c`` seconds the next waits ``c / share`` (never less than
      ``min_interval``). A fast network on a GPU redraws twice a second; on a slow CPU, less often.
    """

    def __init__(self, output, share: float = 0.03, min_interval: float = 0.5):
        self.output = output
        self.share = share
        self.min_interval = min_interval
        self.interval = min_interval
        self.last = float("-inf")
        self.redraws = 0
        self.seconds = 0.0          # spent redrawing, for anyone who wants to check the share
        self.fig = Figure(figsize=(9, 3.2))
        self.axes = self.fig.subplots(1, 2)

    def due(self) -> bool:
        """True when the next redraw would keep plotting within its share of the time."""
        return time.monotonic() - self.last >= self.interval

    def draw(self, history: Sequence[Record]) -> None:
        """Redraw the curves of ``history`` (records as :func:`plot_history` takes them)."""
        start = time.monotonic()
        for ax in self.axes:
            ax.clear()
        plot_history(history, axes=self.axes)
        self.output.outputs = (figure_output(self.fig),)
        self.last = time.monotonic()
        cost = self.last - start
        self.redraws += 1
        self.seconds += cost
        self.interval = max(self.min_interval, cost / self.share)
