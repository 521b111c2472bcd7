"""Build the course's static site (Jupyter Book 1.x) and the lessons' static slide decks.

    .venv/bin/python book/build.py book   [--lessons 00,02] [--out build/book]
    .venv/bin/python book/build.py slides [--lessons 00,02] [--book build/book] [--out build/slides]

``book`` writes the book's sources into ``<out>/../book-src/`` (the table of contents and the
landing page, both made from the lessons in chapters/, which are linked in, not copied), vendors
MathJax with npm, and runs Jupyter Book's Sphinx build into ``--out``. Every lesson is executed at the
setting its notebook picks (its CPU setting without a GPU; ``D2LCNN_QUICK=1`` for quick mode, with
a cache and an output of its own: ``build/quick/book``). jupyter-cache keeps the executed outputs
under ``<out>/../.book-cache/``: a second build without changes re-executes nothing, a lesson
whose code changed is executed again alone, and a change to the d2lcnn package runs them all.

Each lesson is executed in a process of its own (``execute``, see :func:`execute_lessons`) before
Sphinx reads them.

``slides`` converts the lessons as the book executed them (from its jupyter-cache) into reveal.js
decks with nbconvert, after giving them their slide metadata (tools/notebooks.py's rules) and
replacing their widgets by what they drew; reveal.js and MathJax are vendored next to the decks.

Nothing is loaded from a CDN when a page or a deck is read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
NPM = ROOT / "build" / "npm"
VENDOR = {"mathjax": "3.2.2", "reveal.js": "4.6.0"}
"""The npm packages served with the site and the decks, pinned."""
MATHJAX_FILES = ["es5/tex-chtml.js", "es5/output/chtml/fonts/woff-v2"]
REVEAL_FILES = ["dist", "plugin/notes"]

sys.path.insert(0, str(BOOK / "_ext"))
sys.path.insert(0, str(ROOT / "tools"))


def quick() -> bool:
    return os.environ.get("D2LCNN_QUICK", "") not in ("", "0")


def lessons(only: str | None) -> list[Path]:
    """The lessons in course order; ``only`` picks some by number (``00,02``)."""
    found = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = only.split(",")
        found = [p for p in found if p.name[:2] in wanted]
        missing = set(wanted) - {p.name[:2] for p in found}
        if missing:
            raise SystemExit(f"--lessons {only}: no lesson numbered {', '.join(sorted(missing))} in chapters/")
    if not found:
        raise SystemExit("no lesson in chapters/ (NN_name.ipynb)")
    return found


def write(path: Path, text: str) -> None:
    """Write ``text`` only when it differs: Sphinx re-reads a source whose time changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


# --- the landing page -------------------------------------------------------------------------

YEAR = re.compile(r"\b(19[4-9]\d|20[0-4]\d)\b")


def readme_rows() -> dict[str, str]:
    """Lesson stem -> "what it teaches", from the README's table of notebooks."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`(\d\d_\w+)`\s*\|(.*)\|\s*$", line)
        if m:
            rows[m[1]] = m[2].strip()
    return rows


def course_map(paths: list[Path]) -> list[tuple[str, str, str, str]]:
    """(page, lesson, year, what it teaches) per lesson: the lesson's title (its first heading,
    ``NN · Name: tagline``), the first year in its *Where it sits in history* paragraph, and the
    README's line for it (its tagline when the README has none)."""
    teaches, rows = readme_rows(), []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        title = re.search(r"^# (.+)$", text, re.M)
        title = title[1].strip() if title else path.stem
        name, _, tagline = title.partition(": ")
        history = text.find("Where it sits in history")
        year = YEAR.search(text, history) if history >= 0 else None
        rows.append((f"chapters/{path.stem}", name, year[1] if year else "",
                     teaches.get(path.stem, tagline)))
    return rows


def landing_page(paths: list[Path]) -> str:
    rows = course_map(paths)
    table = "\n".join(f"| [{name}]({page}.ipynb) | {year} | {what} |" for page, name, year, what in rows)
    finale = [p for p in paths if p.stem.endswith("_comparison")]
    chart = (f"## The finale: every network on one chart\n\n"
             f"The bubble chart of [the last lesson](chapters/{finale[0].stem}.ipynb): test accuracy "
             f"on Fashion-MNIST against FLOPs per image, the circle's area proportional to the parameters, "
             f"as it was drawn when that lesson ran for this site.\n\n"
             f'<div class="d2lcnn-chart"><img src="_static/finale-chart.png" alt="the bubble chart of every '
             f'network: accuracy against FLOPs"></div>\n' if finale else "")
    mode = ("**Quick mode.** This build ran every lesson in quick mode (`D2LCNN_QUICK=1`): its curves "
            "and accuracies mean nothing.\n\n" if quick() else "")
    return f"""# Convolutional networks, LeNet to ConvNeXt

Interactive lessons, one per architecture, that build each network from the blocks of a small
helper package (`d2lcnn`), train it on Fashion-MNIST and open it up with widgets: learned filters,
feature maps, mistakes, where it looks. Every page here is a lesson as it ran on a CPU (no GPU has
been lent to this project yet), with all its figures and printed results; each page links to its
notebook, to run it yourself in JupyterLab or on Google Colab.

{mode}## The course map

| lesson | year | what it teaches |
| --- | --- | --- |
{table}

{chart}
## Three ways to use it

* **Read it here.** The widgets show what they drew when the lesson ran; their controls need the notebook.
* **Run it.** `make lab` opens the notebooks in JupyterLab; or open a lesson in Colab from its page.
* **Teach from it.** Every lesson is also a slide deck: in JupyterLab press the RISE button
  (or Alt+R) to present it live, widgets working; `make slides` writes static decks.

The code, the tests and how every number was measured: [the repository](https://github.com/d2lcnn/d2lcnn).
"""


def toc(paths: list[Path]) -> str:
    entries = "\n".join(f"      - file: chapters/{p.stem}" for p in paths)
    return f"format: jb-book\nroot: index\nparts:\n  - caption: The lessons\n    chapters:\n{entries}\n"


# --- vendored files -----------------------------------------------------------------------------

def vendor(package: str, files: list[str], target: Path) -> None:
    """Copy ``files`` of the pinned npm ``package`` to ``target``, fetching every pinned package with npm once.

    All of ``VENDOR`` is installed in one npm call: ``npm install --no-save`` removes what it was not
    asked for, so installing one package at a time would delete the other. A lock on ``build/npm``
    keeps two builds at once (two terminals, two test workers) from installing and copying together.
    """
    import fcntl

    NPM.mkdir(parents=True, exist_ok=True)
    with open(NPM / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if any(installed(name) != version for name, version in VENDOR.items()):
            if not shutil.which("npm"):
                raise SystemExit(f"npm is missing: it fetches {', '.join(VENDOR)}, served with the site "
                                 "instead of a CDN (apt-get install npm)")
            subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NPM),
                            *(f"{name}@{version}" for name, version in VENDOR.items())], check=True)
        home = NPM / "node_modules" / package
        for rel in files:
            source, dest = home / rel, target / rel.split("/", 1)[-1] if rel.startswith("es5/") else target / rel
            if dest.exists() and dest.stat().st_mtime >= source.stat().st_mtime:
                continue
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)


def installed(package: str) -> str | None:
    """The version of ``package`` in build/npm, or None when it is not there."""
    meta = NPM / "node_modules" / package / "package.json"
    return json.loads(meta.read_text())["version"] if meta.exists() else None


# --- the book ------------------------------------------------------------------------------------

def sources(paths: list[Path], src: Path) -> None:
    """The book's source folder ``src``: config, extension, static files, the lessons linked in."""
    src.mkdir(parents=True, exist_ok=True)
    for sub in ("_config.yml", "_ext", "_static"):
        target = src / sub
        if not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
            target.symlink_to(BOOK / sub)
    chapters = src / "chapters"
    chapters.mkdir(parents=True, exist_ok=True)
    for old in chapters.glob("*.ipynb"):
        if old.name not in {p.name for p in paths}:
            old.unlink()
    for path in paths:
        link = chapters / path.name
        if not link.is_symlink():
            link.symlink_to(path)
    write(src / "_toc.yml", toc(paths))
    write(src / "index.md", landing_page(paths))


def extension_version() -> str:
    """A hash of the site's extension: when its code changes, every page is read again."""
    digest = hashlib.sha256()
    for path in sorted((BOOK / "_ext").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def forget_runs_of_another_package(cache: Path) -> None:
    """jupyter-cache knows a lesson by its code cells, not by the d2lcnn code they call: when the
    package changed since the cached runs, every lesson runs again."""
    digest = hashlib.sha256()
    for path in sorted(p for p in (ROOT / "d2lcnn").rglob("*") if p.suffix in (".py", ".json")):
        digest.update(path.read_bytes())
    stamp, now = cache / "package.sha256", digest.hexdigest()
    if stamp.exists() and stamp.read_text() != now and (cache / "jupyter-cache").exists():
        print("d2lcnn changed since the cached runs: every lesson runs again")
        shutil.rmtree(cache / "jupyter-cache")
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(now)


def execute_lessons(paths: list[Path], cache: Path) -> None:
    """Execute each lesson that has no run in the jupyter-cache ``cache``, each in a process of its
    own (``build.py execute``), which stores the run there: the Sphinx build then only reads it.

    Why not let myst-nb execute them inside the Sphinx process, as it can: there, in builds of all the
    lessons with bfloat16 as the CPU's default, lesson 10 hung four times of four (2026-12-04, with
    ipykernel 7.4 and 6.31), its kernel idle after a widget cell and nbclient waiting for a reply that
    never came; in a build of lesson 10 alone, and run by nbclient or jupyter-cache's executor in a
    process of its own, it did not (four runs). We did not find the cause.
    """
    from jupyter_cache import get_cache

    runs = get_cache(cache)
    for path in paths:
        try:
            runs.match_cache_notebook(nbformat.read(path, as_version=4))
            continue
        except KeyError:
            pass
        print(f"executing {path.name}", flush=True)
        done = subprocess.run([sys.executable, __file__, "execute", str(path), "--cache", str(cache)])
        if done.returncode:
            raise SystemExit(f"the book did not build: {path.name} failed (its error is above)")


def execute_one(path: Path, cache: Path) -> None:
    """Run the lesson at ``path`` beside it (as a student does) and store the run in ``cache``."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=None, allow_errors=False)
    if result.err is not None:
        print(result.exc_string, file=sys.stderr)
        raise SystemExit(1)
    get_cache(cache).cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": result.time}),
                                           check_validity=False, overwrite=True)
    print(f"{path.name}: executed in {result.time:.2f} seconds", flush=True)


def build_book(paths: list[Path], out: Path) -> None:
    from jupyter_book.sphinx import build_sphinx

    src, cache = out.parent / "book-src", out.parent / ".book-cache"
    forget_runs_of_another_package(cache)
    execute_lessons(paths, cache / "jupyter-cache")
    sources(paths, src)
    vendor("mathjax", MATHJAX_FILES, src / "_vendor" / "mathjax")      # served as _static/mathjax/
    start = time.time()
    result = build_sphinx(src, out, noconfig=True, path_config=str(src / "_config.yml"),
                          doctreedir=cache / "doctrees",
                          confoverrides={"external_toc_path": str(src / "_toc.yml"), "latex_individualpages": False,
                                         "nb_execution_cache_path": str(cache / "jupyter-cache"),
                                         "d2lcnn_site_version": extension_version()})
    if result:
        raise SystemExit(f"the book did not build: {result}")
    print(f"built {len(paths)} lessons into {out} in {time.time() - start:.1f} s"
          f"{' (quick mode)' if quick() else ''}: open {out / 'index.html'}")


# --- the slides ----------------------------------------------------------------------------------

def deck_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The executed lesson ``nb`` with its slide metadata, each widget replaced by what it drew."""
    from notebooks import set_slides
    from widget_pictures import VIEW, live_where, static_widget

    set_slides(nb)
    models = {}
    if "widgets" in nb.metadata:
        from widget_pictures import widget_state
        models = widget_state(nb.metadata)
        del nb.metadata["widgets"]
    colab = f"https://colab.research.google.com/github/d2lcnn/d2lcnn/blob/main/chapters/{name}"
    where = live_where(colab, f"https://github.com/d2lcnn/d2lcnn/blob/main/chapters/{name}")
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(VIEW, None)
            if view is not None:
                output["data"] = {"text/html": static_widget(view["model_id"], models, where)}
    return nb


def executed(path: Path, book: Path) -> nbformat.NotebookNode:
    """The lesson at ``path`` as the book's run executed it, from the book's jupyter-cache."""
    from jupyter_cache import get_cache

    cache = get_cache(book.parent / ".book-cache" / "jupyter-cache")
    try:
        return cache.merge_match_into_notebook(nbformat.read(path, as_version=4))[1]
    except KeyError:
        raise SystemExit(f"{path.name} has no executed run in {book.parent / '.book-cache'}: build the book "
                         "first (make book), whose executed lessons the decks show") from None


def build_slides(paths: list[Path], book: Path, out: Path) -> None:
    from nbconvert import SlidesExporter

    vendor("reveal.js", REVEAL_FILES, out / "reveal.js")
    vendor("mathjax", MATHJAX_FILES, out / "mathjax")
    exporter = SlidesExporter(extra_template_basedirs=[str(BOOK)], template_name="slides",
                              reveal_url_prefix="reveal.js", reveal_scroll=True,
                              reveal_theme="white")   # (simple and others load Google fonts)
    for path in paths:
        body, _ = exporter.from_notebook_node(deck_notebook(executed(path, book), path.name))
        write(out / f"{path.stem}.slides.html", body)
        print(f"{out / (path.stem + '.slides.html')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["book", "slides", "execute"])
    parser.add_argument("lesson", nargs="?", type=Path, help="execute: the lesson to run (the book runs each so)")
    parser.add_argument("--cache", type=Path, help="execute: the jupyter-cache to store its run in")
    parser.add_argument("--lessons", help="only these lessons, by number: 00,02")
    default = ROOT / "build" / ("quick/book" if quick() else "book")
    parser.add_argument("--out", type=Path, help=f"the output folder (default {default.relative_to(ROOT)}, "
                                                 "slides: build/slides)")
    parser.add_argument("--book", type=Path, default=default, help="slides: the book build whose executed lessons to show")
    args = parser.parse_args()
    if args.what == "execute":
        if args.lesson is None or args.cache is None:
            parser.error("execute needs a lesson and --cache")
        return execute_one(args.lesson.resolve(), args.cache)
    paths = lessons(args.lessons)
    if args.what == "book":
        build_book(paths, (args.out or default).resolve())
    else:
        build_slides(paths, args.book.resolve(), (args.out or args.book.parent / "slides").resolve())


if __name__ == "__main__":
    main()
