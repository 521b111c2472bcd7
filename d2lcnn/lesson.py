"""Small helpers for the lessons themselves: showing the package's real code in a notebook."""

from __future__ import annotations

import inspect


def show_source(*objects) -> object:
    """The source of functions or classes, syntax-highlighted, so students read the real code.

    Returns an ``IPython.display.Code`` object (rendered with highlighting in JupyterLab and
    Colab, and as plain text elsewhere).
    """
    from IPython.display import Code

    return Code("\n\n".join(inspect.getsource(obj).rstrip() for obj in objects), language="python")
