"""Where code runs and how hard it works: the device helper, the CPU's features and quick mode.

Every module asks these questions through this file, so that a notebook, a test and the
command line all pick the same device, the same CPU path and all shrink the same way in quick mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

QUICK_ENV = "D2LCNN_QUICK"

QUICK = {"epochs": 1, "steps": 5, "batch_size": 32, "eval_examples": 256}
"""What quick mode allows at most: epochs per fit, steps per epoch, batch size, test examples."""

BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}
"""The CPU flags (Linux's /proc/cpuinfo names) of instructions that compute bfloat16 in hardware."""


def default_device(device: str | torch.device | None = None) -> torch.device:
    """The device to train on: the one asked for, else CUDA, else Apple MPS, else the CPU.

    A device asked for that this machine does not have (``cuda`` without a GPU, a typo like
    ``gpu``) is refused with :class:`d2lcnn.guards.DeviceError`, which lists those it has.
    """
    if device is not None:
        from .guards import resolve_device

        return resolve_device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo; empty elsewhere (macOS, Windows)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set()
    return next((set(line.partition(":")[2].split()) for line in lines if line.startswith("flags")), set())


def native_bf16() -> str | None:
    """The name of this CPU's bfloat16 instructions ("AMX", "AVX512-BF16"), or None when it has none.

    Without them PyTorch still runs bfloat16 on the CPU, emulated with float32 instructions and
    conversions, which gains nothing over float32. So the Trainer uses bfloat16 only where this names
    something (``torch.backends.cpu.get_cpu_capability()`` says "AVX512" on both kinds of CPU).
    """
    flags = cpu_flags()
    return next((name for flag, name in BF16_FLAGS.items() if flag in flags), None)


def quick_mode() -> bool:
    """True when ``$D2LCNN_QUICK`` is set to anything but ``0``/``false``/empty.

    CI sets it so that every notebook runs in seconds on a CPU without a change to its code:
    the Trainer then caps epochs, steps, batch size and evaluation data at :data:`QUICK`.
    """
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")
