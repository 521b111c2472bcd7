"""Self-checks for the notebooks' exercises: the student writes an answer, we say right or not,
computing the truth from the real layers (never from a stored answer), and teach in two steps.

* The first wrong answer to a question gets a **hint**: what to look at and the formula, not
  the solution.
* The second wrong answer (and any after it) to the same question gets the **worked answer**.

A question is recognised by what it asks (the kind of check, the layers, the input shape or the
expected value), so editing the answer and rerunning the cell counts as the next try; pass
``question="..."`` to name it yourself, and :func:`reset` starts every question afresh.

Running the cell again with the *same* wrong answer repeats the hint: only a new wrong answer
counts as the next try.

Answers are read the same way everywhere: a number may be written ``2416``, ``"2,416"`` or
``"2_416"``; a shape as a tuple or list of whole numbers, or the same typed as a string,
``"(1, 6, 24, 24)"``. Anything else (a shape where a number is wanted, a word, bytes, ``nan``
or infinity, a number too large for any layer) is refused with the form that is expected, and
does not count as a try; a long answer is quoted shortened, never echoed whole.

Each check prints one line, "Right: ...", "Not quite: ..." or "Not an answer yet: ...", and
returns a :class:`Verdict`, true when right, so a cell can also ``assert`` it; a notebook shows
nothing for it under the message. An answer left as ``None`` asks for one::

    answer = None   # a tuple like (N, C, H, W)
    exercises.check_output_shape(answer, nn.Conv2d(1, 6, 5), (1, 1, 28, 28))
"""

from __future__ import annotations

import math
import re
from numbers import Number
from typing import Hashable, Sequence

from torch import nn

from .inspect import ShapeMismatchError, count_params, trace

__all__ = ["check_output_shape", "check_params", "check_receptive_field", "check_value", "reset", "Verdict",
           "OUTPUT_SIZE"]

NOT_YET = "Write your answer in `answer` above and run the cell again."
OUTPUT_SIZE = "out = (in + 2*padding - kernel) // stride + 1"
"""The output side of a convolution or pooling layer (dilation 1), as the hints state it."""
AGAIN = "Try again: the next wrong answer shows the worked answer."
SAME = ("That is the answer you ran before: change `answer`, then run the cell again "
        "(a different wrong answer shows the worked answer).")
QUOTE = 60
"""At most this many characters of a refused answer are quoted back."""
MAX_DIMS = 8
"""A shape with more numbers than this is not an answer (and is never printed whole)."""

_wrong: dict[Hashable, list] = {}
"""The distinct wrong answers so far, per question."""


class Verdict:
    """What a check returns: true when the answer was right, so that ``assert check(...)`` works.

    Unlike ``True``/``False`` it shows nothing when it ends a notebook cell: the printed line is
    the message, and a bare ``True`` under it would only distract.
    """

    __slots__ = ("right",)

    def __init__(self, right: bool):
        self.right = bool(right)

    def __bool__(self) -> bool:
        return self.right

    def __eq__(self, other) -> bool:
        return self.right == bool(other) if isinstance(other, (bool, Verdict)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.right)

    def __repr__(self) -> str:
        return f"Verdict(right={self.right})"

    def _ipython_display_(self) -> None:    # IPython calls this instead of showing Out[n]: show nothing
        pass


RIGHT, WRONG = Verdict(True), Verdict(False)


def reset(question: Hashable | None = None) -> None:
    """Forget the wrong answers to ``question`` (every question when None): hints come first again."""
    if question is None:
        _wrong.clear()
    else:
        _wrong.pop(question, None)


def _wrong_try(question: Hashable, answer) -> tuple[bool, bool]:
    """Record a wrong ``answer`` to ``question``: (show the worked answer?, the same answer as before?).

    Only a *new* wrong answer counts: rerunning the cell unchanged repeats what the last run said.
    """
    tried = _wrong.setdefault(question, [])
    repeated = answer in tried
    if not repeated:
        tried.append(answer)
    return len(tried) >= 2, repeated


def _quote(answer) -> str:
    """``repr(answer)``, shortened to about QUOTE characters: a 10 MB answer is not echoed back."""
    if isinstance(answer, (str, bytes, bytearray, list, tuple)) and len(answer) > 10 * QUOTE:
        answer = answer[:2 * QUOTE]              # repr of the head only: never of the whole thing
    try:
        text = repr(answer)
    except Exception:                            # a repr that fails (or an int too long to print)
        text = f"a {type(answer).__name__}"
    return text if len(text) <= QUOTE else f"{text[:QUOTE - 5]}...{text[-3:]} (shortened)"


def _refused(answer) -> str | None:
    """Why ``answer`` cannot be read as any answer at all, or None: bytes (whose items are
    character codes), text far longer than any answer, nan or infinity, a number too large for
    any layer. A refused answer never counts as a try."""
    if isinstance(answer, (bytes, bytearray)):
        return (f"{_quote(answer)} is bytes, not text: write the answer without the b prefix, "
                "as a number, a tuple or a string")
    if isinstance(answer, str) and len(answer) > 10 * QUOTE:
        return f"{_quote(answer)} is {len(answer):,} characters long, far longer than any answer here"
    if isinstance(answer, bool) or not isinstance(answer, (Number, str)):
        return None
    try:
        value = float(answer.replace(",", "").replace("_", "").strip() if isinstance(answer, str) else answer)
    except OverflowError:
        return "a number of over 300 digits is far too large for any answer here"
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return f"{_quote(answer)} is nan, not a number"
    if math.isinf(value) or abs(value) > 1e300:
        return f"{_quote(answer)} is far too large for any answer here"
    return None


def _not_yet(answer, form: str) -> Verdict:
    """Refuse ``answer`` in one line that says why and gives the ``form`` expected; nothing is counted."""
    why = _refused(answer)
    print(f"Not an answer yet: {why}; {form}." if why else f"Not an answer yet: {form}, not {_quote(answer)}.")
    return WRONG


def _as_number(answer) -> float | None:
    """A finite number from an int, a float or a string like "2,416" / "2_416" / "0.25"; else None."""
    if isinstance(answer, bool) or _refused(answer):
        return None
    if isinstance(answer, str):
        answer = answer.replace(",", "").replace("_", "").strip()
    try:
        return float(answer)
    except (TypeError, ValueError, OverflowError):
        return None


def _as_int(answer) -> int | None:
    value = _as_number(answer)
    return int(value) if value is not None and value.is_integer() else None


def _whole_number(answer, truth: int, right: str, form: str) -> tuple[Verdict | None, int | None]:
    """The first steps of a check whose answer is one whole number: none yet, right (``right`` is
    printed) or not a whole number (refused, saying the ``form``). Returns the verdict that ends the
    check, or ``(None, value)``: a wrong number, for the check's own hints."""
    if answer is None:
        print(NOT_YET)
        return WRONG, None
    value = _as_int(answer)
    if value == truth:
        print(right)
        return RIGHT, value
    if value is None:
        return _not_yet(answer, form), None
    return None, value


def _as_shape(answer) -> tuple[int, ...] | None:
    """A shape from a tuple or list of whole numbers, or from a string like "(1, 6, 24, 24)"."""
    if _refused(answer):
        return None
    if isinstance(answer, str):
        text = answer.strip()
        if not re.fullmatch(r"[(\[]?\s*\d+\s*(,\s*\d+\s*)*,\s*(\d+\s*)?[)\]]?", text):   # a comma: a tuple
            return None
        answer = re.findall(r"\d+", text)
    if isinstance(answer, (Number, bool)) or answer is None:
        return None
    try:
        if len(answer) > MAX_DIMS:
            return None
        items = list(answer)
    except TypeError:
        return None
    if any(_refused(a) for a in items):
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
                       hint: str = "", question: Hashable | None = None, because: str = "") -> Verdict:
    """Is ``answer`` the shape that ``model`` outputs for an input of ``input_shape``?

    First wrong answer: which dimensions are off, the layers to look at and the output-size
    formula (or ``hint`` when given). Second: the shape after every layer, or ``because`` when
    given: a block that concatenates its branches (Inception, a dense block) is not a chain of
    layers, and its worked answer has to show the concatenation.
    """
    if answer is None:
        print(NOT_YET)
        return WRONG
    try:
        rows, out = trace(model, input_shape)
    except ShapeMismatchError as err:
        print(f"The input itself does not fit: {err}")
        return WRONG
    truth = tuple(out.shape)
    form = _shape_form(len(truth))
    shape = _as_shape(answer)
    if shape == truth:
        print(f"Right: {tuple(input_shape)} -> {truth}.")
        return RIGHT
    if shape is None:
        return _not_yet(answer, f"a shape is a tuple of {len(truth)} whole numbers like {form} "
                                "(or the same as a string)")
    question = question if question is not None else ("shape", repr(model), tuple(input_shape))
    worked, same = _wrong_try(question, shape)
    if worked:
        if because:
            print(f"Not quite: you wrote {_quote(shape)}; the output is {truth}, because {because}.")
            return WRONG
        steps = " -> ".join(f"{r['type']} {r['output_shape']}" for r in rows if r["output_shape"] is not None)
        print(f"Not quite: you wrote {_quote(shape)}; the output is {truth}. Layer by layer: {steps}. "
              f"Each side of a convolution or pooling: {OUTPUT_SIZE}.")
        return WRONG
    if len(shape) != len(truth):
        off = (f"the output has {len(truth)} dimensions, {form}, starting with the batch dimension; "
               f"you wrote {len(shape)}")
    else:
        names = ["batch", "channels", "height", "width"] if len(truth) == 4 else [f"dimension {i}" for i in range(len(truth))]
        wrong = [n for n, a, b in zip(names, shape, truth) if a != b]
        off = f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not right"
    look = hint or (f"Go layer by layer ({_layers(model)}): the channels are the last convolution's "
                    f"out_channels; each side is {OUTPUT_SIZE}.")
    print(f"Not quite: {off}. Hint: {look} {SAME if same else AGAIN}")
    return WRONG


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
                 question: Hashable | None = None) -> Verdict:
    """Is ``answer`` the number of parameters of ``module``?

    First wrong answer: too many or too few, the layers that hold parameters and the formula
    (or ``hint`` when given). Second: the count, tensor by tensor.
    """
    truth = count_params(module)
    verdict, value = _whole_number(answer, truth, f"Right: {truth:,} parameters.",
                                   "a parameter count is one whole number like 1234 or '1,234'")
    if verdict is not None:
        return verdict
    question = question if question is not None else ("params", repr(module))
    formula = _param_formula(module)
    worked, same = _wrong_try(question, value)
    if worked:
        parts = [f"{name} {tuple(p.shape)} = {p.numel():,}" for name, p in module.named_parameters()]
        breakdown = f": {'; '.join(parts)}" if parts else ""
        print(f"Not quite: you wrote {value:,}; it has {truth:,}{breakdown}. ({formula[0].upper() + formula[1:]}.)")
        return WRONG
    holders = [repr(m) for m in module.modules()
               if not any(True for _ in m.children()) and any(True for _ in m.parameters(recurse=False))]
    where = f" The layers with parameters: {'; '.join(holders)}." if holders else ""
    look = hint or f"{formula[0].upper() + formula[1:]}.{where}"
    print(f"Not quite: {value:,} is too {'many' if value > truth else 'few'}. Hint: {look} {SAME if same else AGAIN}")
    return WRONG


def check_value(answer: Number | str | None, expected: Number, because: str = "", tolerance: float = 0.0,
                hint: str = "", question: Hashable | None = None) -> Verdict:
    """Is ``answer`` equal to ``expected`` (within ``tolerance``, relative)? For any number the
    notebook computes from real layers, e.g. a FLOP count.

    First wrong answer: ``hint`` (what to look at, the formula). Second: the expected value and
    ``because``, how it comes about. ``because`` is written in the cell the student edits: it
    may say how (the formula, the values it starts from) but never the result.
    """
    if answer is None:
        print(NOT_YET)
        return WRONG
    shown = f"{expected:,}" if isinstance(expected, int) else f"{expected}"
    value = _as_number(answer)
    if value is None:
        return _not_yet(answer, "the answer is " + ("a whole number like 1234 or '1,234'"
                                                      if isinstance(expected, int) else "a number like 0.25"))
    if abs(value - float(expected)) <= tolerance * abs(float(expected)):
        print(f"Right: {shown}.")
        return RIGHT
    question = question if question is not None else ("value", repr(expected), because)
    wrote = f"{int(value):,}" if value.is_integer() else f"{value:g}"
    worked, same = _wrong_try(question, value)
    if worked:
        print(f"Not quite: you wrote {wrote}; the answer is {shown}" + (f", because {because}." if because else "."))
        return WRONG
    direction = "too high" if value > float(expected) else "too low"
    print(f"Not quite: {wrote} is {direction}." + (f" Hint: {hint}" if hint else "") + f" {SAME if same else AGAIN}")
    return WRONG


FIELD = ("a layer of kernel k and dilation d spans d*(k-1)+1 of its input's positions; the field grows by "
         "(span - 1) x jump, where the jump (input pixels between neighbouring units) is the product of "
         "the strides before the layer; one pixel sees a field of 1")
"""How a receptive field grows, as the hint of :func:`check_receptive_field` states it."""


def check_receptive_field(answer: int | str | None, model: nn.Module, input_shape: Sequence[int],
                          hint: str = "", question: Hashable | None = None) -> Verdict:
    """Is ``answer`` the side, in input pixels, of the receptive field of one unit of ``model``'s
    last layer (the larger side when they differ)?

    Computed from the real layers (:func:`d2lcnn.viz.receptive_fields`), so that the cell the
    student edits holds no worked answer. First wrong answer: the rule (or ``hint``). Second:
    the field after every layer, with each layer's kernel, dilation and stride.
    """
    from .viz.receptive import receptive_fields

    wrapped = model if any(True for _ in model.children()) else nn.Sequential(model)   # rows name children
    layers = dict(wrapped.named_modules())
    rows = [r for r in receptive_fields(wrapped, tuple(input_shape)) if hasattr(layers[r["name"]], "kernel_size")]
    truth = int(rows[-1]["rf"])
    verdict, value = _whole_number(answer, truth, f"Right: one unit sees {truth}x{truth} input pixels.",
                                   "a receptive field is one whole number of pixels, the side of the square")
    if verdict is not None:
        return verdict
    question = question if question is not None else ("field", repr(model), tuple(input_shape))
    worked, same = _wrong_try(question, value)
    if worked:
        steps = "; ".join(f"{_field_step(layers[r['name']])} -> {int(r['rf'])}" for r in rows)
        print(f"Not quite: you wrote {value:,}; one unit sees {truth}x{truth} input pixels. The field, from 1 "
              f"pixel, after each layer: {steps}.")
        return WRONG
    print(f"Not quite: {value:,} is too {'wide' if value > truth else 'narrow'}. Hint: {hint or FIELD}. "
          f"{SAME if same else AGAIN}")
    return WRONG


def _field_step(layer: nn.Module) -> str:
    """"Conv2d (kernel 3, dilation 2, stride 1)": what sets a layer's step of a receptive field."""
    parts = []
    for attr in ("kernel_size", "dilation", "stride"):
        value = getattr(layer, attr, 1)
        value = value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value
        parts.append(f"{attr.split('_')[0]} {value}")
    return f"{type(layer).__name__} ({', '.join(parts)})"
