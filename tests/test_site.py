"""The course as a reader and a teacher see it: the static site, the slide metadata, and a lesson
presented live with RISE in JupyterLab.

* ``tools/notebooks.py slides`` gives every cell its slide type from the lesson's structure
  (tested on copies of the committed lessons: idempotent, the text unchanged, a title slide,
  exercises on slides of their own).
* The site (``book/build.py book``) built from two lessons in quick mode, served on 127.0.0.1
  and read in headless Chromium: every page loads without a console error, each lesson page
  shows pictures (its widgets as what they drew, with the line that sends the reader to the
  notebook), the search finds a word of a lesson, the Colab and download links point to the
  lesson, and no request leaves the machine (every request is recorded).
* The same Chromium opens a lesson (slide metadata applied to a copy) in JupyterLab, runs it,
  starts the RISE slideshow, moves through three slides, then goes to a widget's slide and
  changes its dropdown: the picture is redrawn.

Marked ``site``; they run in ``make test``'s first pytest run, all on one worker (one build of two
lessons in quick mode, a minute or two on 2 cores; the RISE test runs lesson 02 in quick mode).
Screenshots land in artifacts/site/.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import json
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from .browser.harness import (ROOT, KernelWatch, check_redraw, chromium, dropdown, jupyterlab, pick_other,
                              problems, run_all, shut_down)

# One worker runs them all (pytest -n 2 --dist loadgroup): one site build, not one per worker.
pytestmark = [pytest.mark.site, pytest.mark.xdist_group("site")]

sys.path.insert(0, str(ROOT / "tools"))
from notebooks import set_slides, slides  # noqa: E402

LESSONS = ["00", "02"]          # the tour (every widget, some maths) and LeNet
LOCAL = {"127.0.0.1", "localhost"}
SHOTS = ROOT / "artifacts" / "site"
VIEWPORT = {"width": 1400, "height": 1000}


def lesson(number: str) -> Path:
    return next((ROOT / "chapters").glob(f"{number}_*.ipynb"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


# --- slide metadata ------------------------------------------------------------------------------

@pytest.mark.parametrize("number", LESSONS + ["01"])
def test_slides_metadata_follows_the_lesson(tmp_path, number):
    copy = tmp_path / lesson(number).name
    copy.write_text(lesson(number).read_text())
    before = nbformat.read(copy, as_version=4)
    slides(copy)
    nb = nbformat.read(copy, as_version=4)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert nb.metadata["rise"]["scroll"] is True

    # The text is the same, only cut between ideas; code cells are untouched.
    assert [c.source for c in nb.cells if c.cell_type == "code"] == [c.source for c in before.cells if c.cell_type == "code"]
    joined = lambda cells: re.sub(r"\s+", " ", " ".join(c.source for c in cells if c.cell_type == "markdown"))
    assert joined(nb.cells) == joined(before.cells)
    assert len({c.id for c in nb.cells}) == len(nb.cells), "cell ids must stay unique"

    # The install cell is skipped; the title is the first slide; each exercise starts a slide.
    assert kinds[0] == "skip" and "%pip install" in nb.cells[0].source
    assert kinds[1] == "slide" and nb.cells[1].source.startswith("# ")
    for cell, kind in zip(nb.cells, kinds):
        if cell.cell_type == "markdown" and re.match(r"(#+ |\*\*\d+[ .(])", cell.source):
            assert kind == "slide", cell.source[:60]
    exercises = [i for i, c in enumerate(nb.cells) if re.match(r"#+ Exercises", c.source)]
    assert exercises and kinds[exercises[0]] == "slide"
    # Code stays with the text that introduces it.
    for i, cell in enumerate(nb.cells[1:], 1):
        if cell.cell_type == "code" and nb.cells[i - 1].cell_type == "markdown":
            assert kinds[i] == "-", cell.source[:60]

    # A second run changes nothing.
    text = copy.read_text()
    assert slides(copy) is False and copy.read_text() == text


def test_slides_cut_only_outside_code_fences():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## A\n\ntext\n\n```\n**not a lead**\n```\n\n**B.** more\n\n* **c** stays")]
    set_slides(nb)
    assert [c.source for c in nb.cells] == ["## A\n\ntext\n\n```\n**not a lead**\n```", "**B.** more\n\n* **c** stays"]
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == ["slide", "slide"]


# --- vendored npm packages ----------------------------------------------------------------------

def test_vendoring_installs_every_pinned_package_in_one_npm_call(tmp_path, monkeypatch):
    """``npm install --no-save`` removes what it was not asked for: the book's MathJax install once
    deleted reveal.js under the decks' copy (a CI failure). One call fetches all; later ones none."""
    spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    calls = []

    def fake_npm(args, check):
        calls.append(args)
        modules = build.NPM / "node_modules"
        shutil.rmtree(modules, ignore_errors=True)                  # what npm keeps is only what it was asked for
        for spec in args[args.index(str(build.NPM)) + 1:]:
            name, version = spec.rsplit("@", 1)
            (modules / name / "dist").mkdir(parents=True)
            (modules / name / "dist" / "a.js").write_text(name)
            (modules / name / "package.json").write_text(json.dumps({"version": version}))

    monkeypatch.setattr(build, "NPM", tmp_path / "npm")
    monkeypatch.setattr(build.subprocess, "run", fake_npm)
    monkeypatch.setattr(build.shutil, "which", lambda _: "/usr/bin/npm")
    for package in ["mathjax", "reveal.js", "mathjax"]:
        build.vendor(package, ["dist"], tmp_path / "out" / package)
        assert (tmp_path / "out" / package / "dist" / "a.js").read_text() == package
    assert len(calls) == 1 and sorted(calls[0][-2:]) == sorted(f"{n}@{v}" for n, v in build.VENDOR.items())


# --- the site ------------------------------------------------------------------------------------

def quick_env() -> dict:
    env = {**os.environ, "D2LCNN_QUICK": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MPLBACKEND", None)
    return env


def build_book(out: Path) -> subprocess.CompletedProcess:
    """``book/build.py book`` of the test's lessons in quick mode into ``out``."""
    return subprocess.run([sys.executable, "book/build.py", "book", "--lessons", ",".join(LESSONS), "--out", str(out)],
                          cwd=ROOT, env=quick_env(), capture_output=True, text=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "book"
    run = build_book(out)
    assert run.returncode == 0, f"the site did not build:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    decks = subprocess.run([sys.executable, "book/build.py", "slides", "--lessons", ",".join(LESSONS), "--book", str(out)],
                           cwd=ROOT, env=quick_env(), capture_output=True, text=True)
    assert decks.returncode == 0, f"the slides were not written:\n{decks.stdout[-3000:]}\n{decks.stderr[-3000:]}"
    handler = functools.partial(QuietHandler, directory=str(out.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"url": f"{root}/book", "slides": f"{root}/slides", "out": out, "log": run.stdout + run.stderr}
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


class Watch:
    """Every request the page makes, every console error and uncaught exception, every failed load."""

    def __init__(self, page):
        self.requests, self.errors = [], []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"failed to load {r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.errors.append(f"{r.status} for {r.url}"))

    def outside(self) -> list[str]:
        return [u for u in self.requests if urlparse(u).scheme not in ("data", "blob", "about")
                and urlparse(u).hostname not in LOCAL]


def pages_of(out: Path) -> list[str]:
    return ["index.html", "search.html"] + [f"chapters/{p.stem}.html" for p in map(lesson, LESSONS)]


def test_every_page_loads_locally_without_errors(site, browser):
    page = browser.new_page(viewport=VIEWPORT)
    watch = Watch(page)
    try:
        for name in pages_of(site["out"]):
            page.goto(f"{site['url']}/{name}", wait_until="networkidle")
            page.wait_for_timeout(500)         # MathJax and the theme's scripts finish
            if name == "index.html":
                shot(page, "landing-page")
            assert not watch.errors, f"{name}:\n" + "\n".join(watch.errors)
        assert watch.requests, "no request was recorded: the watch is blind"
        assert not watch.outside(), "requests that leave the machine:\n" + "\n".join(sorted(set(watch.outside())))
    finally:
        page.close()


def test_landing_page_maps_the_course(site, browser):
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{site['url']}/index.html")
        rows = page.locator("table tbody tr")
        assert rows.count() == len(LESSONS)
        assert "LeNet-5" in rows.nth(1).inner_text() and "1998" in rows.nth(1).inner_text()
        rows.nth(1).locator("a").first.click()
        page.wait_for_url(re.compile(r"chapters/02_lenet\.html"))
    finally:
        page.close()


@pytest.mark.parametrize("number", LESSONS)
def test_lesson_page_shows_its_pictures_and_links(site, browser, number):
    path = lesson(number)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{site['url']}/chapters/{path.stem}.html", wait_until="networkidle")
        images = page.locator("article img")
        assert images.count() >= 1
        loaded = page.evaluate("() => [...document.querySelectorAll('article img')].filter(i => i.naturalWidth > 0).length")
        assert loaded == images.count(), f"{images.count() - loaded} pictures did not load"

        # Widgets: what they drew, their settings, and where the live widget is.
        widgets = page.locator(".d2lcnn-static-widget")
        assert widgets.count() >= 1, "no widget on the page"
        assert page.locator(".d2lcnn-static-widget img").count() >= 1
        assert not page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
        note = page.locator(".d2lcnn-static-note").first
        assert "need the running notebook" in note.inner_text()
        colab = f"https://colab.research.google.com/github/d2lcnn/d2lcnn/blob/main/chapters/{path.name}"
        assert note.locator("a").first.get_attribute("href") == colab
        page.locator(".d2lcnn-static-widget img").first.scroll_into_view_if_needed()
        shot(page, f"lesson-{path.stem}-widget")

        # The links at the top: Colab, and the notebook itself (served, byte for byte the lesson).
        launch = page.locator(".d2lcnn-launch a")
        assert launch.nth(0).get_attribute("href") == colab
        download = launch.nth(1).get_attribute("href")
        response = page.request.get(f"{site['url']}/chapters/{download}")
        assert response.ok and nbformat.reads(response.text(), as_version=4).cells[1].source == \
            nbformat.read(path, as_version=4).cells[1].source
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, f"lesson-{path.stem}")

        # Links between lessons: the previous / next buttons.
        assert page.locator("a.left-prev, a.right-next").count() >= 1
    finally:
        page.close()


def test_each_lesson_runs_in_a_process_of_its_own_and_a_second_build_executes_nothing(site):
    """The lessons are executed by ``build.py execute`` (one process each), not inside Sphinx, which
    only reads their runs from the cache; a second build without changes executes nothing."""
    for number in LESSONS:
        assert f"{lesson(number).name}: executed in " in site["log"]
    assert "Executing notebook" not in site["log"] and site["log"].count("Using cached notebook") == len(LESSONS)
    again = build_book(site["out"])
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "executed in" not in again.stdout + again.stderr
    assert "Executing notebook" not in again.stdout + again.stderr


def test_search_finds_a_word_of_a_lesson(site, browser):
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{site['url']}/search.html?q=LeCun")
        results = page.locator("#search-results ul.search li a")
        results.first.wait_for(timeout=60_000)
        assert any("02_lenet" in (results.nth(i).get_attribute("href") or "") for i in range(results.count()))
        shot(page, "search")
    finally:
        page.close()


def test_static_deck_moves_through_slides_offline(site, browser):
    page = browser.new_page(viewport=VIEWPORT)
    watch = Watch(page)
    try:
        page.goto(f"{site['slides']}/{lesson('02').stem}.slides.html", wait_until="networkidle")
        page.locator(".reveal .slides section.present").first.wait_for(state="visible")
        seen = [page.evaluate("() => JSON.stringify(Reveal.getIndices())")]
        for _ in range(3):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(300)
            seen.append(page.evaluate("() => JSON.stringify(Reveal.getIndices())"))
        assert len(set(seen)) == 4, seen
        shot(page, "deck-slide-3")
        assert page.locator(".d2lcnn-static-widget img").count() >= 1, "the deck shows no widget's picture"
        assert page.locator(".reveal .slides > section").count() > 10
        assert not watch.errors, "\n".join(watch.errors)
        assert not watch.outside(), "requests that leave the machine:\n" + "\n".join(sorted(set(watch.outside())))
    finally:
        page.close()


# --- a lesson presented live with RISE --------------------------------------------------------------

WIDGET = "d2lcnn-feature-maps"


def test_lesson_as_live_slides_with_a_working_widget(tmp_path, browser):
    name = lesson("02").name
    copy = tmp_path / name
    copy.write_text(lesson("02").read_text())
    slides(copy)
    cells = nbformat.read(copy, as_version=4).cells
    maps = next(i for i, c in enumerate(cells) if c.cell_type == "code" and "viz.feature_maps(" in c.source)
    with jupyterlab(tmp_path / "lab", {name: copy}, "ipywidgets8") as lab:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        watch = KernelWatch(page)
        log_from = lab["log"].stat().st_size
        try:
            run_all(page, watch, lab, name)
            # From the first cell, in command mode: Alt+R starts the slideshow (RISE's shortcut).
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.keyboard.press("Escape")
            page.keyboard.press("Alt+r")
            frame = rise_frame(page)
            frame.locator(".reveal .slides > section.present").first.wait_for(state="visible")
            titles = [current_slide_text(frame)]
            shot(page, "rise-title-slide")
            for _ in range(3):
                frame.locator("body").press("ArrowRight")
                page.wait_for_timeout(800)
                titles.append(current_slide_text(frame))
            assert len(set(titles)) == 4 and "LeNet" in titles[0], f"the slideshow did not move through three slides: {titles}"
            shot(page, "rise-third-slide")

            # The feature maps' slide (as RISE opens it from a selected cell): run its cell there,
            # then change the layer: the picture is redrawn by the kernel.
            frame.goto(frame.url.split("#")[0].split("?")[0] + f"?activeCellIndex={maps}")
            present = frame.locator(".reveal .slides > section.present").first
            present.wait_for(state="visible")
            assert "Feature maps" in current_slide_text(frame)
            editor = present.locator(".jp-CodeCell .jp-InputArea-editor").first
            editor.click()
            editor.press("Control+Enter")
            present.locator(f".{WIDGET} img").first.wait_for(state="visible")
            check_redraw(frame, watch, WIDGET, "layer dropdown", lambda: pick_other(dropdown(frame, WIDGET, "layer")),
                         "rise-feature-maps-layer")
            shot(page, "rise-widget-redrawn")
            found = problems(page, watch, lab, log_from)
            assert not found, "\n\n".join(found)
        finally:
            shut_down(lab["url"], name)
            page.close()


class InFrame:
    """The slideshow's frame where the harness wants a page (screenshots come from the page)."""

    def __init__(self, page, frame):
        self._page, self._frame = page, frame

    def __getattr__(self, name):
        return getattr(self._frame, name)

    def screenshot(self, **kwargs):
        return self._page.screenshot(**kwargs)


def rise_frame(page) -> InFrame:
    """The slideshow: RISE opens it in a panel of its own, an iframe of /rise/<notebook>."""
    page.wait_for_selector("iframe[src*='rise']", timeout=60_000)
    for _ in range(600):     # the iframe is in the page before its frame has navigated to /rise/
        frame = next((f for f in page.frames if "/rise/" in f.url), None)
        if frame is not None:
            return InFrame(page, frame)
        page.wait_for_timeout(100)
    raise AssertionError("RISE's slideshow frame never loaded: " + ", ".join(f.url for f in page.frames))


def current_slide_text(frame) -> str:
    return frame.locator(".reveal .slides > section.present").first.inner_text()[:200].strip()
