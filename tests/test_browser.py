"""The course as a student sees it: JupyterLab in a real (headless) Chromium.

Starts JupyterLab on 127.0.0.1 with a fresh configuration (no token, no browser, windowing off so
every cell renders, no news pop-ups), opens the tour and the LeNet notebook, runs all cells in
quick mode through the Run menu, and checks what a student would: no cell shows an error, the
progress bar and the live training plot appear, the filter and feature-map widgets show a
picture, and changing a dropdown or a slider in the page redraws that picture. Screenshots of
those moments land in artifacts/browser/.

Run it with ``pytest -m browser`` (``make test`` does, after nbval). Needs Debian's Chromium
(``apt-get install chromium``): Playwright's own browser download does not work offline.
``D2LCNN_BROWSER_FULL=1`` runs the notebooks at full settings instead of quick mode (minutes
on a CPU), to look at real curves and widgets in the screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NOTEBOOKS = ["00_fashion_mnist_and_tools.ipynb", "01_lenet.ipynb"]
FULL = os.environ.get("D2LCNN_BROWSER_FULL", "") == "1"

pytestmark = pytest.mark.browser

SETTINGS = {
    # JupyterLab 4 renders only the cells in view unless windowing is off.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the notebooks; its URL."""
    home = tmp_path_factory.mktemp("lab")
    work = home / "work"
    work.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "chapters" / name, work / name)
    settings = home / "settings"
    for rel, value in SETTINGS.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = {**os.environ, "D2LCNN_QUICK": "0" if FULL else "1", "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    env.pop("MPLBACKEND", None)
    port = free_port()
    log = open(home / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={work}",
         "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None"]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start:\n{(home / 'server.log').read_text()}")
                time.sleep(0.5)
        yield {"url": url, "log": home / "server.log"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (tools/setup.sh --test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def wait_for_idle_kernel(url: str, name: str, timeout_s: int = 90) -> None:
    """Wait until the server reports the notebook's kernel started and idle."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions", timeout=5))
        if any(s["path"].endswith(name) and s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        time.sleep(0.5)
    raise AssertionError(f"the kernel of {name} did not start within {timeout_s} s")


def run_all(page, url: str, name: str, timeout_s: int = 300) -> None:
    """Open a notebook, wait for its kernel, run all cells from the Run menu, wait until done."""
    # A workspace of its own, reset: no tab of an earlier notebook comes back with the page.
    page.goto(f"{url}/lab/workspaces/{Path(name).stem}/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_idle_kernel(url, name)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    # Every code cell ends with an execution count: no "[ ]" (never run) or "[*]" (running) left.
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""", timeout=timeout_s * 1000)


def errors_shown(page) -> list[str]:
    """Texts of error outputs in the notebook (tracebacks, not mere warnings)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')]
            .map(e => e.textContent).filter(t => /Traceback|Error:/.test(t))""")


def image_src(page, widget: str) -> str:
    img = page.locator(f".{widget} img").first
    img.wait_for(state="visible", timeout=60_000)
    return img.get_attribute("src")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def check_redraw(page, widget: str, change) -> None:
    """Change a control of ``widget`` through the page and wait for its picture to change."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    before = image_src(page, widget)
    change()
    try:
        page.wait_for_function(
            "([w, src]) => { const i = document.querySelector('.' + w + ' img'); return i && i.src !== src; }",
            arg=[widget, before], timeout=30_000)
    except PlaywrightTimeout:
        shot(page, f"{widget}-did-not-redraw")
        pytest.fail(f"{widget}: the picture did not change after the control changed "
                    "(did the widget's callback raise? see the kernel log)")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_the_browser(lab, browser, name):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        run_all(page, lab["url"], name, timeout_s=1800 if FULL else 300)
        stem = Path(name).stem
        assert not errors_shown(page), errors_shown(page)

        progress = page.locator(".widget-hprogress, .widget-progress").first
        progress.wait_for(state="attached", timeout=30_000)
        live = page.locator(".d2lcnn-live-plot img").first
        live.scroll_into_view_if_needed()
        live.wait_for(state="visible", timeout=30_000)
        shot(page, f"{stem}-training")

        for widget in ("d2lcnn-filters", "d2lcnn-feature-maps", "d2lcnn-mistakes", "d2lcnn-cam",
                       "d2lcnn-receptive-field"):
            page.locator(f".{widget}").first.scroll_into_view_if_needed()
            image_src(page, widget)
            shot(page, f"{stem}-{widget}")

        # A dropdown changed with the mouse and keyboard: the feature maps of another layer.
        maps = page.locator(".d2lcnn-feature-maps").first
        select = maps.locator("select").nth(1)            # image-class, then layer
        options = select.locator("option").all_text_contents()
        check_redraw(page, "d2lcnn-feature-maps", lambda: select.select_option(options[-1]))
        # A slider moved with the keyboard: the next image.
        handle = maps.locator(".noUi-handle, .ui-slider-handle").first
        check_redraw(page, "d2lcnn-feature-maps", lambda: (handle.focus(), handle.press("ArrowRight")))
        shot(page, f"{stem}-feature-maps-changed")
        # The filters of another convolution.
        layer = page.locator(".d2lcnn-filters select").first
        convs = layer.locator("option").all_text_contents()
        check_redraw(page, "d2lcnn-filters", lambda: layer.select_option(convs[-1]))
        shot(page, f"{stem}-filters-changed")
        assert not errors_shown(page), errors_shown(page)
    finally:
        page.close()
