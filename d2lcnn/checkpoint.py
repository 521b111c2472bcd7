"""The checkpoint file: written atomically, read strictly, all or nothing.

A checkpoint is a ``torch.save`` of plain data, so it loads with ``weights_only=True`` (no code
runs when a file is opened). It holds the model's weights, the optimizer's state, the history,
the recipe, the data pipeline's settings, how far training went (``epoch``) and, for a fit
that was interrupted, where in it (``plan``); the model's structure (every module's type and
settings, so that a LeNet built with ReLU is told apart from the sigmoid one of the same name
and shapes) and a checksum of all of it. A float16 run also keeps its gradient scaler's state
(``scaler``), and a network built with plain keyword arguments keeps them (``build``, e.g.
``{"adaptive_pool": True}``); both are optional: files without them load as before.

* :func:`save` writes beside the destination and renames over it only when complete: a crash
  or a kill mid-write leaves the previous checkpoint intact. Temporary files carry the writer's
  process id, so the next save removes those left by a killed process. The file gets the
  user's normal file mode (as ``open`` would give it), not a temporary file's private one.
* :func:`read` checks everything before anyone uses it: the format marker (a file of another
  format version says which), every required key and its type, the checksum (torch does not
  verify its archive's CRCs, so a flipped byte would load silently), and every value that
  could not have been written by a run (a negative epoch, a NaN weight, a garbled history or
  plan).
* For the Trainer (``Trainer.save``, ``load``, ``from_checkpoint``): :func:`state_of` gathers
  what a Trainer writes; :func:`check_model` (architecture, shapes, structure), :func:`recipe_of`,
  :func:`data_settings`, :func:`check_optimizer` and :func:`scaler_of` each check one part of a
  file against the Trainer that is to receive it, so that ``load`` checks everything before it
  changes anything; :func:`network_of` builds the registered network a file holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
from numbers import Real
from pathlib import Path

import torch
from torch import nn

from . import models as registry
from .recipe import DATA_SETTINGS, Recipe

FORMAT = "d2lcnn-checkpoint-3"
"""The format this version writes. Version 2 had no structure and no checksum; it is still read."""

READABLE = ("d2lcnn-checkpoint-2", FORMAT)
"""The formats this version reads. Version 1 had no data settings and no partial epoch."""

REQUIRED = {"format": str, "arch": str, "model": dict, "optimizer": dict, "history": list, "recipe": dict,
            "data": dict, "epoch": int, "plan": (dict, type(None)), "structure": list, "checksum": str}
"""Every key a checkpoint must have, and its type."""

ADDED_IN_3 = ("structure", "checksum")
"""The keys a version-2 file lacks."""

OPTIONAL = {"scaler": dict, "build": dict}
"""Keys a checkpoint may have, and their type: ``scaler``, the float16 gradient scaler's state;
``build``, the keyword arguments of ``models.build`` the network was built with."""

PLAIN = (bool, int, float, str, type(None))
"""The values a recorded build argument may have (a file loads with ``weights_only=True``)."""

PLAN = {"start": int, "end": int, "steps": int, "step": int, "done": bool, "partial": (dict, type(None)),
        "warned": list}
"""The keys of an interrupted fit's plan, and their types."""

PARTIAL = ("loss", "correct", "nonfinite", "seen", "seconds")
"""What a plan keeps of a partly trained epoch (its running sums)."""

PARTIAL_OPTIONAL = ("skipped",)
"""What a float16 run's plan keeps too: the steps its gradient scaler skipped."""

NUMBERS = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "examples_per_s")
"""The fields of a history record that hold a number (or None)."""


class CheckpointError(ValueError):
    """A file that is not a checkpoint we can load here, or one that does not fit the model."""


# ----------------------------------------------------------------------------------------------
# What a checkpoint records about itself
# ----------------------------------------------------------------------------------------------

def structure(model: nn.Module) -> list[str]:
    """Every module of ``model`` as ``name: Type(settings)``, in order: what ``print(model)`` shows.

    Two networks with the same weights' names and shapes can still differ (ReLU or sigmoid,
    max or average pooling); this list tells them apart.
    """
    return [f"{name or '(model)'}: {type(m).__name__}({m.extra_repr()})" for name, m in model.named_modules()]


def structure_differences(theirs: list[str], ours: list[str], limit: int = 3) -> list[str]:
    """The first ``limit`` modules where two structures differ, each naming both sides."""
    found = []
    for a, b in zip(theirs, ours):
        (name_a, _, kind_a), (name_b, _, kind_b) = a.partition(": "), b.partition(": ")
        if a != b:
            found.append(f"layer {name_a} is {kind_a} in the file, {kind_b} in the model" if name_a == name_b
                         else f"{a} in the file, {b} in the model")
    found += [f"{a} in the file only" for a in theirs[len(ours):]]
    found += [f"{b} in the model only" for b in ours[len(theirs):]]
    return found[:limit] + ([f"and {len(found) - limit} more"] if len(found) > limit else [])


def _feed(h, value) -> None:
    """Feed ``value`` (plain data and tensors, as a weights_only file holds) to the hash ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(value.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for key in sorted(value, key=repr):
            _feed(h, key)
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for item in value:
            _feed(h, item)
    elif isinstance(value, float):
        h.update(f"F{value.hex()}".encode())
    else:   # str, int, bool, None, and anything else torch may unpickle (torch.Size, a dtype)
        h.update(f"{type(value).__name__}:{value!r};".encode())


def checksum(state: dict) -> str:
    """SHA-256 of every field of ``state`` but the checksum itself: weights, history, plan, all."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "checksum"})
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------

def temp_name(path: Path) -> Path:
    """The temporary file a save to ``path`` writes first (``.NAME.PID.RANDOM.tmp`` beside it)."""
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
    """Write ``state`` (every key of :data:`REQUIRED` but the checksum, which is added) to ``path``
    atomically.

    A failed write raises what the writer raised: ``OSError``, or the ``RuntimeError`` that
    torch's archive writer turns a full disk into; the file at ``path`` is then unchanged.
    """
    missing = [k for k in REQUIRED if k not in state and k != "checksum"]
    if missing:
        raise ValueError(f"a checkpoint needs {', '.join(missing)}")
    state = {**state, "format": FORMAT}
    state["checksum"] = checksum(state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temp_name(path)
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


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def read(path: str | os.PathLike, map_location=None) -> dict:
    """The checkpoint at ``path``, checked: format, required keys and their types, checksum, values.

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
    if state["format"] not in READABLE:
        raise CheckpointError(f"{path} is a checkpoint of format {state['format']!r}; this version of d2lcnn "
                              f"reads {' and '.join(map(repr, READABLE))}. Train it again, or use the d2lcnn "
                              "version that wrote it.")
    required = {k: v for k, v in REQUIRED.items() if state["format"] == FORMAT or k not in ADDED_IN_3}
    problems = [f"no '{key}'" for key in required if key not in state]
    problems += [f"'{key}' is a {type(state[key]).__name__}, not a {_names(kind)}"
                 for key, kind in {**required, **OPTIONAL}.items() if key in state and not _is(state[key], kind)]
    if problems:
        raise CheckpointError(f"{path} is an incomplete or damaged checkpoint: {'; '.join(problems)}. Nothing was loaded.")
    if "checksum" in required and checksum(state) != state["checksum"]:
        raise CheckpointError(f"{path} is damaged: its contents do not match the checksum written with them "
                              "(a changed byte: a bad copy or disk, or an edit). Nothing was loaded. Use another "
                              "copy of the file, or train again.")
    problems = _impossible(state)
    if problems:
        raise CheckpointError(f"{path} holds values no training run writes: {'; '.join(problems[:4])}"
                              f"{'; ...' if len(problems) > 4 else ''}. Nothing was loaded. Use another copy "
                              "of the file, or train again.")
    return state


def _is(value, kind) -> bool:
    """isinstance, but a bool is not an int (True is not an epoch)."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _names(kind) -> str:
    return " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _impossible(state: dict) -> list[str]:
    """Everything in ``state`` that a run could not have written, as short phrases (none: fine)."""
    problems = []
    if not state["arch"]:
        problems.append("an empty 'arch'")
    for key, value in state["model"].items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            problems.append(f"weight {key!r} is a {type(value).__name__}, not a tensor")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            problems.append(f"weight {key!r} has {bad} NaN/infinite value{'s' if bad != 1 else ''} of {value.numel()}")
    opt = state["optimizer"]
    if not isinstance(opt.get("state"), dict) or not isinstance(opt.get("param_groups"), list):
        problems.append("'optimizer' lacks its 'state' dict or its 'param_groups' list")
    epoch = state["epoch"]
    if epoch < 0:
        problems.append(f"epoch {epoch}, below 0")
    if "structure" in state and not all(isinstance(s, str) for s in state["structure"]):
        problems.append("'structure' is not a list of texts")
    for i, record in enumerate(state["history"]):
        if not isinstance(record, dict):
            problems.append(f"history[{i}] is a {type(record).__name__}, not a record (dict)")
            continue
        e = record.get("epoch")
        if not _is(e, int) or not 1 <= e <= epoch + 1:
            problems.append(f"history[{i}] has epoch {e!r}, not a whole number in 1..{epoch + 1}")
        wrong = [k for k in NUMBERS if record.get(k) is not None and not _number(record[k])]
        if wrong:
            problems.append(f"history[{i}] has {', '.join(f'{k}={record[k]!r}' for k in wrong)}, not numbers")
    if state["plan"] is not None:
        problems += _impossible_plan(state["plan"], epoch)
    return problems


def _impossible_plan(plan: dict, epoch: int) -> list[str]:
    """What is wrong with an interrupted fit's ``plan`` (where it stopped) for a model at ``epoch``."""
    missing = [k for k in PLAN if k not in plan]
    if missing:
        return [f"the plan lacks {', '.join(missing)} (it has {', '.join(map(str, plan)) or 'nothing'})"]
    wrong = [f"plan {k}={plan[k]!r} is not a {_names(kind)}" for k, kind in PLAN.items() if not _is(plan[k], kind)]
    if wrong:
        return wrong
    start, end, steps, step = plan["start"], plan["end"], plan["steps"], plan["step"]
    if not (0 <= start <= epoch <= end and start < end and steps >= 1):
        return [f"plan epochs {start}..{end} of {steps} steps do not hold epoch {epoch}"]
    if not plan["done"] and not (epoch - start) * steps <= step <= (epoch - start + 1) * steps:
        return [f"plan step {step} is not in epoch {epoch + 1} (steps {(epoch - start) * steps}.."
                f"{(epoch - start + 1) * steps})"]
    problems = []
    partial = plan["partial"]
    if partial is not None and (not set(PARTIAL) <= set(partial) <= {*PARTIAL, *PARTIAL_OPTIONAL}
                                or not all(_number(v) and v >= 0 for v in partial.values())):
        problems.append(f"plan partial={partial!r} is not the running sums {', '.join(PARTIAL)}")
    if not all(isinstance(w, str) for w in plan["warned"]):
        problems.append("plan warned is not a list of texts")
    return problems


def check_fields(path: str | os.PathLike, what: str, stored: dict, known: list[str]) -> None:
    """Refuse ``stored`` (the recipe or data settings of a checkpoint) unless it has exactly ``known``."""
    unknown = sorted(set(stored) - set(known))
    missing = sorted(set(known) - set(stored))
    if unknown or missing:
        parts = ([f"unknown {', '.join(map(str, unknown))}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])
        raise CheckpointError(f"{path}: its {what} does not match this version of d2lcnn ({'; '.join(parts)}). "
                              "Nothing was loaded.")


# ----------------------------------------------------------------------------------------------
# A Trainer's checkpoint: what goes in, and what must fit before anything comes out
# ----------------------------------------------------------------------------------------------

def copy_plan(plan: dict) -> dict:
    """A copy of a fit's plan (nested dicts and lists copied too)."""
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in plan.items()}


def state_of(trainer) -> dict:
    """What :func:`save` writes for ``trainer``: model, optimizer, history, recipe, data settings,
    position, the plan of an interrupted fit, the model's structure, and a float16 run's scaler."""
    state = {"format": FORMAT, "arch": trainer.name,
             "model": {k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
             "optimizer": trainer.optimizer.state_dict(), "history": trainer.history,
             "recipe": dataclasses.asdict(trainer.recipe),
             "data": {key: getattr(trainer.data, key) for key in DATA_SETTINGS},
             "epoch": trainer.epoch,
             "plan": copy_plan(trainer.plan) if trainer.plan else None,
             "structure": structure(trainer.model)}
    if trainer.scaler is not None:    # float16: a resumed run goes on at the scale it had found
        state["scaler"] = trainer.scaler.state_dict()
    if recordable(trainer.build):
        state["build"] = dict(trainer.build)
    return state


def recordable(kwargs: dict) -> bool:
    """True when ``kwargs`` (a network's ``models.build`` arguments) are plain values a checkpoint
    can record; an argument such as ``activation=nn.ReLU`` is not, and such a network is rebuilt by
    hand (``Trainer(model, ...).load(path)``; its recorded structure tells a wrong rebuild)."""
    return bool(kwargs) and all(isinstance(v, PLAIN) for v in kwargs.values())


def network_of(path: str | os.PathLike, state: dict) -> nn.Module:
    """A fresh network of the registered architecture a checkpoint holds (``arch``
    "resnet18/fashion"), built with the arguments it records (``build``), or CheckpointError."""
    name, _, config = state["arch"].partition("/")
    try:
        spec = registry.spec(name, config or "fashion")
    except KeyError:
        raise CheckpointError(f"{path} holds {state['arch']!r}, which is not a registered network; "
                              "build it yourself and use Trainer(model, ...).load(path).") from None
    kwargs = state.get("build", {})
    if not all(isinstance(k, str) and isinstance(v, PLAIN) for k, v in kwargs.items()):
        raise CheckpointError(f"{path}: its build arguments {kwargs!r} are not plain values. Nothing was loaded.")
    try:
        return spec.build(**kwargs)
    except TypeError as exc:
        raise CheckpointError(f"{path}: {state['arch']} cannot be built with its recorded arguments {kwargs!r} "
                              f"({exc}). Nothing was loaded.") from None


def recipe_of(path: str | os.PathLike, state: dict) -> Recipe:
    """The checkpoint's Recipe, refused when a field is unknown, missing or invalid."""
    check_fields(path, "recipe", state["recipe"], [f.name for f in dataclasses.fields(Recipe)])
    try:
        return Recipe(**state["recipe"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: its recipe is invalid ({exc}). Nothing was loaded.") from None


def check_model(path: str | os.PathLike, state: dict, model: nn.Module, name: str) -> None:
    """Refuse a checkpoint whose architecture ``name``, weights' shapes or structure differ from ``model``'s.

    A ``lenet/fashion`` checkpoint does not go into ``lenet/paper``, even where the shapes would fit.
    """
    ours, theirs = model.state_dict(), state["model"]
    problems = [f"{k}: {tuple(theirs[k].shape)} in the file, {tuple(ours[k].shape)} in the model"
                for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
    problems += [f"missing {k}" for k in ours if k not in theirs]
    problems += [f"unexpected {k}" for k in theirs if k not in ours]
    if state["arch"] != name or problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise CheckpointError(
            f"{path} holds a checkpoint of {state['arch']!r}, but this model is {name!r}"
            + (f" and does not fit it: {shown}" if problems else "") + ". Nothing was loaded. Build the same "
            "architecture (models.build with the name and configuration of the checkpoint), or use "
            "Trainer.from_checkpoint(path).")
    # A version-2 file records no structure: its names and shapes were checked above.
    differ = structure_differences(state["structure"], structure(model)) if "structure" in state else []
    if differ:
        raise CheckpointError(
            f"{path} holds a {state['arch']!r} built differently from this model: {'; '.join(differ)}. "
            "Nothing was loaded. Build the network as it was trained (the same models.build arguments, e.g. "
            "activation=nn.ReLU), then load it with Trainer(model, ...).load(path).")


def data_settings(path: str | os.PathLike, state: dict, data, own_data: bool) -> dict | None:
    """The data settings to rebuild ``data`` with, or None when ``data`` is as the checkpoint's run saw it.

    A Trainer that made its data (``own_data``) rebuilds it; one given other data refuses a
    checkpoint trained on data prepared differently (the seed aside).
    """
    check_fields(path, "data settings", state["data"], list(DATA_SETTINGS))
    if own_data:
        return state["data"] if any(getattr(data, k) != v for k, v in state["data"].items()) else None
    differ = [f"{k}={v!r} in the checkpoint, {getattr(data, k)!r} in this Trainer's data"
              for k, v in state["data"].items() if k != "seed" and getattr(data, k) != v]
    if differ:
        raise CheckpointError(
            f"{path} was trained on data prepared differently: {'; '.join(differ)}. Nothing was "
            "loaded. Give the Trainer FashionMNIST(...) with the checkpoint's settings, or no data "
            "at all (it then makes the checkpoint's).")
    return None


def check_optimizer(path: str | os.PathLike, state: dict, optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Refuse an optimizer state that does not fit ``optimizer``'s parameter groups."""
    trial = torch.optim.SGD([{"params": g["params"]} for g in optimizer.param_groups], lr=lr)
    try:
        trial.load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its optimizer state does not fit this model ({exc}). "
                              "Nothing was loaded.") from None


def restore_optimizer(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load ``saved`` (checked by :func:`check_optimizer`) into ``optimizer``, which stays fused or
    not as its Trainer made it, whatever the saver's was."""
    fused = [group.get("fused") for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, ours in zip(optimizer.param_groups, fused):
        group["fused"] = ours


def unfinished_plan(state: dict) -> dict | None:
    """A copy of the plan of the fit the checkpoint's run was in, or None when it had finished."""
    plan = state["plan"]
    return copy_plan(plan) if plan and not plan["done"] else None


def scaler_of(path: str | os.PathLike, state: dict, scaler, device_type: str):
    """A float16 run's gradient scaler at the checkpoint's scale; ``scaler`` itself when there is
    none (a Trainer without a scaler ignores the checkpoint's)."""
    if scaler is None or not state.get("scaler"):
        return scaler
    scaler = torch.amp.GradScaler(device_type)
    try:
        scaler.load_state_dict(state["scaler"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: its gradient scaler's state is damaged ({exc}). "
                              "Nothing was loaded.") from None
    return scaler
