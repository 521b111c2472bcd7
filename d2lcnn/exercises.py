"""Self-checks for the notebooks' exercises: the student writes an answer, we say right or not,
computing the truth from the real layers (never from a stored answer), and teach in two steps.

* The first wrong answer to a question gets a **hint**: what to look at and the formula, not
  the solution.
* The second wrong answer (and any after it) to the same question gets the **worked answer**.

A question is recognised by what it asks (the kind of check, the layers, the input shape or the
expected value), so editing the answer and rerunning the cell counts as the next try; pass
``question="..."`` to name it yourself, and :func:`reset` starts every question afresh.

Answers are read the same way everywhere: a number may be written ``2416``, ``"2,416"`` or
``"2_416"``; a shape as a tuple or list of whole numbers, or the same typed as a string,
``"(1, 6, 24, 24)"``. Anything else (a shape where a number is wanted, a word) is refused with
the form that is expected, and does not count as a try.

Each check prints one line, "Right: ...", "Not quite: ..." or "Not an answer yet: ...", and
returns True or False, so a cell can also ``assert`` it. An answer left as ``None`` asks for
one::

    answer = None   # a tuple like (N, C, H, W)
    exercises.check_output_shape(answer, nn.Conv2d(1, 6, 5), (1, 1, 28, 28))
"""

from __future__ import annotations

import re
from numbers import Number
from typing import Hashable, Sequence

from torch import nn

from .inspect import ShapeMismatchError, count_params, trace

__all__ = ["check_output_shape", "check_params", "check_value", "reset", "OUTPUT_SIZE"]

NOT_YET = "Write your answer in `answer` above and run the cell again."
OUTPUT_SIZE = "out = (in + 2*padding - kernel) // stride + 1"
"""The output side of a convolution or pooling layer (dilation 1), as the hints state it."""
AGAIN = "Try again: the next wrong answer shows the worked answer."

_wrong: dict[Hashable, int] = {}
"""Wrong answers so far, per question."""


def reset(question: Hashable | None = None) -> None:
    """Forget the wrong answers to ``question`` (every question when None): hints come first again."""
    if question is None:
        _wrong.clear()
    else:
        _wrong.pop(question, None)


def _second_try(question: Hashable) -> bool:
    """Count one more wrong answer to ``question``; True from the second on (show the answer)."""
    _wrong[question] = _wrong.get(question, 0) + 1
    return _wrong[question] >= 2


def _as_number(answer) -> float | None:
    """A number from an int, a float or a string like "2,416" / "2_416" / "0.25"; else None."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, str):
        answer = answer.replace(",", "").replace("_", "").strip()
    try:
        return float(answer)
    except (TypeError, ValueError):
        return None


def _as_int(answer) -> int | None:
    value = _as_number(answer)
    return int(value) if value is not None and value.is_integer() else None


def _as_shape(answer) -> tuple[int, ...] | None:
    """A shape from a tuple or list of whole numbers, or from a string like "(1, 6, 24, 24)"."""
    if isinstance(answer, str):
        text = answer.strip()
        if not re.fullmatch(r"[(\[]?\s*\d+\s*(,\s*\d+\s*)*,\s*(\d+\s*)?[)\]]?", text):   # a comma: a tuple
            return None
        answer = re.findall(r"\d+", text)
    if isinstance(answer, (Number, bool)) or answer is None:
        return None
    try:
        items = list(answer)
    except TypeError:
        return None
    shape = tuple(_as_int(a) if isinstance(a, str) else a for a in items)
    if not shape or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        return None
    return shape


def _shape_form(ndim: int) -> str:
    names = {2: "(N, features)", 3: "(N, C, L)", 4: "(N, C, H, W)"}
    return names.get(ndim, "(" + ", ".join(["n"] * ndim) + ")")


def _layers(model: nn.Module) -> str:
    """The leaf layers with their arguments, the way PyTorch prints them: what a hint points at."""
    leaves = [m for m in model.modules() if not any(True for _ in m.children())] or [model]
    return "; ".join(repr(m) for m in leaves)


def check_output_shape(answer: Sequence[int] | str | None, model: nn.Module, input_shape: Sequence[int],
                       hint: str = "", question: Hashable | None = None, because: str = "") -> bool:
    """Is ``answer`` the shape that ``model`` outputs for an input of ``input_shape``?

    First wrong answer: which dimensions are off, the layers to look at and the output-size
    formula (or ``hint`` when given). Second: the shape after every layer, or ``because`` when
    given: a block that concatenates its branches (Inception, a dense block) is not a chain of
    layers, and its worked answer has to show the concatenation.
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
    form = _shape_form(len(truth))
    shape = _as_shape(answer)
    if shape == truth:
        print(f"Right: {tuple(input_shape)} -> {truth}.")
        return True
    if shape is None:
        print(f"Not an answer yet: a shape is a tuple of {len(truth)} whole numbers like {form} "
              f"(or the same as a string), not {answer!r}.")
        return False
    question = question if question is not None else ("shape", repr(model), tuple(input_shape))
    if _second_try(question):
        if because:
            print(f"Not quite: you wrote {shape}; the output is {truth}, because {because}.")
            return False
        steps = " -> ".join(f"{r['type']} {r['output_shape']}" for r in rows if r["output_shape"] is not None)
        print(f"Not quite: you wrote {shape}; the output is {truth}. Layer by layer: {steps}. "
              f"Each side of a convolution or pooling: {OUTPUT_SIZE}.")
        return False
    if len(shape) != len(truth):
        off = (f"the output has {len(truth)} dimensions, {form}, starting with the batch dimension; "
               f"you wrote {len(shape)}")
    else:
        names = ["batch", "channels", "height", "width"] if len(truth) == 4 else [f"dimension {i}" for i in range(len(truth))]
        wrong = [n for n, a, b in zip(names, shape, truth) if a != b]
        off = f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not right"
    look = hint or (f"Go layer by layer ({_layers(model)}): the channels are the last convolution's "
                    f"out_channels; each side is {OUTPUT_SIZE}.")
    print(f"Not quite: {off}. Hint: {look} {AGAIN}")
    return False


def _param_formula(module: nn.Module) -> str:
    kinds = {type(m) for m in module.modules()}
    parts = []
    if any(issubclass(k, nn.modules.conv._ConvNd) for k in kinds):
        parts.append("a convolution has out_channels x (in_channels / groups) x kernel height x kernel width"
                     " weights plus one bias per output channel")
    if nn.Linear in kinds:
        parts.append("a linear layer has in_features x out_features weights plus one bias per output")
    if any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds):
        parts.append("BatchNorm learns a scale and a shift per channel; its running mean and variance are"
                     " buffers, not parameters")
    if not any(True for _ in module.parameters()):
        parts.append("activations, pooling, dropout and flattening have no parameters")
    return "; ".join(parts)


def check_params(answer: int | str | None, module: nn.Module, hint: str = "",
                 question: Hashable | None = None) -> bool:
    """Is ``answer`` the number of parameters of ``module``?

    First wrong answer: too many or too few, the layers that hold parameters and the formula
    (or ``hint`` when given). Second: the count, tensor by tensor.
    """
    if answer is None:
        print(NOT_YET)
        return False
    truth = count_params(module)
    value = _as_int(answer)
    if value == truth:
        print(f"Right: {truth:,} parameters.")
        return True
    if value is None:
        print(f"Not an answer yet: a parameter count is one whole number like 1234 or '1,234', "
              f"not {answer!r}.")
        return False
    question = question if question is not None else ("params", repr(module))
    formula = _param_formula(module)
    if _second_try(question):
        parts = [f"{name} {tuple(p.shape)} = {p.numel():,}" for name, p in module.named_parameters()]
        breakdown = f": {'; '.join(parts)}" if parts else ""
        print(f"Not quite: you wrote {value:,}; it has {truth:,}{breakdown}. ({formula[0].upper() + formula[1:]}.)")
        return False
    holders = [repr(m) for m in module.modules()
               if not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))]
    where = f" The layers with parameters: {'; '.join(holders)}." if holders else ""
    look = hint or f"{formula[0].upper() + formula[1:]}.{where}"
    print(f"Not quite: {value:,} is too {'many' if value > truth else 'few'}. Hint: {look} {AGAIN}")
    return False


def check_value(answer: Number | str | None, expected: Number, because: str = "", tolerance: float = 0.0,
                hint: str = "", question: Hashable | None = None) -> bool:
    """Is ``answer`` equal to ``expected`` (within ``tolerance``, relative)? For any number the
    notebook computes from real layers, e.g. a receptive field or a FLOP count.

    First wrong answer: ``hint`` (what to look at, the formula). Second: the expected value and
    ``because``, how it comes about.
    """
    if answer is None:
        print(NOT_YET)
        return False
    shown = f"{expected:,}" if isinstance(expected, int) else f"{expected}"
    value = _as_number(answer)
    if value is None:
        form = "a whole number like 1234 or '1,234'" if isinstance(expected, int) else "a number like 0.25"
        print(f"Not an answer yet: the answer is {form}, not {answer!r}.")
        return False
    if abs(value - float(expected)) <= tolerance * abs(float(expected)):
        print(f"Right: {shown}.")
        return True
    question = question if question is not None else ("value", repr(expected), because)
    wrote = f"{int(value):,}" if value.is_integer() else f"{value:g}"
    if _second_try(question):
        print(f"Not quite: you wrote {wrote}; the answer is {shown}" + (f", because {because}." if because else "."))
        return False
    direction = "too high" if value > float(expected) else "too low"
    print(f"Not quite: {wrote} is {direction}." + (f" Hint: {hint}" if hint else "") + f" {AGAIN}")
    return False
