"""The set-up promises of the README: conda and pip list the same dependencies, nothing
requires ipywidgets 8 or caps torch, the CI script is the README's test command, and every
notebook installs the package from the one repository URL when it is missing."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

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


def test_every_notebook_installs_from_the_one_repository_url():
    url = PYPROJECT["project"]["urls"]["Repository"]
    notebooks = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert "import d2lcnn" in first and f"git+{url}" in first, path.name
