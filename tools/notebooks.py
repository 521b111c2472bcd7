"""Refresh the notebooks' committed outputs: run each one and keep only the checked outputs.
Or point every notebook's install cell at the repository URL of pyproject.toml.

    .venv/bin/python tools/notebooks.py chapters/02_lenet.ipynb [...]
    .venv/bin/python tools/notebooks.py install-url [chapters/02_lenet.ipynb ...]

A notebook is committed with outputs only in the cells nbval compares (those marked
``# NBVAL_CHECK_OUTPUT``: shape tables, parameter counts); everything else is cleared, so that a
reader never sees the curves of a quick CI run and the files stay small and reviewable. The run
is in quick mode (as CI runs it); the checked cells do not depend on it.

Every notebook's first cell installs the package when it is missing (on Colab), from the URL
that ``[project.urls] Repository`` in pyproject.toml names. A fork that publishes elsewhere edits
that one line and runs ``install-url``: it rewrites the URL in every chapter's first cell (all
of them by default) and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tomllib
from pathlib import Path

import nbformat
from nbclient import NotebookClient

CHECK = "NBVAL_CHECK_OUTPUT"
ROOT = Path(__file__).resolve().parent.parent
INSTALL = re.compile(r'(?P<head>"d2lcnn @ git\+)(?P<url>[^"\s]+)(?P<tail>")')
"""The requirement in the first cell's ``%pip install`` line; ``url`` is what install-url rewrites."""


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


def repository_url() -> str:
    """The one install URL: ``[project.urls] Repository`` of pyproject.toml."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]


def set_install_url(path: Path, url: str) -> bool:
    """Point the first cell's ``d2lcnn @ git+URL`` at ``url``; True when the file changed.

    Only that cell's source is touched; the file is written as nbformat writes it (sorted keys,
    one-space indent), and not at all when the URL is already right.
    """
    nb = json.loads(path.read_text())
    lines = nb["cells"][0]["source"]
    lines = [lines] if isinstance(lines, str) else lines
    new, found = [], 0
    for line in lines:
        line, n = INSTALL.subn(lambda m: m["head"] + url + m["tail"], line)
        new.append(line)
        found += n
    if found != 1:
        raise SystemExit(f"{path}: the first cell should hold one `%pip install ... \"d2lcnn @ git+URL\"` "
                         f"requirement, found {found}; copy the first cell of chapters/02_lenet.ipynb.")
    if new == lines:
        return False
    nb["cells"][0]["source"] = new
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return True


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    if sys.argv[1] == "install-url":
        url = repository_url()
        paths = [Path(a) for a in sys.argv[2:]] or sorted((ROOT / "chapters").glob("*.ipynb"))
        for path in paths:
            print(f"{path}: {'now installs from' if set_install_url(path, url) else 'already installs from'} "
                  f"git+{url}")
    else:
        for arg in sys.argv[1:]:
            refresh(Path(arg))
