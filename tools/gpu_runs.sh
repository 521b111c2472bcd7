#!/usr/bin/env bash
# Full-data training runs on a lent GPU, several at once, within a fixed time: the runs behind
# d2lcnn/results/gpu-*.json (tools/full_results.py gathers them).
#
#   OUT=/some/folder DEADLINE=520 PARALLEL=8 bash tools/gpu_runs.sh googlenet:0 alexnet:1 ...
#
# Each item MODEL:SEED is `python -m d2lcnn train MODEL --device cuda --seed SEED --json` (the
# network's modern recipe, 10 epochs, all the data), started in the order given, PARALLEL at a time.
# A run starts only while the time left before DEADLINE (seconds from the first start) is at least 1.3
# times the longest run finished so far (before any has finished: FIRST_ESTIMATE), so that the
# device's time limit does not cut runs off half-way; the items left over are listed as skipped.
# Small networks on a big GPU wait on kernel launches, not on arithmetic, so several processes share
# it well; every run's line says the most runs on the device at one moment of it (`concurrent`):
# its seconds are shared.
#
# Writes $OUT/runs/MODEL-sSEED.json and .log (the CLI's outputs), $OUT/times.tsv (start, end,
# exit status), $OUT/queue.txt (what started, what was skipped) and $OUT/runs.jsonl: one line per
# finished run, in the format of measurements/gpu-h200-runs.jsonl. Needs the Fashion-MNIST files
# where the data module finds them (the device has no network: D2LCNN_DATA=$PWD/.gpu/data after
# tools/gpu_carry.sh). PYTHON names the interpreter (default python3, the GPU machine's). PACK=1
# packs $OUT/runs into $OUT/runs.tgz at the end: the device tool brings back only a few files.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
DEADLINE=${DEADLINE:-520}
PARALLEL=${PARALLEL:-8}
FIRST_ESTIMATE=${FIRST_ESTIMATE:-150}
DEVICE=${DEVICE:-cuda}        # DEVICE=cpu TRAIN_ARGS="--epochs 1" tries the script without a GPU
TRAIN_ARGS=${TRAIN_ARGS:-}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT/runs"
: > "$OUT/times.tsv"
"$PYTHON" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))' > "$OUT/env.txt" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$OUT/env.txt" 2>&1
start=$(date +%s)   # DEADLINE counts from here

longest() {   # the longest run finished so far (a failed one says nothing), in whole seconds; 0 before any
    awk -F'\t' 'BEGIN {m = 0} $5 == 0 {d = $4 - $3; if (d > m) m = d} END {printf "%d", m}' "$OUT/times.tsv"
}

for item in "$@"; do
    model=${item%:*} seed=${item#*:}
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n; done
    done_longest=$(longest)
    estimate=$(( done_longest > 0 ? done_longest * 13 / 10 : FIRST_ESTIMATE ))
    left=$(( start + DEADLINE - $(date +%s) ))
    if [ "$left" -lt "$estimate" ]; then
        echo "skipped $item: $left s left, a run takes about $estimate s" >> "$OUT/queue.txt"
        continue
    fi
    echo "started $item at $(( $(date +%s) - start )) s" >> "$OUT/queue.txt"
    (
        t0=$(date +%s.%N)
        "$PYTHON" -m d2lcnn train "$model" --device "$DEVICE" --seed "$seed" --json $TRAIN_ARGS \
            > "$OUT/runs/$model-s$seed.json" 2> "$OUT/runs/$model-s$seed.log"
        rc=$?
        printf '%s\t%s\t%s\t%s\t%s\n' "$model" "$seed" "$t0" "$(date +%s.%N)" "$rc" >> "$OUT/times.tsv"
    ) &
done
wait
echo "all done at $(( $(date +%s) - start )) s" >> "$OUT/queue.txt"

"$PYTHON" - "$OUT" "$PARALLEL" <<'EOF'
import json, sys, time
from pathlib import Path
import torch
out, parallel = Path(sys.argv[1]), sys.argv[2]
rows = [l.split("\t") for l in (out / "times.tsv").read_text().splitlines() if l.strip()]
spans = [(float(r[2]), float(r[3])) for r in rows]
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
with open(out / "runs.jsonl", "w") as f:
    for (model, seed, t0, t1, rc) in rows:
        if rc.strip() != "0":
            continue
        stem = f"{model}-s{seed}"
        res = json.loads((out / "runs" / f"{stem}.json").read_text())
        hist = [h for h in res["history"] if h.get("test_acc") is not None and not h.get("interrupted")]
        a, b = float(t0), float(t1)
        # the most runs on the device at one moment of this one (itself included): a run's start
        beside = max(sum(1 for (c, d) in spans if c <= t < d) for t in [a] + [c for (c, _) in spans if a < c < b])
        path = (out / "runs" / f"{stem}.log").read_text().splitlines()
        path = next((l.split(": ", 1)[1] for l in path if l.startswith("compute path")), "?")
        resize = res["recipe"]["resize"]
        line = {"key": f"{model}-r{resize}-s{seed}-{name.split()[-1].lower()}", "model": model, "resize": resize,
                "seed": int(seed), "build": None, "device": res["device"], "device_name": name, "threads": None,
                "concurrent": beside, "recipe": res["recipe"], "test_acc": res["test_acc"],
                "acc_by_epoch": [h["test_acc"] for h in hist],
                "train_seconds": round(sum(h["seconds"] for h in hist), 1),
                "seconds_per_epoch": [round(h["seconds"], 1) for h in hist],
                "examples_per_s": [round(h["examples_per_s"]) for h in hist],
                "finished": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(b)), "torch": torch.__version__,
                "note": f"python -m d2lcnn train {model} --device {res['device']} --seed {seed} --json, by tools/gpu_runs.sh "
                        f"(PARALLEL={parallel}): at most {beside} runs at a time on the {name} during it; compute path: {path}"}
        f.write(json.dumps(line) + "\n")
EOF
if [ "${PACK:-0}" = 1 ]; then
    tar czf "$OUT/runs.tgz" -C "$OUT" runs && rm -rf "$OUT/runs"
fi
