"""Self-checks for the notebooks' exercises: the student writes an answer, we say right or wrong
and why, by computing the true value from the real layers (never from a stored answer).

Each check prints one line, "Right: ..." or "Not quite: ...", and returns True or False, so a
cell can also ``assert`` it. An answer left as ``None`` asks for one instead::

    answer = None   # e.g. (1, 6, 24, 24)
    exercises.check_output_shape(answer, nn.Conv2d(1, 6, 5), (1, 1, 28, 28))
"""

from __future__ import annotations

from numbers import Number
from typing import Sequence

from torch import nn

from .inspect import ShapeMismatchError, count_params, trace

__all__ = ["check_output_shape", "check_params", "check_value"]

NOT_YET = "Write your answer in `answer` above and run the cell again."


def _as_shape(answer) -> tuple[int, ...] | None:
    try:
        return tuple(int(a) for a in answer)
    except (TypeError, ValueError):
        return None


def _as_int(answer) -> int | None:
    if isinstance(answer, str):
        answer = answer.replace(",", "").replace("_", "").strip()
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return int(value) if value.is_integer() else None


def check_output_shape(answer: Sequence[int] | None, model: nn.Module, input_shape: Sequence[int]) -> bool:
    """Is ``answer`` the shape that ``model`` outputs for an input of ``input_shape``?

    When it is not, the verdict walks through the shape after every layer, so the student sees
    where the reasoning went a different way.
    """
    if answer is None:
        print(NOT_YET)
        return False
    try:
        rows, out = trace(model, input_shape)
    except ShapeMismatchError as err:
        print(f"The input itself does not fit: {err}")
        return False
    truth = tuple(out.shape)
    shape = _as_shape(answer)
    if shape == truth:
        print(f"Right: {tuple(input_shape)} -> {truth}.")
        return True
    if shape is None:
        print(f"Not quite: the answer should be a shape, a tuple of whole numbers like {truth}, "
              f"not {answer!r}.")
        return False
    if shape == truth[1:]:
        print(f"Not quite: the sizes are right, but the shape starts with the batch dimension: {truth}.")
        return False
    steps = " -> ".join(f"{r['type']} {r['output_shape']}" for r in rows if r["output_shape"] is not None)
    print(f"Not quite: you wrote {shape}, the output is {truth}. Layer by layer: {steps}. "
          "For a convolution or pooling: out = (in + 2*padding - kernel) // stride + 1.")
    return False


def _param_hint(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        k = "x".join(map(str, module.kernel_size))
        return (f" A convolution has out_channels x (in_channels / groups) x {k} weights"
                " plus one bias per output channel.")
    if isinstance(module, nn.Linear):
        return " A linear layer has in_features x out_features weights plus one bias per output."
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return (" BatchNorm learns a scale and a shift per channel; its running mean and variance are"
                " buffers, not parameters.")
    if not any(True for _ in module.parameters()):
        return " Activations, pooling, dropout and flattening have no parameters."
    return ""


def check_params(answer: int | None, module: nn.Module) -> bool:
    """Is ``answer`` the number of parameters of ``module``? Explains the count when it is not."""
    if answer is None:
        print(NOT_YET)
        return False
    truth = count_params(module)
    value = _as_int(answer)
    if value == truth:
        print(f"Right: {truth:,} parameters.")
        return True
    parts = [f"{name} {tuple(p.shape)} = {p.numel():,}" for name, p in module.named_parameters()]
    wrote = f"{value:,}" if value is not None else repr(answer)
    breakdown = f": {'; '.join(parts)}" if parts else ""
    print(f"Not quite: you wrote {wrote}, it has {truth:,}{breakdown}.{_param_hint(module)}")
    return False


def check_value(answer: Number | None, expected: Number, because: str = "", tolerance: float = 0.0) -> bool:
    """Is ``answer`` equal to ``expected`` (within ``tolerance``, relative)? For any number the
    notebook computes from real layers, e.g. a receptive field or a FLOP count.

    ``because`` is shown when the answer is wrong: how the expected value comes about.
    """
    if answer is None:
        print(NOT_YET)
        return False
    try:
        ok = abs(float(answer) - float(expected)) <= tolerance * abs(float(expected))
    except (TypeError, ValueError):
        ok = False
    shown = f"{expected:,}" if isinstance(expected, int) else f"{expected}"
    if ok:
        print(f"Right: {shown}.")
        return True
    print(f"Not quite: expected {shown}, not {answer!r}" + (f", because {because}." if because else "."))
    return False
