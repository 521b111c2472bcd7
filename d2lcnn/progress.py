"""What a fit shows while it runs: a progress bar and live curves in a notebook, lines in a terminal.

In a notebook the cell's output says once which compute path runs, then a tqdm bar and a live
plot of the curves (:class:`d2lcnn.curves.LiveCurves`) follow the fit. In a terminal one line per
epoch goes to stderr, so that stdout stays free for results. A stopped fit says where it stopped
and how to go on, in either place.
"""

from __future__ import annotations

import sys

from .runtime import QUICK


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab), where widgets can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


class Progress:
    """Progress for one ``fit`` of ``trainer``: a tqdm bar and a live plot when ``notebook``,
    lines on stderr otherwise.

    The host reads the device's running sums (a synchronisation) only when the live plot is due
    (:class:`d2lcnn.curves.LiveCurves`: at most twice a second, and less often when a redraw
    would take more than 3% of the time).
    """

    def __init__(self, trainer, notebook: bool):
        self.trainer = trainer
        self.notebook = notebook
        plan = trainer.plan
        total = (plan["end"] - plan["start"]) * plan["steps"]
        note = " (quick mode)" if trainer.quick else ""
        self.live: list[dict] = []
        self.bar = self.curves = None
        self.handle = None
        # Once per fit, what runs: in a notebook the cell's output says it (stdout), in a terminal stderr.
        print(trainer.path, file=sys.stdout if self.notebook else sys.stderr, flush=True)
        if self.notebook:
            import ipywidgets as widgets
            from IPython.display import display
            from tqdm.notebook import tqdm

            # Shown through a display handle, so that close() can replace the text a saved notebook
            # keeps for readers without widgets (GitHub, nbviewer): the final state, not "0%".
            self.bar = tqdm(total=total, initial=plan["step"], desc=f"training{note}", unit="step", display=False)
            self.handle = display(self.bar.container, display_id=True)
            from .curves import LiveCurves

            out = widgets.Output()
            out.add_class("d2lcnn-live-plot")
            display(out)
            self.curves = LiveCurves(out)
        elif note:
            print(f"quick mode (D2LCNN_QUICK=1): at most {QUICK['epochs']} epoch, {QUICK['steps']} steps, "
                  f"batch {QUICK['batch_size']}, {QUICK['eval_examples']} test images", file=sys.stderr, flush=True)

    def step(self, epoch: int, fraction: float, loss_sum, correct, seen: int) -> None:
        if self.bar is None:  # a terminal prints per epoch: nothing to read mid-epoch
            return
        self.bar.update(1)
        if not self.curves.due():
            return
        point = {"epoch": epoch + fraction, "train_loss": loss_sum.item() / seen,
                 "train_acc": correct.item() / seen}
        self.live.append(point)
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{point['train_loss']:.3f}",
                             acc=f"{point['train_acc']:.3f}", refresh=False)
        self.draw()

    def epoch_end(self, record: dict) -> None:
        t = self.trainer
        if record.get("interrupted"):
            where = ("during its evaluation" if record.get("stopped_in") == "evaluation"
                     else f"after {record['steps_done']} of {t.plan['steps']} steps")
            message = (f"Stopped in epoch {record['epoch']} {where}; the model and its history are kept. "
                       "Run trainer.fit() to go on from there (the same batches, the same schedule).")
            # In a notebook the cell's own output says it (stdout), in a terminal stderr does.
            print(message, file=sys.stdout if self.notebook else sys.stderr, flush=True)
        if self.notebook:
            if record.get("train_acc") is not None:   # the bar ends on the epoch's figures, not a mid-epoch reading
                test = {} if record.get("test_acc") is None else {"test_acc": f"{record['test_acc']:.3f}"}
                self.bar.set_postfix(epoch=record["epoch"], loss=f"{record['train_loss']:.3f}",
                                     acc=f"{record['train_acc']:.3f}", **test)
            self.draw()
            return
        if record.get("interrupted"):
            return
        def f(key):
            return "-" if record[key] is None else f"{record[key]:.3f}"

        print(f"epoch {record['epoch']:>3}/{t.plan['end']}  train loss {f('train_loss')}  "
              f"train acc {f('train_acc')}  test acc {f('test_acc')}  "
              f"{record['seconds']:.1f} s  {record['examples_per_s']:,.0f} examples/s", file=sys.stderr, flush=True)

    def draw(self) -> None:
        """Redraw the live plot in its Output."""
        if self.curves is None:
            return
        history = [r for r in self.trainer.history if not r.get("interrupted")]
        self.curves.draw(self.live + history)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.handle is not None:
            self.handle.update(self.bar.container)
