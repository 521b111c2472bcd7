"""Refresh the notebooks' committed outputs: run each one and keep only the checked outputs.

    .venv/bin/python tools/notebooks.py chapters/02_lenet.ipynb [...]

A notebook is committed with outputs only in the cells nbval compares (those marked
``# NBVAL_CHECK_OUTPUT``: shape tables, parameter counts); everything else is cleared, so that a
reader never sees the curves of a quick CI run and the files stay small and reviewable. The run
is in quick mode (as CI runs it); the checked cells do not depend on it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK = "NBVAL_CHECK_OUTPUT"


def refresh(path: Path, timeout: int = 600) -> None:
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("D2LCNN_QUICK", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    count = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)   # run timestamps: noise in a review
        if cell.cell_type != "code":
            continue
        if CHECK in cell.source:
            count += 1
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if errors:
                raise SystemExit(f"{path}: a checked cell raised {errors[0]['ename']}")
        else:
            cell.outputs, cell.execution_count = [], None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: {count} checked cells refreshed, other outputs cleared")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        refresh(Path(arg))
