"""Small helpers for the lessons themselves: showing the package's real code in a notebook, and the
data of a lesson's CPU setting."""

from __future__ import annotations

import inspect


def show_source(*objects) -> object:
    """The source of functions or classes, syntax-highlighted, so students read the real code.

    Returns an ``IPython.display.Code`` object (rendered with highlighting in JupyterLab and
    Colab, and as plain text elsewhere).
    """
    from IPython.display import Code

    return Code("\n\n".join(inspect.getsource(obj).rstrip() for obj in objects), language="python")


def training_data(recipe, subset: int | None = None, test_subset: int | None = None, device=None):
    """The Fashion-MNIST a ``Trainer`` builds from ``recipe`` (batch size, image size, augmentation,
    normalisation), optionally on fewer images: ``subset`` training and ``test_subset`` test
    images *per class* (balanced).

    The lessons' CPU settings use it: the same network and recipe as the GPU setting, on smaller
    images and fewer of them, so that a 2-core CPU finishes in minutes instead of hours.
    """
    from .data import FashionMNIST

    return FashionMNIST(batch_size=recipe.batch_size, resize=recipe.resize, device=device,
                        augment=recipe.augment, normalize=recipe.normalize, subset=subset,
                        test_subset=test_subset)


def fit_area():
    """Where fits run one after another show their progress: in a notebook an ``ipywidgets.Output``
    (displayed here) that :func:`fit_in` clears before each fit, so that a dozen fits leave one
    progress bar and one live plot, not a dozen; elsewhere None (fits print their lines)."""
    from .train import in_notebook

    if not in_notebook():
        return None
    import ipywidgets as widgets
    from IPython.display import display

    area = widgets.Output()
    display(area)
    return area


def fit_in(area, trainer) -> None:
    """``trainer.fit()``, its progress drawn in ``area`` (from :func:`fit_area`) in place of the last fit's."""
    if area is None:
        trainer.fit()
        return
    with area:
        area.clear_output(wait=True)
        trainer.fit()
