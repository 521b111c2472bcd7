"""The set-up promises of the README: conda and pip list the same dependencies, nothing
requires ipywidgets 8 or caps torch, the CI script is the README's test command, and every
notebook installs the package from the one repository URL when it is missing, with a command that
cannot replace Colab's torch (tests/test_install.py runs that command)."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from .test_install import COLAB_VERSIONS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pyproject_requirements() -> set[str]:
    project = PYPROJECT["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])


def _conda_pip_requirements() -> set[str]:
    """The entries of environment.yml's pip list (a plain parse: the file is ours and simple)."""
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    entries = []
    for line in lines[start + 1:]:
        if not line.startswith("      - "):
            break
        entries.append(line.strip()[2:])
    return {e for e in entries if not e.startswith("-e ")}


def test_environment_yml_lists_the_same_dependencies():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_versions_fit_colab():
    reqs = _pyproject_requirements()
    torch_like = [r for r in reqs if re.match(r"(torch|torchvision)\b", r)]
    assert torch_like and all(re.fullmatch(r"[a-z]+>=[\d.]+", r) for r in torch_like), torch_like
    widgets = next(r for r in reqs if r.startswith("ipywidgets"))
    assert widgets == "ipywidgets>=7.7"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert ci == ["make test"]
    assert "\n    make test\n" in readme and "\n    make lab\n" in readme


def test_setup_installs_d2l_without_its_pins():
    setup = (ROOT / "tools/setup.sh").read_text()
    assert "--no-deps d2l==1.0.3" in setup
    assert "dataset-fashion-mnist" in setup and "chromium" in setup


def _first_cell(path: Path) -> str:
    return "".join(json.loads(path.read_text())["cells"][0]["source"])


def _notebooks_tool():
    spec = importlib.util.spec_from_file_location("notebooks_tool", ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_notebook_installs_from_the_one_repository_url():
    url = PYPROJECT["project"]["urls"]["Repository"]
    notebooks = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        first = _first_cell(path)
        assert "import d2lcnn" in first and f'"d2lcnn @ git+{url}"' in first, \
            f"{path.name}: run `python tools/notebooks.py install-url`"
    tour = _first_cell(notebooks[0])
    differ = [p.name for p in notebooks if _first_cell(p) != tour]
    assert not differ, f"first cells that are not a copy of {notebooks[0].name}'s: {differ}"


def test_the_install_cell_cannot_replace_colabs_torch():
    """Installed only when missing; one requirement, no flag that upgrades or reinstalls what is
    there; torch and torchvision required at a minimum that Colab's releases meet, so pip answers
    "Requirement already satisfied" for them."""
    url = PYPROJECT["project"]["urls"]["Repository"]
    first = _first_cell(sorted((ROOT / "chapters").glob("*.ipynb"))[0])
    assert re.search(r"try:\n    import d2lcnn\nexcept ImportError:\n    %pip install ", first), first
    line = next(line for line in first.splitlines() if "%pip install" in line)
    assert shlex.split(line)[2:] == ["-q", f"d2lcnn @ git+{url}"], line
    for text in PYPROJECT["project"]["dependencies"]:
        req = Requirement(text)
        if req.name in COLAB_VERSIONS:
            assert req.specifier.contains(COLAB_VERSIONS[req.name]), (text, COLAB_VERSIONS[req.name])


def test_install_url_rewrites_only_the_url(tmp_path):
    tool = _notebooks_tool()
    url = PYPROJECT["project"]["urls"]["Repository"]
    assert tool.repository_url() == url
    source = _first_cell(sorted((ROOT / "chapters").glob("*.ipynb"))[0])
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c00", "metadata": {},
                     "outputs": [], "source": source.splitlines(keepends=True)},
                    {"cell_type": "markdown", "id": "c01", "metadata": {}, "source": [f"git+{url}"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    before = path.read_text()
    assert not tool.set_install_url(path, url) and path.read_text() == before     # already right
    fork = "https://example.org/someone/d2lcnn"
    assert tool.set_install_url(path, fork)
    changed = [(a, b) for a, b in zip(before.splitlines(), path.read_text().splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][1] == changed[0][0].replace(url, fork), changed
    assert f'"d2lcnn @ git+{fork}"' in _first_cell(path)
    nb["cells"][0]["source"] = ["import d2lcnn\n"]
    path.write_text(json.dumps(nb))
    with pytest.raises(SystemExit, match="nb.ipynb: the first cell should hold one"):
        tool.set_install_url(path, fork)
