"""The Trainer's live plot inside a real Jupyter kernel: a long fit holds a bounded number of
figures and memory (pyplot's inline backend used to keep every redraw until the cell ended)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

SETUP = """
import gc, resource, warnings
import matplotlib.figure
from d2lcnn import curves, data, models, train

class EveryStep(curves.LiveCurves):
    '''Redraw at every step, whatever the machine's speed: the worst case for memory.'''
    def due(self):
        return True

curves.LiveCurves = EveryStep
warnings.simplefilter("ignore")
small = data.FashionMNIST(batch_size=8, device="cpu", subset=80, test_subset=10)

def fit():
    t = train.Trainer(models.build("lenet"), data=small, recipe=train.Recipe.modern("lenet", epochs=1), seed=0)
    t.fit()
    return t

def figures():
    gc.collect()
    return sum(type(o) is matplotlib.figure.Figure for o in gc.get_objects())
"""

# Inside the same cell as the fit: the inline backend flushes its queue only when a cell ends.
FIT = """
fit()                                   # warm-up: fonts, caches
before_rss, before_figures = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, figures()
trainer = fit()
import matplotlib_inline.backend_inline as inline
result = {"queued": len(inline.show._to_draw), "figures": figures() - before_figures,
          "grown_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss) / 1024,
          "steps": trainer._plan["steps"]}
print(result)
"""


@pytest.mark.slow
def test_a_long_fit_in_a_kernel_holds_a_bounded_number_of_figures(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib inline\n" + SETUP),
                                         nbformat.v4.new_code_cell(FIT)])
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("name") == "stdout")
    result = eval(text.strip().splitlines()[-1])
    assert result["steps"] >= 100                 # 800 images, batch 8: a redraw at every step
    assert result["queued"] == 0                  # nothing waits in pyplot's inline queue
    assert result["figures"] <= 2                 # the live plot's one figure (plus at most one more)
    assert result["grown_mb"] < 100               # each redraw held ~2 MB before the fix
