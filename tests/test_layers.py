"""The package's layers: the command line sits on top, and nothing below it imports it.

``d2lcnn/commands/`` parses arguments and prints; everything else (the models, the Trainer, the
benchmark, the lessons' helpers) must work without it, in a notebook as on the command line. An
import from below into ``d2lcnn.commands`` (even one inside a function) turns that around. Only
``d2lcnn/__main__.py`` (``python -m d2lcnn``) stands above the command line and starts it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "d2lcnn"


def imported(source: str, package: str) -> set[str]:
    """Every module that ``source`` imports, as absolute names; ``package`` is the package it
    sits in, which relative imports start from (``from .. import x`` there gives ``parent.x``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path) -> str:
    """``d2lcnn/benchmark/report.py`` -> ``d2lcnn.benchmark``; ``d2lcnn/models/__init__.py`` -> ``d2lcnn.models``."""
    return ".".join(path.relative_to(PACKAGE.parent).parent.parts)


def test_the_check_resolves_relative_imports():
    """It sees the import the benchmark once made, and the ways of writing it from a subpackage."""
    assert "d2lcnn.commands.models" in imported("from .commands.models import describe", "d2lcnn")
    assert "d2lcnn.commands" in imported("def f():\n    from .. import commands\n", "d2lcnn.benchmark")
    assert "d2lcnn.commands.models" in imported("from ..commands.models import describe", "d2lcnn.benchmark")
    assert "d2lcnn.commands" in imported("import d2lcnn.commands", "d2lcnn")
    assert not any(n.startswith("d2lcnn.commands") for n in imported("from ..inspect import describe",
                                                                    "d2lcnn.benchmark"))


def test_no_module_outside_the_command_line_imports_it():
    below = [p for p in sorted(PACKAGE.rglob("*.py"))
             if "commands" not in p.relative_to(PACKAGE).parts and p != PACKAGE / "__main__.py"]
    assert len(below) > 20 and PACKAGE / "train.py" in below
    upward = {}
    for path in below:
        names = sorted(n for n in imported(path.read_text(), package_of(path))
                       if n == "d2lcnn.commands" or n.startswith("d2lcnn.commands."))
        if names:
            upward[str(path.relative_to(PACKAGE.parent))] = names
    assert upward == {}
