"""The checkpoint file: written atomically, read strictly, all or nothing.

A checkpoint is a ``torch.save`` of plain data, so it loads with ``weights_only=True`` (no code
runs when a file is opened). It holds the model's weights, the optimizer's state, the history,
the recipe, the data pipeline's settings, how far training went (``epoch``), for a fit
that was interrupted, where in it (``plan``), and for a float16 run its gradient scaler
(``scaler``, optional: files without it load as before).

* :func:`save` writes beside the destination and renames over it only when complete: a crash
  or a kill mid-write leaves the previous checkpoint intact. Temporary files carry the writer's
  process id, so the next save removes those left by a killed process. The file gets the
  user's normal file mode (as ``open`` would give it), not a temporary file's private one.
* :func:`read` checks everything before anyone uses it: the format marker (a file of another
  format version says which), every required key and its type, and the recipe's fields. The
  Trainer then checks the architecture and the shapes, and changes nothing until all passed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import torch

FORMAT = "d2lcnn-checkpoint-2"
"""The format this version writes and reads. Version 1 had no data settings and no partial epoch."""

REQUIRED = {"format": str, "arch": str, "model": dict, "optimizer": dict, "history": list, "recipe": dict,
            "data": dict, "epoch": int, "plan": (dict, type(None))}
"""Every key a checkpoint must have, and its type."""

OPTIONAL = {"scaler": dict}
"""Keys a checkpoint may have, and their type: ``scaler``, the float16 gradient scaler's state."""


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can load here, or one that does not fit the model."""


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of saves to ``path`` whose writing process no longer runs."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def save(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` (which must have every key of :data:`REQUIRED`) to ``path`` atomically."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise ValueError(f"a checkpoint needs {', '.join(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = _temp_name(path)
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any file the user creates.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def read(path: str | os.PathLike, map_location=None) -> dict:
    """The checkpoint at ``path``, checked: format, required keys and their types.

    Raises FileNotFoundError for a missing file and CheckpointError, saying what is wrong, for
    anything else that is not a checkpoint this version can load.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable d2lcnn checkpoint ({type(exc).__name__}: {exc}). "
                              "Was it written by Trainer.save or `python -m d2lcnn train --out`?") from None
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{path} is not a d2lcnn checkpoint: it has no '{FORMAT}' marker "
                              "(a plain state_dict? load it with model.load_state_dict(torch.load(...))).")
    if state["format"] != FORMAT:
        raise CheckpointError(f"{path} is a checkpoint of format {state['format']!r}; this version of d2lcnn "
                              f"reads {FORMAT!r}. Train it again, or use the d2lcnn version that wrote it.")
    problems = [f"no '{key}'" for key in REQUIRED if key not in state]
    problems += [f"'{key}' is a {type(state[key]).__name__}, not a "
                 f"{' or '.join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))}"
                 for key, kind in {**REQUIRED, **OPTIONAL}.items() if key in state and not isinstance(state[key], kind)]
    if problems:
        raise CheckpointError(f"{path} is an incomplete or damaged checkpoint: {'; '.join(problems)}. Nothing was loaded.")
    return state


def check_fields(path: str | os.PathLike, what: str, stored: dict, known: list[str]) -> None:
    """Refuse ``stored`` (the recipe or data settings of a checkpoint) unless it has exactly ``known``."""
    unknown = sorted(set(stored) - set(known))
    missing = sorted(set(known) - set(stored))
    if unknown or missing:
        parts = ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])
        raise CheckpointError(f"{path}: its {what} does not match this version of d2lcnn ({'; '.join(parts)}). "
                              "Nothing was loaded.")
