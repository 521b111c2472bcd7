"""Where code runs and how hard it works: the device helper and quick mode.

Every module asks these two questions through this file, so that a notebook, a test and the
command line all pick the same device and all shrink the same way in quick mode.
"""

from __future__ import annotations

import os

import torch

QUICK_ENV = "D2LCNN_QUICK"


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


def quick_mode() -> bool:
    """True when ``$D2LCNN_QUICK`` is set to anything but ``0``/``false``/empty.

    CI sets it so that every notebook runs in seconds on a CPU without a change to its code:
    the Trainer then caps epochs, steps and evaluation data (see ``d2lcnn.train``).
    """
    return os.environ.get(QUICK_ENV, "").strip().lower() not in ("", "0", "false", "no")
