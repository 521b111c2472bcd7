"""``python -m d2lcnn data``: check where Fashion-MNIST is, and measure how fast batches come.

``--check`` loads and checks the four files and says where they were found (``--root``: only
that folder; a file it lacks is named).
``--bench`` times our on-device batches against the book's pipeline (torchvision's
``FashionMNIST`` + ``DataLoader`` with ``Resize`` + ``ToTensor``, batch 128, 4 workers), side by
side in one run, on the same device. Each side runs ``--batches`` batches after one warm-up
batch (the DataLoader's worker start-up is left out, in its favour).
"""

from __future__ import annotations

import time

import torch

from .. import data
from ..guards import check_count
from ..runtime import default_device
from . import emit


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="check the dataset or benchmark the batches")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true", help="find and check the files")
    what.add_argument("--bench", action="store_true", help="our batches vs torchvision's DataLoader")
    p.add_argument("--root", help="the folder holding the IDX files (instead of the default places)")
    p.add_argument("--cache", help="for --bench: where to unpack the files for torchvision "
                                   "(default data/torchvision; must be writable)")
    p.add_argument("--resize", type=int, default=224, help="image side for --bench (default 224)")
    p.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=100, help="timed batches per side (default 100)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers, as the book (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.check:
        report = data.check(args.root)
        unofficial = [name for name, ok in report["official"].items() if not ok]
        text = (f"Fashion-MNIST found in {report['folder']} ({report['found_by']})\n"
                f"train: {report['train']:,} images, test: {report['test']:,} images, "
                f"{report['image_size'][0]}x{report['image_size'][1]}, {report['classes']} classes\n"
                "checks passed: magic numbers, counts, image size, label range\n"
                + (f"NOT the official release: {', '.join(unofficial)} (damaged, or another dataset); "
                   "delete them and get them again if you meant Fashion-MNIST" if unofficial
                   else "all four files are the official release's (SHA-256)"))
        emit(report, args.json, text)
        return 0
    for name in ("resize", "batch_size", "batches"):
        check_count(f"--{name.replace('_', '-')}", getattr(args, name), error=ValueError)
    if args.workers < 0:
        raise ValueError(f"--workers must be 0 or more (0: the DataLoader reads in this process), got {args.workers}.")
    report = bench(args.resize, args.device, args.batch_size, args.batches, args.workers, args.root, args.cache)
    text = (f"batches of {report['batch_size']} at {report['resize']}x{report['resize']} on {report['device']}\n"
            f"ours (on-device tensors):          {report['ours_per_s']:>10,.0f} images/s\n"
            f"torchvision DataLoader ({report['workers']} workers): {report['torchvision_per_s']:>10,.0f} images/s\n"
            f"ratio: {report['ratio']:.1f}x")
    emit(report, args.json, text)
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _time_batches(batches, n: int, device: torch.device) -> tuple[float, int]:
    """Seconds and images for ``n`` batches after one warm-up batch; each batch lands on ``device``."""
    it = iter(batches)
    next(it)
    _sync(device)
    start, images, total = time.perf_counter(), 0, None
    for _ in range(n):
        try:
            x, y = next(it)
        except StopIteration:
            break
        x, y = x.to(device), y.to(device)
        # Touch the batch so that lazy work (and asynchronous devices) really finish.
        total = x.sum() if total is None else total + x.sum()
        images += len(y)
    _sync(device)
    return time.perf_counter() - start, images


def bench(resize: int = 224, device=None, batch_size: int = 128, batches: int = 100, workers: int = 4,
          root=None, cache=None) -> dict:
    """Images per second of our batches and of the book's pipeline, measured one after the other.

    torchvision's copy of the files is unpacked (into ``cache``) first, so that a folder that
    cannot be written is said before anything is timed.
    """
    import torchvision
    from torchvision import transforms

    device = default_device(device)
    unpacked = data.torchvision_root(cache, root=root)
    ours = data.FashionMNIST(batch_size=batch_size, resize=resize, device=device, root=root, download=False)
    ours_s, ours_n = _time_batches(ours.train_batches(epoch=0), batches, device)

    trans = transforms.Compose([transforms.Resize(resize), transforms.ToTensor()])
    dataset = torchvision.datasets.FashionMNIST(root=str(unpacked), train=True, transform=trans, download=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size, shuffle=True, num_workers=workers)
    tv_s, tv_n = _time_batches(loader, batches, device)
    ours_rate, tv_rate = ours_n / ours_s, tv_n / tv_s
    return {"device": str(device), "resize": resize, "batch_size": batch_size, "batches": batches,
            "workers": workers, "ours_per_s": round(ours_rate, 1), "torchvision_per_s": round(tv_rate, 1),
            "ratio": round(ours_rate / tv_rate, 2), "torch": torch.__version__}
