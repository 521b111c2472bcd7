#!/usr/bin/env bash
# Prepare .gpu/ (git-ignored): what the GPU machine lacks for tools/gpu_evidence.sh.
#   .gpu/data/  the four Fashion-MNIST IDX files (the machine has no network, so no download);
#   .gpu/whl/   d2l 1.0.3 (the book's loop, for the comparison) and what `import d2l.torch` needs
#               there beyond its own packages (IPython and matplotlib-inline, pure-Python wheels).
# The GPU machine has Python 3.12 with torch, torchvision, matplotlib, pandas, requests, pygments,
# psutil and tqdm already, but no scipy, which d2l.torch imports at the top: its wheel
# would not fit beside the rest in the 64 MiB a run may carry, so tools/gpu_evidence.sh puts a
# stand-in for that one import on the path (tools/gpu_stub/, tracked: it travels with the tree).
# Run from the repository root; needs pip's access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/data .gpu/whl
python3 -m d2lcnn data --check >/dev/null 2>&1 || true
src=${D2LCNN_DATA:-/usr/share/datasets/fashion-mnist}
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    if [ -f "$src/$f.gz" ]; then cp "$src/$f.gz" .gpu/data/; elif [ -f "$src/$f" ]; then gzip -c "$src/$f" >".gpu/data/$f.gz"; else
        echo "no $f(.gz) in $src: set D2LCNN_DATA to the folder with the Fashion-MNIST files" >&2; exit 2; fi
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform any -d .gpu/whl \
    d2l==1.0.3 ipython==9.18.1 ipython-pygments-lexers jedi==0.20.1 parso==0.8.7 matplotlib-inline==0.2.2 \
    traitlets==5.16.1 pexpect==4.9.0 ptyprocess==0.7.0 prompt_toolkit==3.0.53 wcwidth==0.9.4 stack_data==0.6.3 \
    asttokens==3.0.2 executing==2.3.0 pure_eval==0.2.4
du -sh .gpu
