"""The notebooks' first cell, run as on Colab: install d2lcnn from git into an environment that
already has torch, torchvision and ipywidgets 7.7.1, then use it.

* The repository is the committed HEAD, cloned bare (what a student's pip clones from GitHub).
* The environment looks like Colab's kernel: torch, torchvision and everything they require are
  *preinstalled* (symlinked from .venv's site-packages into one folder that a ``.pth`` file adds
  to a venv: no 5 GB copy), and pip installed Colab's ipywidgets 7.7.1, IPython 7.34, ipykernel
  6.17, notebook 6.5 (which widgetsnbextension 3.6 needs), matplotlib 3.10, tqdm and pip 24.1.
  That venv is built once in ``build/colab-like/`` (git-ignored). Every run makes a fresh venv
  whose ``.pth`` line makes the built one's site-packages a site directory of its own, the way
  Colab's packages sit in the system's dist-packages: pip installs only into the fresh venv and
  never uninstalls outside it, so the built one stays as built and no run sees another's install.
* The command is the one in ``chapters/00_*.ipynb``'s first cell, ``%pip install ...`` run as
  ``python -m pip install ...``, with the GitHub URL pointed at the clone. It runs without this
  machine's pip constraint file (which caps torch at the local release; Colab has none), after a
  dry run whose report is checked first, so a resolution that would replace torch fails the test
  before it downloads gigabytes.
* Then the package must come from the venv's site-packages with every file git tracks under
  ``d2lcnn/``, import all its modules under ipywidgets 7.7.1, list the models and train a few
  quick steps on the offline Fashion-MNIST; torch and torchvision must still be the preinstalled
  ones, ipywidgets still 7.7.1, and nothing preinstalled downgraded.

Skipped, with pip's own words, only when pip cannot reach a package index.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "build" / "colab-like"
PREINSTALLED = ("torch", "torchvision")
"""Taken from .venv with their whole requirement closure, as Colab ships them."""
COLAB_KERNEL = ["pip==24.1.2", "ipywidgets==7.7.1", "ipython==7.34.0", "ipykernel==6.17.1",
                "notebook==6.5.7", "matplotlib==3.10.*", "tqdm==4.67.1"]
"""What Colab's kernel has that our dependencies would otherwise pull, at Colab's versions as far as
we know them (`pip list` in a Colab notebook says when they move), and a pip of Colab's era
(Python 3.11's own pip 23.2 cannot parse a ``git+file:///`` requirement)."""
UNCHANGED = ("torch", "torchvision", "numpy", "ipywidgets", "ipython", "ipykernel", "matplotlib",
             "widgetsnbextension", "jupyterlab-widgets")
"""Preinstalled packages the first cell must leave exactly as they are."""
COLAB_VERSIONS = {"torch": "2.11.0", "torchvision": "0.26.0", "numpy": "2.0.2", "ipywidgets": "7.7.1"}
"""Colab's own releases: every requirement on them of what the cell installs must accept these."""
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]

pytestmark = pytest.mark.slow      # about 1.5 minutes; 2 more the first time (building the venv)


def _run(cmd: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """No time limit: a slow or busy machine must not fail the test (pip bounds its own network waits)."""
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)


def _check(result: subprocess.CompletedProcess, what: str) -> str:
    assert result.returncode == 0, (f"{what} failed (exit {result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _env(**extra) -> dict:
    """A clean environment: no .venv on the path, no user site, no data folder named."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "D2LCNN_DATA", "MPLBACKEND")}
    return {**env, "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg", **extra}


# --- what the first cell runs ---------------------------------------------------------------------

def first_cell_install() -> list[str]:
    """The arguments of the ``%pip install`` line in the tour's first cell."""
    tour = sorted((ROOT / "chapters").glob("00_*.ipynb"))[0]
    source = "".join(json.loads(tour.read_text())["cells"][0]["source"])
    lines = [line.strip() for line in source.splitlines() if line.strip().startswith("%pip install")]
    assert len(lines) == 1, f"{tour.name}: the first cell should have one `%pip install` line:\n{source}"
    return shlex.split(lines[0])[2:]          # IPython runs `python -m pip install ...` through a shell


def pointed_at(args: list[str], url: str) -> list[str]:
    """``args`` with the one ``d2lcnn @ git+URL`` requirement pointed at ``url``."""
    found = [i for i, a in enumerate(args) if re.fullmatch(r"d2lcnn @ git\+\S+", a)]
    assert len(found) == 1, f"expected one `d2lcnn @ git+URL` requirement in {args}"
    return [f"d2lcnn @ git+{url}" if i == found[0] else a for i, a in enumerate(args)]


# --- the Colab-like environment -------------------------------------------------------------------

def requirement_closure(names) -> dict[str, metadata.Distribution]:
    """The distributions ``names`` need, transitively, as installed here (markers and extras
    evaluated for this machine)."""
    found: dict[str, metadata.Distribution] = {}
    extras_seen: dict[str, set] = {}
    todo = [(name, set()) for name in names]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found and extras <= extras_seen[key]:
            continue
        dist = found.get(key) or metadata.distribution(name)
        found[key] = dist
        extras_seen.setdefault(key, set()).update(extras)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, set(req.extras)))
    return found


def link_dists(dists, folder: Path) -> None:
    """Symlink the top-level entries (packages, modules, .dist-info) of ``dists`` into ``folder``."""
    folder.mkdir(parents=True)
    for dist in dists:
        assert dist.files, f"{dist.metadata['Name']} has no RECORD: cannot tell its files"
        for top in {f.parts[0] for f in dist.files}:
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue                                    # scripts in bin/, caches, path hooks
            link, target = folder / top, Path(dist.locate_file(top))
            if link.is_symlink():
                assert link.resolve() == target.resolve(), f"{top}: two distributions disagree"
                continue
            link.symlink_to(target)


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def pip_list(python: Path, cwd: Path) -> dict[str, dict]:
    """``pip list`` of the venv: canonical name -> {version, location}."""
    out = _check(_run([python, *PIP, "list", "-v", "--format", "json"], cwd, _env()), "pip list")
    return {canonicalize_name(p["name"]): p for p in json.loads(out)}


def colab_like(scratch: Path) -> tuple[Path, dict]:
    """The built Colab-like venv (in build/, rebuilt when .venv's torch or this recipe changes)
    and a description of what it must have."""
    dists = requirement_closure(PREINSTALLED)
    want = {"python": sys.version, "kernel": COLAB_KERNEL,
            "recipe": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
            "preinstalled": {k: [d.version, str(d.locate_file(""))] for k, d in sorted(dists.items())}}
    BASE.parent.mkdir(parents=True, exist_ok=True)
    with open(BASE.parent / f"{BASE.name}.lock", "w") as lock:     # one builder at a time (pytest -n)
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = BASE / "ready.json"
        overlay = BASE / "preinstalled"
        if not (stamp.exists() and json.loads(stamp.read_text()) == want and overlay.is_dir()
                and all(p.exists() for p in overlay.iterdir())):
            _build(dists, scratch)
            stamp.write_text(json.dumps(want))
    return BASE / "venv", want


def _build(dists: dict, scratch: Path) -> None:
    shutil.rmtree(BASE, ignore_errors=True)
    venv, overlay = BASE / "venv", BASE / "preinstalled"
    start = time.time()
    _check(_run([sys.executable, "-m", "venv", venv], scratch, _env()), "python -m venv")
    link_dists(dists.values(), overlay)
    (site_packages(venv) / "colab_preinstalled.pth").write_text(f"{overlay}\n")
    python = venv / "bin" / "python"
    # torch and torchvision named too, so that pip settles what their metadata asks of the rest
    # (a newer setuptools than the venv's) now, not during the test.
    pins = [f"{name}=={dists[name].version}" for name in PREINSTALLED]
    result = _run([python, *PIP, "install", "-q", *pins, *COLAB_KERNEL], scratch, _env())
    if result.returncode != 0:
        shutil.rmtree(BASE, ignore_errors=True)
        pytest.skip(f"could not install Colab's kernel packages ({' '.join(COLAB_KERNEL)}) with pip "
                    f"(no package index reachable?):\n{result.stderr[-1500:]}")
    print(f"built {BASE.relative_to(ROOT)} in {time.time() - start:.0f} s", file=sys.stderr)


def _index_reachable(python: Path, cwd: Path) -> None:
    """Skip unless pip can fetch from an index what the environment lacks (captum)."""
    result = _run([python, *PIP, "download", "-q", "--no-deps", "--no-cache-dir", "--dest", cwd / "probe",
                   "captum>=0.9"], cwd, _env())
    if result.returncode != 0:
        pytest.skip(f"pip cannot reach a package index (it needs one for captum):\n{result.stderr[-1500:]}")


# --- the test -------------------------------------------------------------------------------------

def _accepts_colab(report: dict) -> list[str]:
    """What the dry run would install or replace that Colab's own releases would not satisfy."""
    problems = []
    for item in report["install"]:
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        if name in COLAB_VERSIONS or name in UNCHANGED:
            problems.append(f"would install {meta['name']} {meta['version']} over the preinstalled one")
        for text in meta.get("requires_dist") or []:
            req = Requirement(text)
            colab = COLAB_VERSIONS.get(canonicalize_name(req.name))
            if colab and (req.marker is None or req.marker.evaluate({"extra": ""})) \
                    and not req.specifier.contains(colab, prereleases=True):
                problems.append(f"{meta['name']} {meta['version']} requires {text}: Colab's "
                                f"{req.name} {colab} would be replaced")
    return problems


def test_first_cell_installs_d2lcnn_from_git_into_a_colab_like_venv(tmp_path):
    student = tmp_path / "content"                         # outside the repository, as on Colab
    student.mkdir()
    _index_reachable(Path(sys.executable), tmp_path)
    base, want = colab_like(tmp_path)

    # A fresh venv over the built one; .venv's editable d2lcnn must not show through.
    venv = tmp_path / "venv"
    _check(_run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, _env()), "python -m venv")
    python, site = venv / "bin" / "python", site_packages(venv)
    (site / "colab_kernel.pth").write_text(f"import site; site.addsitedir({str(site_packages(base))!r})\n")
    overlay = (BASE / "preinstalled").resolve()
    before = pip_list(python, student)
    for name in PREINSTALLED:
        assert Path(before[name]["location"]).resolve() == overlay, before[name]
    assert "d2lcnn" not in before
    probe = ("import importlib.util, sys; assert importlib.util.find_spec('d2lcnn') is None; "
             "assert not [f for f in sys.meta_path if 'editable' in repr(f).lower()], sys.meta_path")
    _check(_run([python, "-c", probe], student, _env()), "d2lcnn invisible before the install")

    # The repository as committed, cloned bare; the first cell's command pointed at it.
    repo = tmp_path / "d2lcnn.git"
    _check(_run(["git", "clone", "-q", "--bare", ROOT, repo], tmp_path, _env()), "git clone --bare")
    args = pointed_at(first_cell_install(), f"file://{repo}")
    assert not {"-U", "--upgrade", "--force-reinstall", "--ignore-installed"} & set(args), args

    # Without this machine's cap on torch (Colab has none): dry run first, its report checked.
    empty = tmp_path / "no-constraints.txt"
    empty.write_text("")
    env = _env(PIP_CONSTRAINT=str(empty))
    report = tmp_path / "report.json"
    _check(_run([python, *PIP, "install", "--dry-run", "--report", report, *args], student, env),
           "the first cell's install, dry run")
    problems = _accepts_colab(json.loads(report.read_text()))
    assert not problems, "\n".join(problems)
    start = time.time()
    _check(_run([python, *PIP, "install", *args], student, env), "the first cell's install")
    install_s = time.time() - start

    # The package itself: from site-packages, complete, importable under ipywidgets 7.7.1.
    tracked = _check(_run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD", "d2lcnn"],
                          tmp_path, _env()), "git ls-tree").split()
    missing = [f for f in tracked if not (site / f).is_file()]
    assert not missing, f"tracked package files the install left out: {missing}"
    walk = ("import d2lcnn, importlib, pkgutil, ipywidgets\n"
            "for m in pkgutil.walk_packages(d2lcnn.__path__, 'd2lcnn.'):\n"
            "    if not m.name.endswith('.__main__'): importlib.import_module(m.name)\n"
            "import torch, torchvision\n"
            "print(d2lcnn.__file__, ipywidgets.__version__, torch.__file__, torchvision.__file__)")
    where, widgets, *torches = _check(_run([python, "-c", walk], student, _env()),
                                      "importing every module").splitlines()[-1].split()
    assert Path(where) == site / "d2lcnn" / "__init__.py"
    assert widgets == "7.7.1"
    assert [Path(t).parent.parent.resolve() for t in torches] == [overlay] * 2, torches

    # What a student does first: list the networks, train a few steps (offline data, quick mode).
    listed = json.loads(_check(_run([python, "-m", "d2lcnn", "models", "--json"], student, _env()),
                               "python -m d2lcnn models").splitlines()[-1])
    assert {"lenet", "resnet18"} <= {row["name"] for row in listed}, listed
    trained = _run([python, "-m", "d2lcnn", "train", "lenet", "--device", "cpu", "--json"], student,
                   _env(D2LCNN_QUICK="1"))
    result = json.loads(_check(trained, "python -m d2lcnn train lenet").splitlines()[-1])
    assert result["ok"] and result["epochs_done"] == 1 and 0 <= result["test_acc"] <= 1, result

    # Colab's packages as they were: torch and torchvision not replaced, nothing downgraded.
    after = pip_list(python, student)
    for name in UNCHANGED:
        assert (after[name]["version"], after[name]["location"]) == \
               (before[name]["version"], before[name]["location"]), (name, before[name], after[name])
    for name in PREINSTALLED:
        assert not list(site.glob(f"{name}-*.dist-info")) and not (site / name).exists(), \
            f"{name} was installed into the venv beside the preinstalled one"
        assert after[name]["version"] == want["preinstalled"][name][0]
    downgraded = [f"{n} {p['version']} -> {after[n]['version']}" for n, p in before.items()
                  if n in after and Version(after[n]["version"]) < Version(p["version"])]
    assert not downgraded, downgraded
    assert after["ipywidgets"]["version"] == "7.7.1" and after["d2lcnn"]["location"] == str(site)
    print(f"first cell's install: {install_s:.0f} s; added "
          f"{sorted(set(after) - set(before))}", file=sys.stderr)
