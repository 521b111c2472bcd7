#!/usr/bin/env bash
# The GPU evidence in one command: at most 450 s of steps (8 minutes of H200 time with the setup),
# at most 7 files back. Three steps, each with its own time limit, exit code and check:
#   bench    python -m d2lcnn bench --all on the device it finds (resolved once, recorded):
#            a 2-epoch timing run of every fashion network alone, our Trainer against the book's
#            train_ch6 for the book's models (float32 both, the book's side on 300 images per class),
#            the speedrun's 3 seeds alone, then seed 0 of every other network for 10 epochs,
#            8 at a time. One seed, not three: 42 ten-epoch runs cannot fit. Sized from FLOP
#            counts: about 16 PFLOP in all (a step taken as 3x the forward FLOPs), 80-160 s at
#            10-20% of the H200's 989 TFLOP/s bf16 peak, assumed for these small networks: an
#            estimate, never measured. A budget stops new jobs at 200 s; what it cuts is listed in
#            bench.md as not run, and the step fails (exit 3). TOTAL, SEEDS and TIMING_EPOCHS
#            change the sizing (STEPS=bench gives every second to the bench; seed-major, so that a
#            budget that runs out leaves each network its seed 0 first).
#            Measured on one H200 (2026-12-04, measurements/gpu-h200/): with STEPS=bench TOTAL=530
#            SEEDS=3 TIMING_EPOCHS=1 the part run alone took 410 s (speedrun 3 x 16 s; one epoch of
#            each other network 3-42 s, a first epoch being 2-4x a later one while cuDNN tries its
#            kernels; 3 book comparisons 4-27 s), so no accuracy run started before the budget.
#            Ten-epoch runs then took 14-114 s each, 3 or 4 sharing the GPU (python -m d2lcnn train).
#   compile  train lenet --compile, 3 epochs (the time for its compilation comes out of the total
#            before the bench gets the rest);
#   nccl     torchrun with one process: a real NCCL process group (gloo in SMOKE), checked in nccl.json.
# Here: bash tools/gpu_carry.sh   (fills the git-ignored .gpu/ with the data and missing wheels)
# Then with the device tool: command "bash tools/gpu_evidence.sh", carry [".gpu"], timeout_s 540.
# Files, in $OUT (results/gpu by hand): env.txt, progress.txt, bench.json, bench.md, bench.log,
# compile.json, nccl.json. The exit code is 0 only when every step passed; the last lines say which failed.
# SMOKE=1: the same steps on the CPU, tiny (a check of the script, not a measurement; tests run it).
# STEPS="compile nccl": run only those steps (e.g. again after a failure).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu}
STEPS=${STEPS:-bench compile nccl}
PY=${PYTHON:-python3}   # the Python with torch (tests give their own)
mkdir -p "$OUT"
if [ -d .gpu/whl ] && ! "$PY" -c "import d2l.torch" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# d2l.torch imports scipy.spatial at the top; the GPU machine has no scipy: a stand-in for that import.
"$PY" -c "import scipy.spatial" 2>/dev/null || export PYTHONPATH="$PYTHONPATH:$PWD/tools/gpu_stub"
[ -d .gpu/data ] && export D2LCNN_DATA="$PWD/.gpu/data"
if [ "${SMOKE:-0}" = 1 ]; then
    BENCH=(--models lenet --seeds 1 --epochs 1 --subset 128 --book-subset 128 --timing-epochs 1 --jobs 1 --device cpu)
    TRAIN=(--device cpu --epochs 1) GROUP=gloo
    export D2LCNN_QUICK=1     # bench ignores it; the two trainings take 5 steps
    BENCH_S=3600 COMPILE_S=3600 NCCL_S=3600   # limits that never bite on a slow CPU: a check, not a race
else
    # TOTAL (seconds of steps), SEEDS and TIMING_EPOCHS can be set from outside; a step left out of
    # STEPS gives its time to the bench. The budget leaves the bench's last jobs 100 s to finish.
    TOTAL=${TOTAL:-450} COMPILE_S=75 NCCL_S=45
    case " $STEPS " in *" compile "*) ;; *) COMPILE_S=0 ;; esac
    case " $STEPS " in *" nccl "*) ;; *) NCCL_S=0 ;; esac
    BENCH_S=$((TOTAL - COMPILE_S - NCCL_S - 30))     # 30 s for the setup above: 300 s by default
    BENCH=(--seeds "${SEEDS:-1}" --speedrun-seeds 3 --timing-epochs "${TIMING_EPOCHS:-2}" --jobs 8 --book-subset 300
           --budget $((BENCH_S - 100)))
    TRAIN=(--epochs 3) GROUP=nccl
fi
{ date -u; nvidia-smi 2>&1 | head -15; "$PY" -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"; } >"$OUT/env.txt" 2>&1
"$PY" -m d2lcnn data --check >>"$OUT/env.txt" 2>&1 || { cat "$OUT/env.txt"; echo "FAILED: data (see env.txt)"; exit 2; }
: >>"$OUT/progress.txt"
failed=()

# run NAME LIMIT OUTFILE COMMAND...: one step with its time limit; stdout to OUTFILE, stderr to progress.txt
run() {
    local name=$1 limit=$2 out=$3 code
    shift 3
    echo "== $name: $* (limit $limit s)" >>"$OUT/progress.txt"
    timeout -s TERM -k 5 "$limit" "$@" >"$out" 2>>"$OUT/progress.txt"
    code=$?
    echo "== $name exit code $code" >>"$OUT/progress.txt"
    [ "$code" = 0 ] || failed+=("$name (exit $code)")
    return "$code"
}

# check NAME FILE PYTHON-EXPRESSION: the step's last JSON line (as r) must satisfy the expression
check() {
    "$PY" - "$2" "$3" <<'EOF' >>"$OUT/progress.txt" 2>&1 || failed+=("$1 (check: $3)")
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sys.exit(0 if eval(sys.argv[2], {"r": r}) else 1)
EOF
}

for step in $STEPS; do
    case $step in
        bench) run bench "$BENCH_S" /dev/null "$PY" -m d2lcnn bench --all "${BENCH[@]}" --out "$OUT/bench.json" ;;
        compile) run compile "$COMPILE_S" "$OUT/compile.json" "$PY" -m d2lcnn train lenet --compile "${TRAIN[@]}" --json \
            && check compile "$OUT/compile.json" 'r["ok"]' ;;
        nccl) run nccl "$NCCL_S" "$OUT/nccl.json" "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 \
                -m d2lcnn train lenet "${TRAIN[@]}" --json \
            && check nccl "$OUT/nccl.json" "r['ok'] and r['process_group'] == '$GROUP'" ;;
        *) failed+=("$step (no such step: bench, compile, nccl)") ;;
    esac
done
cat "$OUT/progress.txt" "$OUT/bench.md" 2>/dev/null
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (progress.txt has each step's messages)"
    exit 1
fi
echo "all steps passed. Copy $OUT/bench.json into d2lcnn/results/ (e.g. d2lcnn/results/bench-h200.json: published()"
echo "prefers a complete GPU run) and commit it; python -m d2lcnn bench --table FILE prints its table for the README."
