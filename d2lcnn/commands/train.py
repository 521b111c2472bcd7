"""``python -m d2lcnn train MODEL``: train a registered network from the command line.

On several GPUs (or CPU processes) run it through torchrun::

    torchrun --nproc_per_node=4 -m d2lcnn train resnet18 --out resnet18.pt

Each process then trains a DistributedDataParallel copy on its own share of every batch
(``FashionMNIST.train_batches(rank=, world_size=)``); gradients are averaged so all copies stay
identical. Only rank 0 prints and saves; the JSON output reports a checksum of every rank's
final weights so that this can be checked.

``--nproc_per_node`` is the number of processes on this machine: 1 or more, usually the number
of GPUs. A process started with ``WORLD_SIZE`` > 1 waits at most ``$D2LCNN_RENDEZVOUS_TIMEOUT``
seconds (default 300) for the others, then says which are missing.

Every setting is checked before any data loads (a batch size of 0, a device this machine does
not have, an ``--out`` that cannot be written, an image size the model cannot take).

Nothing trained is lost. A run that is interrupted (Ctrl-C) saves a checkpoint and says how to
go on with ``--resume``; a resumed run saves to its ``--out``, else to the file it resumed
from; a run whose loss became NaN/inf saves the weights of its last good epoch (with ``--out``
or ``--resume``) and says which. A checkpoint that cannot be written where asked (a full disk:
torch's writer then raises ``RuntimeError``, not ``OSError``) is written on another filesystem
and the message says where. Exit status: 0 done, 2 bad input (or a checkpoint that had to be
saved elsewhere), 3 diverged, 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from .. import models
from ..guards import check_writable
from ..runtime import default_device
from ..train import Recipe, Trainer, TrainingDiverged
from . import emit

DIVERGED, INTERRUPTED = 3, 130
RENDEZVOUS_ENV, RENDEZVOUS_S = "D2LCNN_RENDEZVOUS_TIMEOUT", 300
"""How long (seconds) a process of a distributed run waits for the others before it gives up."""
RECIPE_OPTIONS = ("recipe", "batch_size", "lr", "resize")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a registered network")
    p.add_argument("model", help="a registered name (python -m d2lcnn models)")
    p.add_argument("--recipe", choices=("modern", "book"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--resize", type=int)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--out", help="write a checkpoint here (checked for writing before training)")
    p.add_argument("--resume", metavar="FILE",
                   help="go on from a checkpoint: finish its interrupted run, or train --epochs more")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def recipe_from(args) -> Recipe:
    """The chosen recipe with the command line's changes."""
    recipe = Recipe.book(args.model) if args.recipe == "book" else Recipe.modern(args.model)
    changes = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "resize": args.resize}
    return dataclasses.replace(recipe, **{k: v for k, v in changes.items() if v is not None})


def _distributed(device_arg: str | None) -> tuple[bool, torch.device]:
    """Join the process group when torchrun started us (one process too); the device of this rank.

    torchrun sets ``TORCHELASTIC_RUN_ID`` (and ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...): with
    one process the group is still made, so that NCCL (gloo on a CPU) really runs.
    """
    if "TORCHELASTIC_RUN_ID" not in os.environ and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, default_device(device_arg)
    device = default_device(device_arg)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    store, rank, world_size = _rendezvous()
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo", store=store, rank=rank,
                                         world_size=world_size)
    return True, device


class RendezvousError(ValueError):
    """The processes of a distributed run did not all meet: one or more were never started."""


def _rendezvous():
    """Meet the other processes (torchrun's environment), waiting at most $D2LCNN_RENDEZVOUS_TIMEOUT s.

    torch would wait 30 minutes, without a word, for a process that was never started; the
    collectives keep torch's own timeout once all have met.
    """
    env = os.environ
    world, rank = env.get("WORLD_SIZE"), env.get("RANK")
    where = f"{env.get('MASTER_ADDR', '?')}:{env.get('MASTER_PORT', '?')}"
    start = ("Start all of them with torchrun (torchrun --nproc_per_node=N -m d2lcnn train ...), "
             "or unset WORLD_SIZE to train in one process.")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in env]
    if missing:
        raise RendezvousError(f"WORLD_SIZE={world} asks for a distributed run, but {', '.join(missing)} "
                              f"{'is' if len(missing) == 1 else 'are'} not set. {start}")
    try:
        seconds = float(env.get(RENDEZVOUS_ENV) or RENDEZVOUS_S)
    except ValueError:
        raise RendezvousError(f"${RENDEZVOUS_ENV}={env[RENDEZVOUS_ENV]!r} is not a number of seconds.") from None
    try:
        store, rank_, world_ = next(torch.distributed.rendezvous(
            "env://", timeout=datetime.timedelta(seconds=seconds)))
    except (RuntimeError, ValueError) as exc:
        joined = " ".join(str(exc).split())
        raise RendezvousError(
            f"this process (rank {rank} of WORLD_SIZE={world}) waited {seconds:g} s at {where} for the other "
            f"processes of the run and not all came ({joined}). {start} ${RENDEZVOUS_ENV} sets how long to "
            "wait.") from None
    store.set_timeout(torch.distributed.constants.default_pg_timeout)
    return store, rank_, world_


def _checksums(model: torch.nn.Module, distributed: bool) -> list[float]:
    """The sum of every rank's weights, gathered on all ranks.

    Summed in float64 on the CPU: Apple's MPS has no float64, so it is never made on the training
    device; the sums travel between ranks as Python floats.
    """
    local = sum(p.detach().cpu().double().sum().item() for p in model.parameters())
    if not distributed:
        return [local]
    gathered: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, local)
    return gathered


def _trainer(args, device) -> tuple[Trainer, int | None]:
    """A new Trainer, or one restored from ``--resume``; and how many epochs to fit (None: the plan's)."""
    if not args.resume:
        trainer = Trainer(models.build(args.model), recipe=recipe_from(args), device=device, seed=args.seed,
                          compile=args.compile)
        return trainer, None
    given = [f"--{k.replace('_', '-')}" for k in RECIPE_OPTIONS if getattr(args, k) is not None]
    if given:
        raise ValueError(f"--resume goes on with the checkpoint's own recipe; drop {', '.join(given)} "
                         "(or start a new run without --resume).")
    trainer = Trainer.from_checkpoint(args.resume, device=device, compile=args.compile)
    if trainer.name.split("/")[0] != args.model:
        raise ValueError(f"{args.resume} holds {trainer.name!r}, not {args.model!r}: "
                         f"run `python -m d2lcnn train {trainer.name.split('/')[0]} --resume {args.resume}`.")
    if trainer._plan is not None:       # an interrupted run: finish it first
        if args.epochs is not None:
            plan = trainer._plan
            raise ValueError(
                f"{args.resume} holds a run interrupted in epoch {trainer.epoch + 1} of {plan['end']}; --resume "
                f"finishes it as planned (its learning-rate schedule spans epochs {plan['start'] + 1}-{plan['end']}). "
                f"Drop --epochs {args.epochs}; once it is done, `python -m d2lcnn train {args.model} --resume "
                f"{args.resume} --epochs N` trains N more.")
        return trainer, None
    if args.epochs is None:
        raise ValueError(f"the run in {args.resume} finished its {trainer.epoch} epochs; add --epochs N to "
                         "train N more.")
    return trainer, args.epochs


SAVE_FAILED = (OSError, RuntimeError)
"""What a failed save raises: OSError, or RuntimeError from torch's archive writer (a full disk)."""


def _device_of(path: Path) -> int | None:
    """The filesystem (st_dev) that ``path``, or its nearest existing folder, is on."""
    for p in (path, *path.parents):
        try:
            return p.stat().st_dev
        except OSError:
            continue
    return None


def _rescue_paths(model: str, failed: Path) -> list[Path]:
    """Where to save when ``failed`` could not be written: the temporary folder, the home folder and
    the working folder, those on another filesystem than ``failed`` first."""
    name = f"d2lcnn-{model}-{time.strftime('%Y%m%d-%H%M%S')}.pt"
    folders = [Path(tempfile.gettempdir()), Path.home(), Path.cwd()]
    there = _device_of(failed.absolute())
    folders.sort(key=lambda f: _device_of(f) == there)   # stable: other filesystems first
    return [f / name for f in dict.fromkeys(folders)]


def _save(trainer: Trainer, wanted: str | None, model: str) -> tuple[str | None, bool]:
    """Save to ``wanted`` (default ``MODEL-interrupted.pt``); if that fails, somewhere safe, and say
    so with the history. Returns the path written (None: nowhere) and whether it is the one wanted."""
    path = Path(wanted) if wanted else Path(f"{model}-interrupted.pt")
    try:
        return str(trainer.save(path)), True
    except SAVE_FAILED as exc:
        reason = " ".join(str(exc).split())[:200]
        tried = []
        for rescue in _rescue_paths(model, path):
            try:
                trainer.save(rescue)
            except SAVE_FAILED:
                tried.append(str(rescue.parent))
                continue
            other = "another filesystem" if _device_of(rescue) != _device_of(path.absolute()) else "the same filesystem"
            print(f"error: could not write {path} ({type(exc).__name__}: {reason}; a full disk?); the model "
                  f"is saved in {rescue} instead (on {other}). Move it where you want it. Its history:",
                  file=sys.stderr)
            print(json.dumps(trainer.history, default=str), file=sys.stderr)
            return str(rescue), False
        print(f"error: could not write {path} ({type(exc).__name__}: {reason}), nor in {', '.join(tried)}: "
              "the model could not be saved anywhere. Free some disk space; its history:", file=sys.stderr)
        print(json.dumps(trainer.history, default=str), file=sys.stderr)
        return None, False


def _report(args, trainer: Trainer, start: float, sums: list[float], distributed: bool) -> int:
    """Rank 0's part: save, print the result, and the exit status."""
    interrupted = trainer.interrupted
    wanted = args.out or args.resume    # a resumed run goes back into the file it came from
    saved, saved_where_wanted = _save(trainer, wanted, args.model) if (wanted or interrupted) else (None, True)
    last = trainer.history[-1]
    finished = [r for r in trainer.history if r.get("test_acc") is not None]
    result = {"ok": not interrupted and saved_where_wanted, "model": args.model,
              "recipe": dataclasses.asdict(trainer.recipe), "device": str(trainer.device), "world_size": trainer.world_size,
              "process_group": torch.distributed.get_backend() if distributed else None,
              "epochs_done": trainer.epoch, "interrupted": interrupted,
              "test_acc": finished[-1]["test_acc"] if finished else None,
              "examples_per_s": last["examples_per_s"],
              "history": trainer.history, "weights_checksum_start": start,
              "rank_checksums": sums, "checkpoint": saved}
    if interrupted and saved:
        result["resume"] = f"python -m d2lcnn train {args.model} --resume {saved}"
    if args.json:
        emit(result, True)
    elif interrupted:
        print(f"{args.model}: interrupted in epoch {last['epoch']} after {last['steps_done']} steps "
              f"({trainer.epoch} epochs finished). "
              + (f"Checkpoint: {saved}. Go on with:\n  {result['resume']}" if saved
                 else "It could not be saved (see above)."))
    else:
        print(f"{args.model}: test acc {last['test_acc']:.3f}, {last['examples_per_s']:,.0f} examples/s "
              f"on {trainer.device}" + (f" x {trainer.world_size} processes" if distributed else "")
              + (f"; checkpoint saved to {saved}" if saved else "")
              + (" (the file it resumed from)" if saved and saved_where_wanted and not args.out and args.resume else ""))
    return INTERRUPTED if interrupted else 0 if saved_where_wanted else 2


def _report_divergence(args, trainer: Trainer, exc: TrainingDiverged, first_epoch: int) -> None:
    """Say that the run diverged; with --out or --resume, save the weights of its last good epoch
    (they were put back) when this run finished any epoch, and say which."""
    wanted, saved, note = args.out or args.resume, None, ""
    good = [r for r in trainer.history if r.get("test_acc") is not None and not r.get("interrupted")]
    finite = all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())
    if wanted and trainer.epoch > first_epoch and finite:
        saved, _ = _save(trainer, wanted, args.model)
        if saved:
            acc = f", test acc {good[-1]['test_acc']:.3f}" if good else ""
            note = (f" The weights of epoch {trainer.epoch} (the last good one{acc}) are saved in {saved}.")
    elif wanted:
        why = "no epoch finished before it diverged" if trainer.epoch <= first_epoch else "its weights are not finite"
        note = f" Nothing was saved to {wanted}: {why}" + (f"; {args.resume} is left as it was." if args.resume else ".")
    if args.json:
        emit({"ok": False, "model": args.model, "diverged": True, "error": str(exc) + note,
              "history": trainer.history, "checkpoint": saved, "saved_epoch": trainer.epoch if saved else None}, True)
    print(f"error: {exc}{note}", file=sys.stderr)


def run(args) -> int:
    if args.out:
        check_writable(args.out)
    distributed, device = _distributed(args.device)
    try:
        trainer, epochs = _trainer(args, device)
        start, first_epoch = _checksums(trainer.model, False)[0], trainer.epoch
        try:
            trainer.fit(epochs)
        except TrainingDiverged as exc:
            if trainer.rank == 0:
                _report_divergence(args, trainer, exc, first_epoch)
            return DIVERGED
        sums = _checksums(trainer.model, distributed)
        code = _report(args, trainer, start, sums, distributed) if trainer.rank == 0 else 0
        if distributed:
            torch.distributed.barrier()   # no process leaves (and closes its connections) before all are done
        return code
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
