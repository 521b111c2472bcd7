#!/usr/bin/env bash
# Set up everything d2lcnn needs, idempotently: system packages where we may install them,
# a virtual environment in .venv with the package, its dependencies and the book's d2l.
#   tools/setup.sh          what the notebooks need
#   tools/setup.sh --test   also what the tests need (Chromium for the browser test)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# 1. System packages: the offline Fashion-MNIST (Debian's dataset-fashion-mnist) and, for the
#    browser test, Chromium. Only where apt-get exists and we are root; elsewhere the data is
#    downloaded by torchvision on first use and the browser test is skipped.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  need=""
  [ -d /usr/share/datasets/fashion-mnist ] || need="$need dataset-fashion-mnist"
  if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then need="$need chromium"; fi
  if [ -n "$need" ]; then
    echo "== apt-get install$need"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
  fi
else
  echo "== not root or no apt-get: skipping system packages (data will be downloaded on first use)"
fi

# 2. The virtual environment. Steps 3-5 are skipped when they already ran for this checkout, this
#    pyproject.toml and this mode (a stamp in .venv), so that `make book` rebuilds in seconds.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || { echo "== creating .venv"; "$PY" -m venv .venv; }
stamp_file=.venv/.d2lcnn-setup
stamp="$(pwd) $(sha256sum pyproject.toml | cut -c1-16)"
done_before=$(cat "$stamp_file" 2>/dev/null || true)
if [ "$done_before" = "$stamp test" ] || { [ "$want_test" = 0 ] && [ "$done_before" = "$stamp" ]; }; then
  echo "== set-up already done for this pyproject.toml (remove $stamp_file to redo it)"
  exit 0
fi
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip

# 3. The package with everything for the notebooks and the tests (torch and torchvision have
#    minimum versions only, so an existing or preinstalled one is kept).
echo "== installing d2lcnn and its dependencies"
pip install -q -e '.[dev]'

# 4. The book's own package, for comparisons: --no-deps because its hard pins (numpy==1.23.5,
#    matplotlib==3.7.2, ...) do not install on modern Pythons; what `import d2l.torch` needs
#    (pandas, requests, scipy, matplotlib-inline) comes with our dev extra.
pip install -q --no-deps d2l==1.0.3
.venv/bin/python -c "import d2l.torch" || { echo "import d2l.torch failed" >&2; exit 1; }

# 5. For the tests: Colab's ipywidgets 7.7.1 beside the venv's 8, so that the widgets' kernel side
#    is also tested against the version Colab ships (used through PYTHONPATH, see the Makefile).
if [ "$want_test" = 1 ]; then
  pip install -q --no-deps --upgrade --target build/ipywidgets7 ipywidgets==7.7.1 \
    widgetsnbextension==3.6.1 jupyterlab_widgets==1.1.1 ipython_genutils==0.2.0
fi
echo "== set-up done: $(.venv/bin/python -c 'import torch, d2lcnn; print("torch", torch.__version__, "d2lcnn", d2lcnn.__version__)')"
echo "$stamp$([ "$want_test" = 1 ] && echo " test")" > "$stamp_file"   # the last set-up only
