"""Activation capture: what every layer outputs for an image, recorded correctly and cheaply.

Forward hooks record each module's output. They *clone* it, because an in-place ReLU right
after a convolution would otherwise overwrite the convolution's output we stored. The hooks are
removed and the model's train/eval mode restored however the forward pass ends. A cache keeps
the activations of the images already seen, so that a slider moving between layers or channels
redraws without running the model again.

The pictures and widgets refuse what they cannot draw before drawing anything, with one of the
exceptions below (all ``ValueError``; an index out of range is also an ``IndexError``): a model
with no convolution to show (:func:`require_conv_maps`), a layer that does not exist or is of
the wrong kind (:func:`check_layer`), an image, unit, channel, class or snapshot number outside
its range (:func:`check_range`). Each message says what was received, what is allowed and what
to do.
"""

from __future__ import annotations

import contextlib
import difflib
import operator
from numbers import Integral

import torch
from torch import nn


class VizError(ValueError):
    """A picture or widget refused its arguments; the message says what to do instead."""


class NoConvMaps(VizError):
    """The model has no convolution with an image-shaped output: no filter, map or field to draw."""


class UnknownLayer(KeyError, VizError):
    """No layer of that name (a ``KeyError`` too, as a missing key of ``named_modules()``)."""

    def __str__(self) -> str:            # the message as written, not KeyError's quoted repr
        return str(self.args[0]) if self.args else ""


class WrongLayer(VizError):
    """A layer that exists but cannot be shown by this picture (a Linear for feature maps)."""


class OutOfRange(VizError, IndexError):
    """An image, unit, channel, class or snapshot number outside what there is."""


def check_range(name: str, value, low: int, high: int, there: str, fix: str) -> int:
    """``value`` as an int if it is a whole number in ``low..high``; otherwise OutOfRange saying
    what was received, ``there`` (what there is), the allowed range and ``fix`` (what to do)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise VizError(f"{name}={value!r} is not a whole number ({type(value).__name__}): {there}, so {name} "
                       f"must be a whole number in {low}..{high}. {fix}") from None
    if not low <= number <= high:
        raise OutOfRange(f"{name}={value!r} is out of range: {there}, so {name} must be in {low}..{high}. {fix}")
    return number


def check_count(name: str, value, there: str) -> int:
    """``value`` as an int if it is a whole number of at least 1; otherwise VizError saying ``there``
    (what the number is for)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise VizError(f"{name} must be a whole number of at least 1, got {value!r}: {there}.")
    return value


def check_weights(model: nn.Module, picture: str) -> None:
    """VizError unless ``model`` has real weights: one on the meta device has shapes, no values."""
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise VizError(f"{picture}: this model is on the meta device: its layers have shapes but no weights, so "
                       "there is nothing to draw. Build it on a real device (models.build(...) without a meta "
                       "context), or give it weights first: model.to_empty(device='cpu'), then "
                       "model.load_state_dict(...) or a Trainer.")


def check_image(model: nn.Module, image, picture: str) -> torch.Tensor:
    """``image`` if it is one image (C, H, W) that ``model`` takes; VizError saying what to pass otherwise."""
    from ..inspect import ShapeMismatchError, check_input

    example = "one image of shape (1, H, W), e.g. images[0] for images, labels = data.sample(8)"
    if not isinstance(image, torch.Tensor):
        raise VizError(f"{picture}: image must be a tensor, {example}; got {type(image).__name__} {image!r:.40}.")
    if image.dim() != 3:
        hint = " (a batch of one: pass image[0])" if image.dim() == 4 and len(image) == 1 else ""
        raise VizError(f"{picture}: image must be {example}; got shape {tuple(image.shape)}{hint}.")
    try:
        check_input(model, (1, *image.shape))
    except ShapeMismatchError as err:
        channels, height, width = image.shape
        raise VizError(f"{picture}: an image of {channels} channel{'s' if channels != 1 else ''}, {height}x{width} "
                       f"does not fit this model. {err}") from None
    return image


def require_conv_maps(model: nn.Module, offered: list[str], picture: str) -> list[str]:
    """``offered`` (the layers ``picture`` can show) unless it is empty; then NoConvMaps.

    The one guard of every picture of convolutions (filters, feature maps, receptive fields,
    Grad-CAM, the training replay): a fully connected network has nothing for them to draw,
    and says so, instead of failing on an empty list deep inside. A model without weights (on
    the meta device) is refused here too.
    """
    check_weights(model, picture)
    if offered:
        return offered
    kinds = ", ".join(f"{n} ({type(m).__name__})" for n, m in list(model.named_modules())[1:13])
    more = " ..." if len(layer_names(model)) > 12 else ""
    raise NoConvMaps(
        f"{picture}: this model has no convolution with an image-shaped (N, C, H, W) output to show "
        f"(its layers: {kinds or 'none'}{more}). Filters, feature maps, receptive fields and class "
        f"activation maps exist only inside convolutional networks: pass one, e.g. "
        f"models.build('lenet'); a fully connected layer's weights are a matrix, `layer.weight`.")


def layer_names(model: nn.Module) -> list[str]:
    """Every sub-module's name, in definition order (the root, named "", excluded)."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module called ``name``; a clear KeyError listing close names when there is none."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return modules[name]
    close = difflib.get_close_matches(name, layer_names(model), n=5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownLayer(f"the model has no layer {name!r}.{hint} Its layers: {', '.join(layer_names(model)[:40])}"
                       + (", ..." if len(layer_names(model)) > 40 else "."))


def check_layer(model: nn.Module, layer: str, offered: list[str], what: str) -> str:
    """``layer`` if it is among ``offered``; otherwise a clear error: no such layer (UnknownLayer,
    with close names and the ``offered`` ones) or a layer of the wrong kind (WrongLayer, listing
    ``what`` the model has)."""
    if layer in offered:
        return layer
    try:
        module = get_layer(model, layer)
    except UnknownLayer as error:
        raise UnknownLayer(f"{error} Those that are {what}: {', '.join(offered)}.") from None
    raise WrongLayer(f"layer {layer!r} ({type(module).__name__}) is not {what}; "
                     f"the model's: {', '.join(offered)}. Pass one of those.")


def layer_menu(model: nn.Module, names: list[str], maps: dict | None = None) -> list[tuple[str, str]]:
    """A layer dropdown's options, ``(label, name)``: each name labelled with its type ("2.2 · Conv2d"),
    so that a student sees what a bare index is.

    Given one image's ``maps`` (``{name: tensor}`` as :class:`ActivationCache` keeps them), a layer
    whose output is the very tensor an earlier one already gave (a block's output is its last
    layer's) is offered once, under the first name (the layer inside the block).
    """
    modules = dict(model.named_modules())
    options, seen = [], set()
    for name in names:
        if maps is not None:
            key = (maps[name].data_ptr(), tuple(maps[name].shape))
            if key in seen:
                continue
            seen.add(key)
        options.append((f"{name} · {type(modules[name]).__name__}", name))
    return options


def same_maps(maps: dict, layer: str, options: list[tuple[str, str]]) -> str:
    """The offered name whose maps are ``layer``'s (``layer`` itself when it is offered)."""
    key = (maps[layer].data_ptr(), tuple(maps[layer].shape))
    return next(name for _, name in options if (maps[name].data_ptr(), tuple(maps[name].shape)) == key)


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the model's Conv2d layers, in definition order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode (dropout off, BatchNorm's running statistics) for the ``with`` block.

    Every sub-module's own flag is put back afterwards, also when the block raises, so a model
    with some layers deliberately frozen in eval mode keeps them so.
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, training in modes:
            m.training = training


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) live; the CPU for a model with neither."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def hooked(model: nn.Module, names: list[str], store: dict):
    """Record (a clone of) each named module's output in ``store`` during the ``with`` block.

    The model runs in eval mode without gradients; hooks and modes are restored on exit, also
    when the forward pass raises.
    """
    modules = dict(model.named_modules())
    copies: dict[int, tuple] = {}    # id -> (tensor, version, copy): a block's output is often its
                                     # last layer's, unchanged since: one copy serves both

    def recorder(name):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            seen = copies.get(id(output))
            if seen is None or seen[0] is not output or seen[1] != output._version:
                # a copy: an in-place op later in the pass (ReLU(inplace=True)) would overwrite it
                seen = (output, output._version, output.detach().to("cpu", torch.float32, copy=True))
                copies[id(output)] = seen
            store[name] = seen[2]
        return hook

    handles = []
    try:
        handles = [modules[n].register_forward_hook(recorder(n)) for n in names]
        with evaluating(model), torch.no_grad():
            yield store
    finally:
        copies.clear()
        for h in handles:
            h.remove()


def capture(model: nn.Module, images: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The outputs of the named layers (default: all) for ``images``, as CPU tensors."""
    modules = dict(model.named_modules())
    names = layer_names(model) if names is None else names
    check_weights(model, "capture")
    for name in names:
        if name not in modules or not name:
            get_layer(model, name)           # the error, with close names
    store: dict[str, torch.Tensor] = {}
    with hooked(model, names, store):
        model(images.to(device_of(model)))
    return store


class ActivationCache:
    """The activations of a fixed set of images, computed once per image on first use.

    ``cache[i]`` is ``{layer name: (C, H, W) tensor}`` for image ``i``, keeping only the layers
    with image-shaped outputs, the ones a feature-map picture can show.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor):
        self.model, self.images = model, images
        self._cache: dict[int, dict[str, torch.Tensor]] = {}
        self.names = [n for n, a in self[0].items()]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index not in self._cache:
            acts = capture(self.model, self.images[index:index + 1])
            self._cache[index] = {n: a[0] for n, a in acts.items() if a.dim() == 4}
        return self._cache[index]
