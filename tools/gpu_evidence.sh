#!/usr/bin/env bash
# The GPU evidence of issues 12-14 in one command of at most 8 minutes on one H200:
#   1. python -m d2lcnn bench --all: every fashion network, 10 epochs x 3 seeds (12 at a time),
#      a timing run of each alone, our Trainer against the book's train_ch6 for the book's models,
#      and the speedrun (3 seeds, alone); results written after every job, so a cut leaves a valid file;
#   2. the paths never run before on a GPU: torch.compile (train lenet --compile) and NCCL
#      (torchrun, one process).
# Here: bash tools/gpu_carry.sh   (fills the git-ignored .gpu/ with the data and missing wheels)
# Then with the device tool: command "bash tools/gpu_evidence.sh", carry [".gpu"], timeout_s 540.
# Everything lands in $OUT (results/gpu when run by hand): bench.json, bench.md, bench.log,
# progress.txt, compile.json, nccl.json, env.txt. Commit bench.json and bench.md as results/.
# SMOKE=1 runs the same steps on the CPU in a minute (a check of the script itself, not a measurement).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
if [ -d .gpu/whl ] && ! python3 -c "import d2l.torch" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ -d .gpu/data ] && export D2LCNN_DATA="$PWD/.gpu/data"
if [ "${SMOKE:-0}" = 1 ]; then
    BENCH="--models lenet,mobilenet_v1,resnet_speedrun --seeds 2 --epochs 1 --subset 130 --jobs 2 --device cpu"
    TRAIN="--device cpu --epochs 1" LIMIT=300
else
    BENCH="--seeds 3 --jobs 12 --budget 330" TRAIN="--epochs 3" LIMIT=390   # 390 + 40 + 30 s, setup: <= 8 min
fi
{ date -u; nvidia-smi 2>&1 | head -15; python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"; } >"$OUT/env.txt" 2>&1
python3 -m d2lcnn data --check >>"$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; exit 2; }
# shellcheck disable=SC2086
timeout -s TERM "$LIMIT" python3 -m d2lcnn bench --all $BENCH --out "$OUT/bench.json" >/dev/null 2>"$OUT/progress.txt"
echo "bench exit code $?" >>"$OUT/progress.txt"
# shellcheck disable=SC2086
timeout 40 python3 -m d2lcnn train lenet --compile $TRAIN --json >"$OUT/compile.json" 2>>"$OUT/progress.txt"
echo "compile exit code $?" >>"$OUT/progress.txt"
# shellcheck disable=SC2086
timeout 30 python3 -m torch.distributed.run --nproc_per_node=1 -m d2lcnn train lenet $TRAIN --json >"$OUT/nccl.json" 2>>"$OUT/progress.txt"
echo "torchrun exit code $?" >>"$OUT/progress.txt"
cat "$OUT/progress.txt" "$OUT/bench.md" 2>/dev/null
