"""What the book reports for its Fashion-MNIST models, and our runs set beside it.

The figures are the test accuracies printed by the book's own CI over many rebuilds of
Dive into Deep Learning (d2l-zh, PyTorch, on a V100): the minimum, median and maximum after 10
epochs, how many runs ended stuck at chance (10%), and the median of the examples/s that
``train_ch6`` prints (compute only: data loading is not timed there). :data:`SOURCE` says where
they come from; every table that shows them prints it.
"""

from __future__ import annotations

from dataclasses import dataclass


SOURCE = ("d2l-zh 2.0's own CI (its executed PyTorch notebooks in the repository "
          "d2l-ai/d2l-zh-pytorch-slides, from 2021-04-19 for LeNet and 2021-05-11 for the other "
          "models to 2023-08-18, on a V100)")
"""Where :data:`BOOK_RESULTS` come from (the git history of that repository, one printed result per build)."""


@dataclass(frozen=True)
class BookResult:
    """The book's 10-epoch Fashion-MNIST result for one model, over ``runs`` CI builds."""

    test_acc_min: float
    test_acc_median: float
    test_acc_max: float
    stuck_at_chance: str
    examples_per_s: float


BOOK_RESULTS = {
    "lenet": BookResult(0.752, 0.808, 0.828, "0", 83_700),
    "alexnet": BookResult(0.860, 0.881, 0.886, "0", 4_145),
    "vgg11": BookResult(0.900, 0.919, 0.925, "0", 2_553),
    "nin": BookResult(0.100, 0.844, 0.885, "7 of 74", 3_200),
    "googlenet": BookResult(0.100, 0.888, 0.900, "2 of 83", 3_471),
    "bn_lenet": BookResult(0.619, 0.843, 0.883, "0", 60_200),
    "resnet18": BookResult(0.814, 0.913, 0.927, "0", 4_684),
    "densenet": BookResult(0.406, 0.882, 0.918, "0", 5_513),
}


def versus_book(history: list[dict], name: str, label: str = "ours") -> str:
    """A small text table: our last epoch next to the book's result for ``name``.

    ``history`` is a Trainer's history (list of per-epoch dicts); the book's speed is its
    compute-only figure on a V100, ours is wall time per epoch (data and all) on our device.
    """
    if name not in BOOK_RESULTS:
        raise KeyError(f"the book reports no Fashion-MNIST result for {name!r}; "
                       f"known: {', '.join(BOOK_RESULTS)}")
    book = BOOK_RESULTS[name]
    done = [r for r in history if not r.get("interrupted")]
    if not done:
        raise ValueError("the history holds no finished epoch yet: train first")
    last = done[-1]
    epochs = len(done)
    lines = [
        f"{'':18}{'test acc':>13}{'examples/s':>13}{'epochs':>8}",
        f"{label:18}{last['test_acc']:>13.3f}{last['examples_per_s']:>13,.0f}{epochs:>8}",
        f"{'book, median':18}{book.test_acc_median:>13.3f}{book.examples_per_s:>13,.0f}{10:>8}",
        f"{'book, min..max':18}{book.test_acc_min:>6.3f}..{book.test_acc_max:.3f}",
        f"Book: 10-epoch results of {SOURCE}; runs stuck at 10% (chance): {book.stuck_at_chance}.",
        "The book's examples/s count compute only; ours are wall time (data and all) on "
        f"{last.get('device', 'our device')}.",
    ]
    return "\n".join(lines)
