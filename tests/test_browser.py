"""The course as a student sees it: JupyterLab in a real (headless) Chromium.

Starts JupyterLab on 127.0.0.1 with a fresh configuration (no token, no browser, windowing off so
every cell renders, no news pop-ups), opens the tour (chapters/00_*), the convolution lesson
(chapters/01_*) and the first architecture, LeNet (chapters/02_*), runs all cells in quick mode through the Run menu, and checks what a student
would see: no cell shows an error, no widget fails to render, the progress bar and the live
training plot appear, every d2lcnn widget shows a picture, and changing a dropdown or a slider in
the page redraws the feature maps and the filters. Errors the notebook does not show are caught
too: every message the kernel sends the page is read (under ipywidgets 8 an exception in a
widget callback goes to JupyterLab's log console only), and so is the server's log (the
kernel's stderr). Screenshots of those moments, and the server logs, land in artifacts/browser/.

Everything runs twice: under ipywidgets 8 in JupyterLab 4 (``.venv``), then under ipywidgets
7.7.1 (Colab's) in JupyterLab 3, whose server lives in build/browser-ipywidgets7/ (built with pip
on first use, about a minute; skipped with the reason when pip cannot reach an index). A scratch
notebook with a widget callback and a cell that raise goes through the same checks, which must
catch both: the harness proves it is not blind.

Run it with ``pytest -m browser`` (``make test`` does, after nbval); ``-k ipywidgets8`` for one
front end. Needs Debian's Chromium (``apt-get install chromium``): Playwright's own browser
download does not work offline. ``D2LCNN_BROWSER_FULL=1`` runs the notebooks at full settings
instead of quick mode (minutes on a CPU), to look at real curves and widgets in the screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from .browser.harness import (ARTIFACTS, CONTROLS_VERSION, ROOT, KernelWatch, check_redraw, chromium,
                              dropdown, jupyterlab, pick_other, press_right, problems, run_all, shot,
                              shut_down, slider_handle)

pytestmark = pytest.mark.browser

FLAVOURS = ["ipywidgets8", "ipywidgets7"]
CHAPTERS = ["00_*.ipynb", "01_*.ipynb", "02_*.ipynb"]   # the tour, convolution, LeNet
FULL = os.environ.get("D2LCNN_BROWSER_FULL", "") == "1"
BROKEN = "broken_widget.ipynb"
VIEWPORT = {"width": 1400, "height": 1000}

ALL_WIDGETS = """() => [...new Set([...document.querySelectorAll('.jp-Notebook [class*="d2lcnn-"]')]
    .flatMap(e => [...e.classList].filter(c => c.startsWith('d2lcnn-'))))]"""


def chapter(pattern: str) -> Path | None:
    found = sorted((ROOT / "chapters").glob(pattern))
    return found[0] if found else None


def chapter_id(pattern: str) -> str:
    path = chapter(pattern)
    return path.stem if path else pattern


def broken_notebook() -> str:
    """After a tqdm bar: a widget built by d2lcnn's own panel whose drawing raises once the image
    slider moves (the layer dropdown still redraws; the panel shows the error in its Output), a
    hand-made widget whose observer raises (ipywidgets 8 shows that in JupyterLab's log console
    only), and a last cell that raises."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        "import matplotlib.pyplot as plt\nimport ipywidgets as widgets\nfrom tqdm.auto import tqdm\n"
        "from d2lcnn.viz.draw import panel\n\nfor _ in tqdm(range(3)):\n    pass",
        "image = widgets.IntSlider(0, 0, 5, description='image', continuous_update=False)\n"
        "layer = widgets.Dropdown(options=['conv1', 'conv2'], description='layer')\n\n"
        "def draw():\n    if image.value > 0:\n"
        "        raise RuntimeError('a broken widget: this callback raises on purpose')\n"
        "    fig, ax = plt.subplots(figsize=(2, 2))\n    ax.set_title(layer.value)\n    return fig\n\n"
        "panel('feature-maps', {'image': image, 'layer': layer}, draw)",
        "choice = widgets.Dropdown(options=['conv1', 'conv2'], description='layer')\n"
        "out = widgets.Output()\n"
        "fig, ax = plt.subplots(figsize=(2, 2))\n"
        "with out:\n    plt.show(fig)\n\n"
        "def on_change(change):\n"
        "    raise RuntimeError('a broken callback: this observer raises on purpose')\n\n"
        "choice.observe(on_change, names='value')\n"
        "widgets.VBox([choice, out]).add_class('d2lcnn-filters')",
        "raise ValueError('a broken cell: this cell raises on purpose')",
    ]]
    return nbformat.writes(nb)


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts():
    """Only this run's screenshots and logs in artifacts/browser/."""
    for old in list(ARTIFACTS.glob("*.png")) + list(ARTIFACTS.glob("*.log")):
        old.unlink()


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module", params=FLAVOURS)
def lab(request, tmp_path_factory):
    notebooks = {p.name: p for p in map(chapter, CHAPTERS) if p}
    notebooks[BROKEN] = broken_notebook()
    with jupyterlab(tmp_path_factory.mktemp(request.param), notebooks, request.param, quick=not FULL) as server:
        yield server


@pytest.fixture
def page(browser, lab):
    page = browser.new_page(viewport=VIEWPORT)
    watch = KernelWatch(page)
    page.set_default_timeout(60_000)
    yield page, watch
    page.close()


@pytest.mark.parametrize("pattern", CHAPTERS, ids=chapter_id)
def test_notebook_in_the_browser(lab, page, pattern):
    path = chapter(pattern)
    if path is None:
        pytest.fail(f"chapters/{pattern} is missing: the browser test runs the tour (00), the "
                    "convolution lesson (01) and the first architecture notebook (02, LeNet)")
    page, watch = page
    flavour, name = lab["flavour"], path.name
    tag = f"{flavour}-{path.stem}"
    log_from = lab["log"].stat().st_size
    try:
        run_all(page, watch, lab, name, timeout_s=1800 if FULL else 300)
        found = problems(page, watch, lab, log_from)
        if found:
            shot(page, f"{tag}-errors")
            pytest.fail(f"{name} under {flavour}:\n\n" + "\n\n".join(found))
        assert watch.seen > 0, "no kernel message was read from the page's websocket: the error watch is blind"
        assert watch.controls_versions == {CONTROLS_VERSION[flavour]}, (
            f"the kernel's widgets are @jupyter-widgets/controls {watch.controls_versions}, "
            f"not {CONTROLS_VERSION[flavour]} as {flavour} sends")

        # Training: the progress bar and the live plot.
        page.locator(".widget-hprogress, .widget-progress").first.wait_for(state="attached")
        live = page.locator(".d2lcnn-live-plot img").first
        live.scroll_into_view_if_needed()
        live.wait_for(state="visible")
        shot(page, f"{tag}-training")

        # Every d2lcnn widget in the notebook shows a picture.
        widgets = page.evaluate(ALL_WIDGETS)
        missing = {"d2lcnn-filters", "d2lcnn-feature-maps", "d2lcnn-live-plot"} - set(widgets)
        assert not missing, f"{name}: no {sorted(missing)} in the page (found {widgets})"
        for widget in widgets:
            box = page.locator(f".{widget}").first
            box.scroll_into_view_if_needed()
            img = box.locator("img").first
            img.wait_for(state="visible")
            assert img.evaluate("i => i.naturalWidth > 0"), f"{widget}: its picture does not load"
            shot(page, f"{tag}-{widget}")

        # The feature maps of another layer (a dropdown), then of the next image (a slider, moved
        # with the keyboard); the filters of another convolution (a dropdown).
        maps = "d2lcnn-feature-maps"
        page.locator(f".{maps}").first.scroll_into_view_if_needed()
        check_redraw(page, watch, maps, "layer dropdown", lambda: pick_other(dropdown(page, maps, "layer")),
                     f"{tag}-feature-maps-layer")
        check_redraw(page, watch, maps, "image slider", lambda: press_right(slider_handle(page, maps, "image")),
                     f"{tag}-feature-maps-image")
        shot(page, f"{tag}-feature-maps-changed")
        filters = "d2lcnn-filters"
        page.locator(f".{filters}").first.scroll_into_view_if_needed()
        check_redraw(page, watch, filters, "layer dropdown", lambda: pick_other(dropdown(page, filters, "layer")),
                     f"{tag}-filters-layer")
        shot(page, f"{tag}-filters-changed")

        found = problems(page, watch, lab, log_from)
        assert not found, "\n\n".join(found)
    finally:
        shut_down(lab["url"], name)


def test_the_checks_catch_a_broken_widget(lab, page):
    """The same checks on a scratch notebook whose widget callback and last cell raise must fail."""
    page, watch = page
    tag = f"{lab['flavour']}-broken-widget"
    log_from = lab["log"].stat().st_size
    try:
        run_all(page, watch, lab, BROKEN, timeout_s=120)
        found = problems(page, watch, lab, log_from)
        assert any("ValueError: a broken cell" in p and "error output in the notebook" in p for p in found), found
        assert any("ValueError: a broken cell" in p and "the kernel reported" in p for p in found), found
        maps = "d2lcnn-feature-maps"
        check_redraw(page, watch, maps, "layer dropdown", lambda: pick_other(dropdown(page, maps, "layer")), tag)
        with pytest.raises(pytest.fail.Exception, match="RuntimeError: a broken widget") as failure:
            check_redraw(page, watch, maps, "image slider", lambda: press_right(slider_handle(page, maps, "image")),
                         tag)
        print(f"\n{lab['flavour']}: the broken widget was caught:\n{failure.value}")
        other = "d2lcnn-filters"
        with pytest.raises(pytest.fail.Exception, match="RuntimeError: a broken callback") as failure:
            check_redraw(page, watch, other, "layer dropdown", lambda: pick_other(dropdown(page, other, "layer")),
                         f"{tag}-observer")
        print(f"\n{lab['flavour']}: the broken observer was caught:\n{failure.value}")
    finally:
        shut_down(lab["url"], BROKEN)
