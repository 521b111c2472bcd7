"""The browser test's machinery: a JupyterLab server with a fresh configuration, Chromium through
Playwright, a watch on what the kernel sends the page, and the checks a student's eye makes.

Two front ends can be served (``FLAVOURS``):

* ``ipywidgets8``: JupyterLab 4 and ipywidgets 8 from ``.venv`` (what ``make lab`` gives);
* ``ipywidgets7``: ipywidgets 7.7.1 in the kernel (Colab's version) with its own front end,
  ``jupyterlab_widgets`` 1.1, which only runs in JupyterLab 3. The server then comes from a venv
  of its own in ``build/browser-ipywidgets7/`` (built on first use, about a minute, with pip),
  while the kernel stays ``.venv``'s Python with ipywidgets 7.7.1 put first on its path.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

W7 = ROOT / "build" / "browser-ipywidgets7"
W7_SERVER = ["jupyterlab==3.6.8", "jupyterlab_widgets==1.1.1"]      # the front end ipywidgets 7.7.1 shipped with
W7_KERNEL = ["ipywidgets==7.7.1", "ipython_genutils==0.2.0"]        # what Colab's kernel has

# The model version of @jupyter-widgets/controls each ipywidgets sends: proof of which one ran.
CONTROLS_VERSION = {"ipywidgets8": "2.0.0", "ipywidgets7": "1.5.0"}

SETTINGS = {   # for JupyterLab 4 (JupyterLab 3 has neither, and would log a schema error for each)
    # JupyterLab 4 renders only the cells in view unless windowing is off.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No news or update pop-up over the page.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}

TRACEBACK = "Traceback (most recent call last)"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ERROR_TEXT = re.compile(r"Traceback|\b\w+(Error|Exception): ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


# --- ipywidgets 7: JupyterLab 3 in a venv of its own --------------------------------------------

def ipywidgets7_setup() -> tuple[Path, Path]:
    """The JupyterLab 3 server's Python and the folder holding the kernel's ipywidgets 7.7.1.

    Built once in build/ (git-ignored); skips the caller when pip cannot install them (offline).
    """
    W7.parent.mkdir(parents=True, exist_ok=True)
    with open(W7.parent / f"{W7.name}.lock", "w") as lock:     # one builder at a time (pytest -n)
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_ipywidgets7()


def _build_ipywidgets7() -> tuple[Path, Path]:
    server, kernel, stamp = W7 / "server", W7 / "kernel", W7 / "ready.json"
    want = {"server": W7_SERVER, "kernel": W7_KERNEL, "python": list(sys.version_info[:2])}
    python = server / "bin" / "python"
    if stamp.exists() and json.loads(stamp.read_text()) == want and python.exists():
        return python, kernel
    shutil.rmtree(W7, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(server)],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *W7_SERVER],
             [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
              "--target", str(kernel), *W7_KERNEL]]
    start = time.time()
    for step in steps:
        try:
            subprocess.run(step, check=True, capture_output=True, text=True, timeout=300)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            shutil.rmtree(W7, ignore_errors=True)
            out = (getattr(e, "stderr", None) or getattr(e, "output", None) or str(e))[-1500:]
            pytest.skip("ipywidgets 7.7 in the browser needs JupyterLab 3 with jupyterlab_widgets 1.1 "
                        f"(ipywidgets 7's front end does not load in JupyterLab 4); installing them "
                        f"into {W7.relative_to(ROOT)} failed (no package index reachable?):\n{out}")
    W7.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(want))
    print(f"built {W7.relative_to(ROOT)} in {time.time() - start:.0f} s", file=sys.stderr)
    return python, kernel


# --- the server ----------------------------------------------------------------------------------

@contextmanager
def jupyterlab(home: Path, notebooks: dict[str, Path | str], flavour: str, quick: bool = True):
    """A JupyterLab server on 127.0.0.1 serving copies of ``notebooks`` (name: path or JSON text).

    Fresh configuration, runtime, settings and workspace folders under ``home``; no token, no
    browser; kernel ``python3`` is .venv's Python, with ``D2LCNN_QUICK`` set and no ``MPLBACKEND``
    (so that figures render inline); under ``ipywidgets7`` it imports ipywidgets 7.7.1 first.
    Yields ``{"url", "log", "flavour"}``; the server is stopped on exit whatever happens.
    """
    if flavour == "ipywidgets8":
        server_python, overlay = Path(sys.executable), None
    elif flavour == "ipywidgets7":
        server_python, overlay = ipywidgets7_setup()
    else:
        raise ValueError(flavour)
    work = home / "work"
    work.mkdir(parents=True)
    for name, source in notebooks.items():
        if isinstance(source, Path):
            shutil.copy(source, work / name)
        else:
            (work / name).write_text(source)
    settings = home / "settings"
    for rel, value in (SETTINGS if flavour == "ipywidgets8" else {}).items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    # The kernel, named as the notebooks name it: .venv's Python whichever server runs.
    spec = home / "share" / "kernels" / "python3"
    spec.mkdir(parents=True)
    kernel_env = {"PYTHONPATH": str(overlay)} if overlay else {}
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({flavour})", "language": "python", "env": kernel_env}))
    env = {**os.environ, "D2LCNN_QUICK": "1" if quick else "0",
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_PATH": str(home / "share"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    for name in ("MPLBACKEND", "PYTHONPATH", "JUPYTER_TOKEN"):
        env.pop(name, None)
    port = free_port()
    log_path = home / "server.log"
    args = [str(server_python), "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
            "--ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
            f"--ServerApp.root_dir={work}", "--ServerApp.disable_check_xsrf=True"]
    if flavour == "ipywidgets8":
        args.append("--LabApp.news_url=None")
    if os.geteuid() == 0:
        args.append("--allow-root")
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        server = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                                  start_new_session=True)
        try:
            deadline = time.time() + 90
            while True:
                try:
                    urllib.request.urlopen(f"{url}/api", timeout=2)
                    break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        raise RuntimeError(f"JupyterLab did not start:\n{log_path.read_text()[-3000:]}")
                    time.sleep(0.5)
            yield {"url": url, "log": log_path, "flavour": flavour}
        finally:
            server.terminate()                    # the server shuts its kernels down on SIGTERM
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)          # its own process group: the server and its kernels
                server.wait(timeout=10)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, ARTIFACTS / f"{flavour}-server.log")


@contextmanager
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: apt-get install chromium (tools/setup.sh --test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def api(url: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def sessions_of(url: str, name: str) -> list[dict]:
    return [s for s in api(url, "/api/sessions") if s["path"].endswith(name)]


def shut_down(url: str, name: str) -> None:
    """End the notebook's session (and kernel): the next notebook gets the CPU to itself."""
    for s in sessions_of(url, name):
        try:
            api(url, f"/api/sessions/{s['id']}", method="DELETE")
        except OSError:
            pass


# --- what the kernel sends -----------------------------------------------------------------------

def decode(payload) -> tuple[str, str, str, dict] | None:
    """(channel, msg_type, parent msg_type, content) of one kernel websocket frame, or None.

    JupyterLab 4 speaks the binary ``v1.kernel.websocket.jupyter.org`` protocol (a count and
    offsets as little-endian uint64, then channel, header, parent header, metadata, content,
    buffers); JupyterLab 3 sends JSON text (binary only for messages with buffers).
    """
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            return (msg.get("channel", ""), msg["header"]["msg_type"],
                    (msg.get("parent_header") or {}).get("msg_type", ""), msg.get("content") or {})
        data = bytes(payload)
        count = int.from_bytes(data[:8], "little")
        if 5 < count < 1000 and len(data) >= 8 * (count + 1):
            offsets = [int.from_bytes(data[8 * (i + 1):8 * (i + 2)], "little") for i in range(count)]
            parts = [data[offsets[i]:offsets[i + 1]] for i in range(count - 1)]
            header, parent, content = json.loads(parts[1]), json.loads(parts[2]), json.loads(parts[4])
            return parts[0].decode(), header["msg_type"], parent.get("msg_type", ""), content
        # The JSON protocol's binary form: uint32 count and offsets (big-endian), the JSON first.
        count = int.from_bytes(data[:4], "big")
        offsets = [int.from_bytes(data[4 * (i + 1):4 * (i + 2)], "big") for i in range(count)]
        msg = json.loads(data[offsets[0]:offsets[1] if count > 1 else len(data)])
        return (msg.get("channel", ""), msg["header"]["msg_type"],
                (msg.get("parent_header") or {}).get("msg_type", ""), msg.get("content") or {})
    except Exception:
        return None


class KernelWatch:
    """Every error the kernel reports to the page, including those JupyterLab shows nowhere in the
    notebook: an exception in a widget callback (a ``comm_msg``) goes to the log console under
    ipywidgets 8. Also which @jupyter-widgets/controls model version the kernel's widgets use."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.seen = 0
        self.controls_versions: set[str] = set()
        page.on("websocket", self._attach)

    def _error(self, text: str) -> None:
        if text not in self.errors:         # JupyterLab 3 may hear a message on two connections
            self.errors.append(text)

    def _attach(self, ws) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        msg = decode(payload)
        if msg is None:
            return
        channel, kind, parent, content = msg
        self.seen += 1
        if kind == "error":
            tb = ANSI.sub("", "\n".join(content.get("traceback", [])[-3:]))
            self._error(f"{content.get('ename')}: {content.get('evalue')} "
                               f"(raised while handling a {parent or 'message'})\n{tb}")
        elif kind == "stream" and content.get("name") == "stderr" and TRACEBACK in content.get("text", ""):
            self._error(f"traceback on stderr (while handling a {parent}):\n{content['text'][-1500:]}")
        elif kind == "comm_msg" and "outputs" in ((content.get("data") or {}).get("state") or {}):
            # An Output widget's new content (d2lcnn's widgets show a failed redraw's message there).
            for out in content["data"]["state"]["outputs"] or []:
                text = out.get("text", "") if out.get("output_type") == "stream" else ""
                if out.get("output_type") == "error":
                    self._error(f"{out.get('ename')}: {out.get('evalue')} (shown in a widget's Output)")
                elif out.get("name") == "stderr" and ERROR_TEXT.search(text):
                    self._error(f"a widget's Output shows on stderr: {text[-1500:]}")
        elif kind == "comm_open":
            state = (content.get("data") or {}).get("state") or {}
            if state.get("_model_module") == "@jupyter-widgets/controls":
                self.controls_versions.add(state.get("_model_module_version", "?"))


# --- the page ------------------------------------------------------------------------------------

def wait_for_kernel(page, url: str, name: str, state: str = "idle", timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if any(s["kernel"]["execution_state"] == state for s in sessions_of(url, name)):
            return
        page.wait_for_timeout(500)          # (lets Playwright deliver websocket events meanwhile)
    raise AssertionError(f"the kernel of {name} was not {state} within {timeout_s:.0f} s")


PROMPTS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"""


def run_all(page, watch: KernelWatch, lab: dict, name: str, timeout_s: float = 300) -> None:
    """Open a notebook, wait for its kernel, run all cells from the Run menu and wait until every
    code cell has run (or a cell's error stopped the run) and the kernel is idle again."""
    # A workspace of its own, reset: no tab of an earlier notebook comes back with the page.
    page.goto(f"{lab['url']}/lab/workspaces/{Path(name).stem}/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    wait_for_kernel(page, lab["url"], name)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    deadline = time.time() + timeout_s
    checked = time.time()
    while True:
        prompts = page.evaluate(PROMPTS)
        done = prompts and all(re.fullmatch(r"\[\d+\]:?", p) for p in prompts)
        stopped = any("execute_request" in e for e in watch.errors) and not any("*" in p for p in prompts)
        if done or stopped:
            break
        if time.time() > checked + 5:
            checked = time.time()
            if any(s["kernel"]["execution_state"] == "dead" for s in sessions_of(lab["url"], name)):
                shot(page, f"{lab['flavour']}-{Path(name).stem}-dead-kernel")
                raise AssertionError(f"{name}: the kernel died during Run All (out of memory?); "
                                     f"see {lab['flavour']}-server.log in artifacts/browser/")
        if time.time() > deadline:
            shot(page, f"{lab['flavour']}-{Path(name).stem}-timeout")
            raise AssertionError(f"{name}: Run All did not finish within {timeout_s:.0f} s; prompts: {prompts}")
        page.wait_for_timeout(500)
    wait_for_kernel(page, lab["url"], name)
    page.wait_for_timeout(500)              # the last outputs reach the page


ERROR_OUTPUTS = """() => [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"],' +
    '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"],' +
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')]
    .map(e => e.textContent).filter(t => /Traceback|Error:/.test(t))"""

# What the widget managers show in place of a widget they cannot render.
WIDGET_FAILURES = """() => [...document.querySelectorAll('.jp-OutputArea-output')]
    .map(e => e.textContent).filter(t => /Error displaying widget|Failed to (load|create) (model|view)|Open Browser Console for more detailed log/.test(t))"""


def problems(page, watch: KernelWatch, lab: dict, log_from: int) -> list[str]:
    """Everything wrong so far: error outputs in the notebook, widgets that did not render, errors
    the kernel sent (cells and widget callbacks) and tracebacks in the server's log (the kernel's
    own stderr lands there) since byte ``log_from``."""
    found = [f"error output in the notebook:\n{t[-1500:]}" for t in page.evaluate(ERROR_OUTPUTS)]
    found += [f"a widget did not render: {t[:300]}" for t in page.evaluate(WIDGET_FAILURES)]
    found += [f"the kernel reported {e}" for e in watch.errors]
    log = lab["log"].read_bytes()[log_from:].decode(errors="replace")
    if TRACEBACK in log:
        found.append(f"traceback in the server/kernel log:\n{log[max(0, log.index(TRACEBACK) - 300):][:2500]}")
    return found


def image_src(page, widget: str) -> str:
    img = page.locator(f".{widget} img").first
    img.wait_for(state="visible", timeout=60_000)
    return img.get_attribute("src")


CURRENT_SRC = """(w) => { const i = document.querySelector('.' + w + ' img'); return i ? i.src : null; }"""
OUTPUT_TEXT = """(w) => { const o = document.querySelector('.' + w + ' .jp-OutputArea, .' + w + ' .widget-output');
                          return o ? o.textContent : ''; }"""


def check_redraw(page, watch: KernelWatch, widget: str, what: str, change, shot_name: str,
                 timeout_s: float = 30) -> None:
    """Change a control of ``widget`` through the page; its picture must change, no error may come
    from the kernel (a callback that raises shows nowhere in the notebook under ipywidgets 8),
    and the widget's output must hold a picture and no error text."""
    before = image_src(page, widget)
    errors_before = len(watch.errors)
    change()
    deadline = time.time() + timeout_s
    while True:
        page.wait_for_timeout(200)
        text = page.evaluate(OUTPUT_TEXT, widget)
        if len(watch.errors) > errors_before or ERROR_TEXT.search(text):
            shot(page, f"{shot_name}-raised")
            pytest.fail(f"{widget}: changing the {what} made the kernel report an error:\n"
                        + "\n".join(watch.errors[errors_before:] or [text[-1500:]]))
        src = page.evaluate(CURRENT_SRC, widget)
        if src and src != before:
            break
        if time.time() > deadline:
            shot(page, f"{shot_name}-did-not-redraw")
            pytest.fail(f"{widget}: the picture did not change within {timeout_s:.0f} s after the {what} changed")
    page.wait_for_timeout(300)
    text = page.evaluate(OUTPUT_TEXT, widget)
    if len(watch.errors) > errors_before or ERROR_TEXT.search(text):
        shot(page, f"{shot_name}-raised")
        pytest.fail(f"{widget}: an error after the {what} changed:\n{text[-1500:]}\n"
                    + "\n".join(watch.errors[errors_before:]))
    image_src(page, widget)


def slider_handle(page, widget: str, description: str):
    """The handle of the slider labelled ``description`` (noUiSlider in 8, jQuery UI in 7)."""
    slider = page.locator(f".{widget} .widget-slider").filter(
        has=page.locator(".widget-label", has_text=description)).first
    return slider.locator(".noUi-handle, .ui-slider-handle").first


def dropdown(page, widget: str, description: str):
    return page.locator(f".{widget} .widget-dropdown").filter(
        has=page.locator(".widget-label", has_text=description)).first.locator("select")


def pick_other(select) -> None:
    """Select an option other than the current one (the last, or else the first), as a user does."""
    options = select.locator("option").all_text_contents()
    current = select.evaluate("s => s.options[s.selectedIndex].textContent")
    choice = options[-1] if options[-1] != current else options[0]
    select.select_option(label=choice)


def press_right(handle) -> None:
    handle.focus()
    handle.press("ArrowRight")
