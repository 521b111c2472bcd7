"""Putting a matplotlib figure into an ipywidgets ``Output``: one way for widgets and live plots.

We render the PNG ourselves and replace the Output's ``outputs`` in one assignment, rather than
``with output: display(fig)``. That works the same on ipywidgets 7.7 (Colab) and 8, in
JupyterLab, in Colab and in plain Python (tests), never flickers through an empty state, never
leaks a figure to the cell's own output, and prints nothing to stdout (nbval counts stdout).
"""

from __future__ import annotations

import base64
import io

import matplotlib.pyplot as plt


def figure_output(fig, dpi: int = 90) -> dict:
    """A Jupyter ``display_data`` output holding ``fig`` as a PNG (with a text fallback)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                     "text/plain": f"<Figure {fig.get_figwidth():g}x{fig.get_figheight():g} in>"}}


def redraw(output, draw) -> None:
    """Replace ``output``'s content with the figure ``draw()`` returns, then close the figure.

    ``draw()`` runs with pyplot's interactive mode off: in a notebook, pyplot's inline backend
    otherwise queues every figure it makes until the running cell ends, closed or not, and a
    widget moved a hundred times would hold a hundred figures.
    """
    with plt.ioff():
        fig = draw()
    try:
        output.outputs = (figure_output(fig),)
    finally:
        plt.close(fig)
