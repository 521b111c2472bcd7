"""``python -m d2lcnn train MODEL``: train a registered network from the command line.

On several GPUs (or CPU processes) run it through torchrun::

    torchrun --nproc_per_node=4 -m d2lcnn train resnet18 --out resnet18.pt

Each process then trains a DistributedDataParallel copy on its own share of every batch
(``FashionMNIST.train_batches(rank=, world_size=)``); gradients are averaged so all copies stay
identical. Only rank 0 prints and saves; the JSON output reports a checksum of every rank's
final weights so that this can be checked.

Every setting is checked before any data loads (a batch size of 0, a device this machine does
not have, an ``--out`` that cannot be written, an image size the model cannot take). A run
that is interrupted (Ctrl-C) saves a checkpoint and says how to go on with ``--resume``; a run
whose loss became NaN/inf says so. Exit status: 0 done, 2 bad input (or a checkpoint that had to be saved elsewhere), 3 diverged,
130 interrupted.
"""

from __future__ import annotations

import dataclasses
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
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True, device


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
        return trainer, None
    if args.epochs is None:
        raise ValueError(f"the run in {args.resume} finished its {trainer.epoch} epochs; add --epochs N to "
                         "train N more.")
    return trainer, args.epochs


def _rescue_path(model: str) -> Path:
    return Path(tempfile.gettempdir()) / f"d2lcnn-{model}-{time.strftime('%Y%m%d-%H%M%S')}.pt"


def _save(trainer: Trainer, wanted: str | None, model: str) -> tuple[str, bool]:
    """Save to ``wanted`` (default ``MODEL-interrupted.pt``); if that fails, somewhere safe, and say
    so with the history. Returns the path written and whether it is the one wanted."""
    path = Path(wanted) if wanted else Path(f"{model}-interrupted.pt")
    try:
        return str(trainer.save(path)), True
    except OSError as exc:
        rescue = trainer.save(_rescue_path(model))
        print(f"error: could not write {path} ({exc}); the model is saved in {rescue} instead. "
              "Its history:", file=sys.stderr)
        print(json.dumps(trainer.history, default=str), file=sys.stderr)
        return str(rescue), False


def _report(args, trainer: Trainer, start: float, sums: list[float], distributed: bool) -> int:
    """Rank 0's part: save, print the result, and the exit status."""
    interrupted = trainer.interrupted
    saved, saved_where_wanted = _save(trainer, args.out, args.model) if (args.out or interrupted) else (None, True)
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
    if interrupted:
        result["resume"] = f"python -m d2lcnn train {args.model} --resume {saved}"
    if args.json:
        emit(result, True)
    elif interrupted:
        print(f"{args.model}: interrupted in epoch {last['epoch']} after {last['steps_done']} steps "
              f"({trainer.epoch} epochs finished). Checkpoint: {saved}. Go on with:\n  {result['resume']}")
    else:
        print(f"{args.model}: test acc {last['test_acc']:.3f}, {last['examples_per_s']:,.0f} examples/s "
              f"on {trainer.device}" + (f" x {trainer.world_size} processes" if distributed else "")
              + (f"; checkpoint {saved}" if saved else ""))
    return INTERRUPTED if interrupted else 0 if saved_where_wanted else 2


def run(args) -> int:
    if args.out:
        check_writable(args.out)
    distributed, device = _distributed(args.device)
    try:
        trainer, epochs = _trainer(args, device)
        start = _checksums(trainer.model, False)[0]
        try:
            trainer.fit(epochs)
        except TrainingDiverged as exc:
            if trainer.rank == 0:
                if args.json:
                    emit({"ok": False, "model": args.model, "diverged": True, "error": str(exc),
                          "history": trainer.history}, True)
                print(f"error: {exc}", file=sys.stderr)
            return DIVERGED
        sums = _checksums(trainer.model, distributed)
        code = _report(args, trainer, start, sums, distributed) if trainer.rank == 0 else 0
        if distributed:
            torch.distributed.barrier()   # no process leaves (and closes its connections) before all are done
        return code
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
