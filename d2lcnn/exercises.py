"""Self-checks for the notebooks' exercises: the student writes an answer, we say right or wrong
and why, by computing the true value from the real layers (never from a stored answer).

Each check prints one verdict and returns True or False, so a cell can also ``assert`` it.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from .inspect import ShapeMismatchError, count_params, trace

NOT_YET = "Write your answer in `answer` above and run the cell again."


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
    if tuple(int(a) for a in answer) == truth:
        print(f"Right: {tuple(input_shape)} -> {truth}.")
        return True
    steps = " -> ".join(f"{r['type']} {r['output_shape']}" for r in rows if r["output_shape"] is not None)
    print(f"Not quite: you wrote {tuple(answer)}, the output is {truth}. Layer by layer: {steps}. "
          "For a convolution or pooling: out = (in + 2*padding - kernel) // stride + 1.")
    return False


def check_params(answer: int | None, module: nn.Module) -> bool:
    """Is ``answer`` the number of parameters of ``module``? Explains the count when it is not."""
    if answer is None:
        print(NOT_YET)
        return False
    truth = count_params(module)
    if int(answer) == truth:
        print(f"Right: {truth:,} parameters.")
        return True
    parts = [f"{name} {tuple(p.shape)} = {p.numel():,}" for name, p in module.named_parameters()]
    hint = ""
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size
        hint = (f" A convolution has out_channels x (in_channels / groups) x {k[0]}x{k[1]} weights"
                " plus one bias per output channel.")
    elif isinstance(module, nn.Linear):
        hint = " A linear layer has in_features x out_features weights plus one bias per output."
    print(f"Not quite: you wrote {int(answer):,}, it has {truth:,}: {'; '.join(parts)}.{hint}")
    return False

