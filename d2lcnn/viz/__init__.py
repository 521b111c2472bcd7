"""Seeing inside the networks: pictures and widgets.

Each picture is a ``show_*`` function returning a matplotlib figure (it works in tests, scripts
and notebooks); the widget of the same name without ``show_`` wraps it with controls and
redraws it in an ``ipywidgets.Output`` (core ipywidgets only: 7.7 as on Colab, and 8).

* ``filters(model)`` / ``show_filters``: a convolution's kernels, one colour scale centred at 0;
* ``feature_maps(model, data)`` / ``show_feature_maps``: all channels of a layer for an image;
* ``Replay`` (a Trainer callback) and ``replay(r)`` / ``show_replay``: filters and maps per epoch;
* ``mistakes(model, data)`` / ``show_confusion``, ``show_mistakes``: what it gets wrong;
* ``cam(model, data)`` / ``show_cam``, ``gradcam``, ``saliency``: where it looks (Captum);
* ``receptive_field(model, data)`` / ``show_receptive_field``, ``receptive_fields``: what a unit sees;
* ``plot_history``: training curves, one run or several overlaid (from :mod:`d2lcnn.curves`);
* ``bench_redraw()`` / ``python -m d2lcnn.viz.bench``: the feature-map widget's redraw time.

What a picture cannot draw is refused before drawing, with a :class:`VizError` (a ``ValueError``)
that says what to do: a model without convolutions (:class:`NoConvMaps`), a layer unknown or of
the wrong kind (:class:`UnknownLayer`, :class:`WrongLayer`), an image, unit, channel, class or
snapshot number outside its range (:class:`OutOfRange`, also an ``IndexError``).

Every widget returns its box (CSS class ``d2lcnn-<name>``) with its controls as attributes
(``box.layer``, ``box.image``, ...) and its ``box.output``: set a control's ``value`` from code
and the Output redraws, once per change.
"""

from ..curves import plot_history
from .attribution import cam, cam_layers, default_cam_layer, gradcam, saliency, show_cam
from .capture import (ActivationCache, NoConvMaps, OutOfRange, UnknownLayer, VizError, WrongLayer, capture,
                      conv_layers, evaluating, get_layer, layer_names, require_conv_maps)
from .filters import filters, show_filters
from .maps import FeatureMapFigure, feature_maps, show_feature_maps
from .mistakes import confusion_matrix, mistakes, predictions, show_confusion, show_mistakes
from .receptive import receptive_field, receptive_fields, show_receptive_field
from .replay import Replay, replay, show_replay

__all__ = [
    "ActivationCache", "FeatureMapFigure", "NoConvMaps", "OutOfRange", "Replay", "UnknownLayer", "VizError",
    "WrongLayer", "bench_redraw", "cam", "cam_layers", "capture", "confusion_matrix", "conv_layers",
    "default_cam_layer", "evaluating", "feature_maps", "filters", "get_layer", "gradcam", "layer_names",
    "mistakes", "plot_history", "predictions", "receptive_field", "receptive_fields", "replay",
    "require_conv_maps", "saliency", "show_cam", "show_confusion", "show_feature_maps", "show_filters",
    "show_mistakes", "show_receptive_field", "show_replay",
]


def __getattr__(name: str):
    # Imported on first use, so that ``python -m d2lcnn.viz.bench`` runs a module not yet loaded.
    if name == "bench_redraw":
        from .bench import bench_redraw
        return bench_redraw
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
