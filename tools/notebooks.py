"""Refresh the notebooks' committed outputs: run each one and keep only the checked outputs.
Or point every notebook's install cell at the repository URL of pyproject.toml.
Or give every cell its slide metadata, from the notebook's structure.

    .venv/bin/python tools/notebooks.py chapters/02_lenet.ipynb [...]
    .venv/bin/python tools/notebooks.py install-url [chapters/02_lenet.ipynb ...]
    .venv/bin/python tools/notebooks.py slides [chapters/02_lenet.ipynb ...]

A notebook is committed with outputs only in the cells nbval compares (those marked
``# NBVAL_CHECK_OUTPUT``: shape tables, parameter counts); everything else is cleared, so that a
reader never sees the curves of a quick CI run and the files stay small and reviewable. The run
is in quick mode (as CI runs it); the checked cells do not depend on it.

Every notebook's first cell installs the package when it is missing (on Colab), from the URL
that ``[project.urls] Repository`` in pyproject.toml names. A fork that publishes elsewhere edits
that one line and runs ``install-url``: it rewrites the URL in every chapter's first cell (all
of them by default) and nothing else.

Every lesson can be presented as slides (RISE in JupyterLab, ``make slides`` for static decks).
``slides`` derives the slide of every cell from the lesson's structure, so that nobody keeps
slide metadata by hand: see :func:`set_slides` for the rules. Run it again after editing a lesson
(it is idempotent: a second run changes nothing).
"""

from __future__ import annotations

import copy
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


# --- slides ---------------------------------------------------------------------------------------

NEW_SLIDE = re.compile(r"(#{1,3} |\*\*)")
"""A paragraph that opens a new idea: a heading (levels 1-3) or a bold lead (``**Mistakes.** ...``)."""
FENCE = re.compile(r"^\s*(```|~~~)")
RISE = {"scroll": True, "width": "100%", "height": "100%", "enable_chalkboard": False,
        "transition": "none", "start_slideshow_at": "selected"}
"""The notebook's RISE settings: long slides scroll, the slide fills the screen, no animation."""


def _paragraphs(text: str) -> list[str]:
    """``text`` cut before every paragraph that opens a new idea, outside code fences; the pieces
    joined with blank lines give back ``text``."""
    pieces, current, fenced, blank = [], [], False, True
    for line in text.split("\n"):
        if not fenced and blank and current and NEW_SLIDE.match(line):
            pieces.append("\n".join(current).rstrip("\n"))
            current = []
        if FENCE.match(line):
            fenced = not fenced
        current.append(line)
        blank = not line.strip()
    pieces.append("\n".join(current).rstrip("\n"))
    return pieces


def _is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and INSTALL.search(cell.source) is not None


def set_slides(nb) -> None:
    """Give every cell of ``nb`` its slide type (in place). The rules, from the lesson's structure:

    * a markdown cell that holds several ideas is cut into cells, one per idea: before every
      heading and every paragraph with a bold lead (the title, *What you will learn*, *Where it
      sits in history*, Summary, Discussion, Exercises, each numbered exercise: one slide each).
      The text is unchanged (consecutive markdown cells read as one in a notebook and on the site);
    * a markdown cell that opens with a heading or a bold lead starts a new slide (the first one,
      the lesson's title, is the title slide); other markdown continues the slide it follows;
    * a code cell stays on the slide of the text that introduces it, with its output; a code cell
      right after another code cell starts a slide of its own (one picture, one table at a time);
    * the first cell that installs d2lcnn (for Colab) is skipped: it is not part of the lesson.
    """
    cells, ids = [], {c.get("id") for c in nb.cells}
    for cell in nb.cells:
        pieces = _paragraphs(cell.source) if cell.cell_type == "markdown" and not cell.get("attachments") else []
        if len(pieces) < 2:
            cells.append(cell)
            continue
        for k, piece in enumerate(pieces):
            part = copy.deepcopy(cell)
            part.source = piece
            if k and "id" in cell:
                new, n = f"{cell.id}-{k}", k
                while new in ids:
                    n += 1
                    new = f"{cell.id}-{n}"
                ids.add(new)
                part.id = new
            cells.append(part)
    previous = None
    for cell in cells:
        if _is_install_cell(cell) and previous is None:
            kind = "skip"
        elif cell.cell_type == "markdown":
            kind = "slide" if NEW_SLIDE.match(cell.source.lstrip()) else "-"
        elif cell.cell_type == "code" and previous is not None and previous.cell_type == "code" \
                and previous.metadata.get("slideshow", {}).get("slide_type") != "skip":
            kind = "slide"
        else:
            kind = "-"
        cell.metadata["slideshow"] = {"slide_type": kind}
        previous = cell
    nb.cells = cells
    nb.metadata["rise"] = dict(RISE)


def slides(path: Path) -> bool:
    """Set the slide metadata of the notebook at ``path``; True when the file changed."""
    before = path.read_text()
    nb = nbformat.reads(before, as_version=4)
    set_slides(nb)
    after = nbformat.writes(nb) + "\n"
    if after == before:
        return False
    path.write_text(after)
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
    elif sys.argv[1] == "slides":
        paths = [Path(a) for a in sys.argv[2:]] or sorted((ROOT / "chapters").glob("*.ipynb"))
        for path in paths:
            print(f"{path}: {'slide metadata set' if slides(path) else 'slide metadata already right'}")
    else:
        for arg in sys.argv[1:]:
            refresh(Path(arg))
