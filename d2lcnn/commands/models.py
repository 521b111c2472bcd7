"""``python -m d2lcnn models``: every registered network with its parameters and FLOPs.

FLOPs are counted for one image at the network's input size, on PyTorch's "meta" device: the
shapes and the arithmetic are traced without allocating or computing anything, so even the
paper configurations at 224x224 take a moment.
"""

from __future__ import annotations

from .. import models
from ..inspect import _human, describe
from . import emit


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the networks with parameters and FLOPs")
    p.add_argument("--config", choices=models.CONFIGS, help="only this configuration")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = [describe(spec) for spec in models.specs(args.config)]
    if args.json:
        emit(rows, True)
        return 0
    lines = [f"{'name':<16}{'config':<9}{'params':>14}{'FLOPs':>10}  input"]
    for r in rows:
        lines.append(f"{r['name']:<16}{r['config']:<9}{r['params']:>14,}{_human(r['flops']):>10}  "
                     f"{tuple(r['input_shape'])}")
    lines.append("FLOPs for one image; a multiply-add counts as two")
    emit(rows, False, "\n".join(lines))
    return 0
