"""``python -m d2lcnn train MODEL``: train a registered network from the command line.

On several GPUs (or CPU processes) run it through torchrun::

    torchrun --nproc_per_node=4 -m d2lcnn train resnet18 --out resnet18.pt

Each process then trains a DistributedDataParallel copy on its own share of every batch
(``FashionMNIST.train_batches(rank=, world_size=)``); gradients are averaged so all copies stay
identical. Only rank 0 prints and saves; the JSON output reports a checksum of every rank's
final weights so that this can be checked.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from .. import models
from ..runtime import default_device
from ..train import Recipe, Trainer
from . import emit


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a registered network")
    p.add_argument("model", help="a registered name (python -m d2lcnn models)")
    p.add_argument("--recipe", choices=("modern", "book"), default="modern")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--resize", type=int)
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--out", help="write a checkpoint here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def recipe_from(args) -> Recipe:
    """The chosen recipe with the command line's changes."""
    recipe = Recipe.book(args.model) if args.recipe == "book" else Recipe.modern(args.model)
    changes = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "resize": args.resize}
    return dataclasses.replace(recipe, **{k: v for k, v in changes.items() if v is not None})


def _distributed(device_arg: str | None) -> tuple[bool, torch.device]:
    """Join the process group when torchrun started us; the device of this rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, default_device(device_arg)
    device = default_device(device_arg)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True, device


def _checksums(model: torch.nn.Module, distributed: bool) -> list[float]:
    """The sum of every rank's weights (float64), gathered on all ranks."""
    local = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    if not distributed:
        return [local.item()]
    backend_device = next(model.parameters()).device
    local = local.to(backend_device)
    gathered = [torch.zeros_like(local) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(gathered, local)
    return [g.item() for g in gathered]


def run(args) -> int:
    distributed, device = _distributed(args.device)
    try:
        recipe = recipe_from(args)
        trainer = Trainer(models.build(args.model), recipe=recipe, device=device, seed=args.seed,
                          compile=args.compile)
        start = _checksums(trainer.model, False)[0]
        trainer.fit()
        sums = _checksums(trainer.model, distributed)
        if trainer.rank != 0:
            return 0
        if args.out:
            trainer.save(args.out)
        last = trainer.history[-1]
        result = {"model": args.model, "recipe": dataclasses.asdict(trainer.recipe),
                  "device": str(trainer.device), "world_size": trainer.world_size,
                  "test_acc": last["test_acc"], "examples_per_s": last["examples_per_s"],
                  "history": trainer.history, "weights_checksum_start": start,
                  "rank_checksums": sums, "checkpoint": args.out}
        if args.json:
            emit(result, True)
        else:
            print(f"{args.model}: test acc {last['test_acc']:.3f}, {last['examples_per_s']:,.0f} examples/s "
                  f"on {trainer.device}" + (f" x {trainer.world_size} processes" if distributed else "")
                  + (f"; checkpoint {args.out}" if args.out else ""))
        return 0
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
