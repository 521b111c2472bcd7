"""The command line, ``python -m d2lcnn SUBCOMMAND ...``: train and measure without a notebook.

Every subcommand lives in its own module with an ``add_parser(subparsers)`` function that sets
``func``; every one takes ``--json`` and then prints one JSON object (or list) for scripts.
A failure the user can fix (no data, an unknown model, a bad setting, a missing or foreign
checkpoint, a GPU out of memory) prints its message, without a traceback, and exits with 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..data import DataError
from ..train import TrainingOutOfMemory

# Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ("data", "models", "train", "bench", "speed")


def emit(result, as_json: bool, text: str | None = None) -> None:
    """Print ``result`` as one JSON document, or ``text`` (default: ``key: value`` lines)."""
    if as_json:
        print(json.dumps(result, indent=None, default=str))
    elif text is not None:
        print(text)
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="python -m d2lcnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (DataError, KeyError, ValueError, FileNotFoundError, TrainingOutOfMemory) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": message}))
        print(f"error: {message}", file=sys.stderr)
        return 2
