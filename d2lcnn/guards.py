"""Checks made before any work starts, shared by the Trainer, the command line and the widgets.

A student who mistypes a learning rate or a device should hear about it at once, in words,
not after the data has loaded (or an epoch has run) as a ``ZeroDivisionError``. Every check
here raises a specific exception whose message says what was received, what is allowed, and
what to do. All of them are ``ValueError`` subclasses, so a caller that only wants to know
"bad input or not" can catch that.

* :func:`check_recipe` — every field of a :class:`d2lcnn.train.Recipe`;
* :func:`check_count` — epochs, batch sizes, subsets: whole numbers of at least one;
* :func:`resolve_device` — a device that exists here, or the list of those that do;
* :func:`check_writable` — a checkpoint path that can be written, checked before training;
* :func:`check_model_fits` — the data's images fit the model (the layer that breaks is named);
* :class:`ArgumentError` — an argument of the wrong kind (``Trainer(None)``, a recipe as a dict).
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from numbers import Integral, Real
from pathlib import Path

import torch
from torch import nn

from .inspect import ShapeMismatchError, check_input

SCHEDULES = ("constant", "onecycle")
INITS = ("xavier", "kaiming", "pytorch", "none")


class RecipeError(ValueError):
    """A training setting that cannot work (a batch size of 0, a negative learning rate, ...)."""


class DeviceError(ValueError):
    """A device that is not on this machine (``cuda`` without a GPU, a typo like ``gpu``)."""


class OutputPathError(ValueError):
    """A checkpoint path that cannot be written (a folder, a read-only place)."""


class ArgumentError(ValueError, TypeError):
    """An argument of the wrong kind (``Trainer(None)``, a recipe given as a dict, a seed in words)."""


class InputMismatchError(ShapeMismatchError):
    """The data's images do not fit the model (size, channels or number of classes)."""


# ----------------------------------------------------------------------------------------------
# Numbers
# ----------------------------------------------------------------------------------------------

def check_count(name: str, value, fix: str = "", error: type[ValueError] = RecipeError) -> int:
    """``value`` as an int if it is a whole number >= 1; otherwise ``error`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise error(f"{name} must be a whole number of at least 1, got {value!r}." + (f" {fix}" if fix else ""))
    return int(value)


def _check_number(name: str, value, low: float, high: float = math.inf, low_open: bool = False,
                  high_open: bool = False, fix: str = "") -> None:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise RecipeError(f"{name} must be a number in {lo}{low:g}, {high:g}{hi}, got {value!r}. {fix}".rstrip())


def check_recipe(recipe) -> None:
    """Every field of a Recipe, with the fix named: called when the Recipe is made."""
    check_count("batch_size", recipe.batch_size, "Try the book's 128 or 256.")
    check_count("epochs", recipe.epochs, "Try 10, the book's.")
    check_count("resize", recipe.resize, "Fashion-MNIST's images are 28x28; the book resizes to 28, 96 or 224.")
    _check_number("lr", recipe.lr, 0, low_open=True,
                  fix="The learning rate must be positive; the book uses 0.01 to 0.9 (see Recipe.book).")
    _check_number("momentum", recipe.momentum, 0, 1, high_open=True, fix="0 (plain SGD) or 0.9 are usual.")
    _check_number("weight_decay", recipe.weight_decay, 0, fix="0 turns it off; 5e-4 is usual.")
    _check_number("warmup", recipe.warmup, 0, 1, high_open=True,
                  fix="It is the fraction of the steps spent warming up, e.g. 0.15.")
    _check_number("label_smoothing", recipe.label_smoothing, 0, 1, high_open=True, fix="0 turns it off; 0.1 is usual.")
    _check_number("clip_grad_norm", recipe.clip_grad_norm, 0, fix="0 turns clipping off; 5.0 is usual.")
    if recipe.schedule not in SCHEDULES:
        raise RecipeError(f"schedule must be one of {SCHEDULES}, got {recipe.schedule!r}.")
    if recipe.init not in INITS:
        raise RecipeError(f"init must be one of {INITS}, got {recipe.init!r}: 'xavier' as the book, "
                          "'kaiming' for ReLU networks, 'pytorch' for PyTorch's own per-layer defaults, 'none' keeps the "
                          "weights the model has.")


# ----------------------------------------------------------------------------------------------
# Devices
# ----------------------------------------------------------------------------------------------

def available_devices() -> list[str]:
    """The devices this machine has, as one would type them: ``cpu``, ``cuda:0``, ..., ``mps``."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device if this machine has it; DeviceError naming those it has."""
    have = available_devices()
    listed = ", ".join(have)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"{device!r} is not a device name. This machine has: {listed}. "
                          "Write one of them (e.g. 'cuda' or 'cpu').") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r}: CUDA is not available here (no NVIDIA GPU or driver "
                              f"that this torch {torch.__version__} can use). This machine has: {listed}. "
                              "On Colab: Runtime > Change runtime type > GPU.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(device)!r}: there are only {torch.cuda.device_count()} GPU(s). "
                              f"This machine has: {listed}.")
        return dev
    if dev.type == "mps":
        if "mps" not in have:
            raise DeviceError(f"device {str(device)!r}: Apple's MPS is not available here. This machine has: {listed}.")
        return dev
    raise DeviceError(f"device {str(device)!r} is not supported by d2lcnn; this machine has: {listed}.")


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------

def check_writable(path: str | os.PathLike) -> Path:
    """Make sure a file can be written at ``path`` (creating its folder), before any training.

    Refuses a path that is a folder and a folder where nothing can be created, by trying it:
    a file created and removed beside the destination.
    """
    path = Path(path)
    try:
        blocked = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise OutputPathError(f"cannot write {path}: {blocked} is a file, not a folder. "
                                  "Choose another path, e.g. --out ./model.pt.")
        if path.is_dir():
            raise OutputPathError(f"{path} is a folder; give a file path for the checkpoint, e.g. {path / 'model.pt'}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        # The probe's name is as long as the temporary file a save writes first (.NAME.PID.RANDOM.tmp).
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".probe"):
            pass
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            longest = max((part for part in path.parts), key=lambda part: len(os.fsencode(part)))
            raise OutputPathError(f"cannot write the checkpoint: a name in its path is too long for this "
                                  f"filesystem ({len(os.fsencode(longest))} bytes: {longest[:40]}...; a save "
                                  "also needs about 30 more for its temporary file). Choose a shorter name, "
                                  "e.g. --out ./model.pt.") from None
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc} (in {path.parent}). "
                              "Choose a folder you can write to, e.g. --out ./model.pt.") from None
    return path


# ----------------------------------------------------------------------------------------------
# Models and data
# ----------------------------------------------------------------------------------------------

def check_model_fits(model: nn.Module, input_shape: tuple[int, ...], classes: int,
                     what: str = "the data") -> tuple[int, ...]:
    """One image of ``input_shape`` (batch 1) through ``model``: its output must be (1, classes).

    One forward pass in eval mode without gradients (milliseconds even for VGG at 224x224);
    the model is left exactly as it was. Raises InputMismatchError with the layer table's
    explanation (the layer where the shapes break, what arrived, what it wanted).
    """
    shape = (1, *tuple(input_shape)[1:])
    try:
        out = check_input(model, shape)
    except ShapeMismatchError as err:
        raise InputMismatchError(f"{what} ({_describe(shape)}) does not fit this model. {err}",
                                 err.layer, err.module, err.shape) from None
    if len(out) != 2 or out[1] != classes:
        raise InputMismatchError(
            f"{what} has {classes} classes, but the model outputs shape {out} for one image. Build the "
            f"network with {classes} outputs (the 'fashion' configuration, or num_classes={classes}).")
    return out


def _describe(shape: tuple[int, ...]) -> str:
    return f"images of {shape[1]} channel{'s' if shape[1] != 1 else ''}, {'x'.join(map(str, shape[2:]))}"

