"""The committed notebooks read well and can be checked: a normal kernel, no stored errors, no
stale outputs from quick runs, small files, and every checked cell with its stored output.
(nbval runs them; this only looks at what is committed.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "chapters").glob("*.ipynb"))
CHECK = "NBVAL_CHECK_OUTPUT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    assert path.stat().st_size < 300_000, "embedded outputs too large for review"
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    checked = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        outputs = cell.get("outputs", [])
        assert not any(o["output_type"] == "error" for o in outputs), source[:80]
        if CHECK in source:
            checked += 1
            assert outputs and cell["execution_count"] is not None, f"checked cell without output: {source[:80]}"
        else:
            assert not outputs, f"unchecked cell with a stored output (refresh with tools/notebooks.py): {source[:80]}"
    assert checked >= 1, "every notebook checks at least one deterministic output (a shape table)"


FIRST = ["00_fashion_mnist_and_tools.ipynb", "01_convolution.ipynb", "02_lenet.ipynb", "03_alexnet.ipynb",
         "04_vgg.ipynb", "05_nin.ipynb"]
"""The course's first notebooks, in order (DESIGN.md): the tour, convolution itself, then the networks."""


def test_notebooks_are_numbered_in_course_order():
    names = [p.name for p in NOTEBOOKS]
    assert names[:len(FIRST)] == FIRST, names
    assert [n[:2] for n in names] == [f"{i:02d}" for i in range(len(names))]
