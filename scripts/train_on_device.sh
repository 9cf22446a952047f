#!/usr/bin/env bash
# Train the benchmark detector on the lent GPU machine in one device call (< 9 min wall).
#
# Run from the repository root on the device, with the wheels from scripts/fetch_train_wheels.sh
# carried in .whl/:   bash scripts/train_on_device.sh
# Steps (timestamped): install wheels -> generate N_TRAIN training images and N_VAL held-out
# images (held-out spacecraft designs) with `posebowl synth images` -> train YOLO11n from its
# yaml with AMP for the time left (ultralytics `time=`) -> evaluate best.pt on the held-out set
# -> export ONNX -> copy results into $OUT (<= 8 files, each < 16 MB):
#   train_log.txt best.pt model.onnx results.csv args.yaml summary.json heldout_pt_per_image.csv
#
# Knobs (environment): N_TRAIN N_VAL IMGSZ BATCH WORKERS DEVICE CACHE EPOCHS TRAIN_MIN (upper
# bound on training minutes) BUDGET_MIN (whole-script target) RESERVE_MIN (kept for dataset,
# caching, evaluation, export) SYNTH_WORKERS WORK OUT PYTHON, TRAIN_DATA / VAL_DATA to use
# existing labelled folders instead of generating.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
log() { printf '%s +%4ss %s\n' "$(date +%H:%M:%S)" "$(($(date +%s) - START))" "$*"; }

PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/out}
WORK=${WORK:-/tmp/posebowl-train}
N_TRAIN=${N_TRAIN:-6000}
N_VAL=${N_VAL:-400}
IMGSZ=${IMGSZ:-640}
BATCH=${BATCH:-64}
WORKERS=${WORKERS:-12}
DEVICE=${DEVICE:-0}
CACHE=${CACHE:-ram}
EPOCHS=${EPOCHS:-300}
TRAIN_MIN=${TRAIN_MIN:-5.5}
BUDGET_MIN=${BUDGET_MIN:-8.5}
RESERVE_MIN=${RESERVE_MIN:-1.5}
SYNTH_WORKERS=${SYNTH_WORKERS:-$(nproc)}

mkdir -p "$OUT" "$WORK"
LOG="$OUT/train_log.txt"
exec > >(tee -a "$LOG") 2>&1
log "posebowl device training: N_TRAIN=$N_TRAIN N_VAL=$N_VAL IMGSZ=$IMGSZ BATCH=$BATCH" \
    "DEVICE=$DEVICE TRAIN_MIN<=$TRAIN_MIN BUDGET_MIN=$BUDGET_MIN on $(nproc) cores"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# 1. What the machine lacks comes from the carried wheels (pure Python except onnx/protobuf).
if ! "$PYTHON" -c "import ultralytics, click, rich, onnx" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        log "ultralytics is missing and .whl/ has no wheels:" \
            "run scripts/fetch_train_wheels.sh here and pass carry: [\".whl\"]"
        exit 4
    fi
    log "installing $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src
export YOLO_CONFIG_DIR=$WORK/ultralytics-config
POSEBOWL=("$PYTHON" -m posebowl.cli.main)
SYNTH=("${POSEBOWL[@]}" synth images)

# 2. Data: generated here (16 cores) unless labelled folders are given.
TRAIN_DIR=${TRAIN_DATA:-$WORK/synth/train}
VAL_DIR=${VAL_DATA:-$WORK/synth/heldout}
if [ -z "${TRAIN_DATA:-}" ]; then
    log "generating $N_TRAIN training images with $SYNTH_WORKERS workers"
    rm -rf "$TRAIN_DIR"
    "${SYNTH[@]}" --n "$N_TRAIN" --out "$TRAIN_DIR" --split train \
        --workers "$SYNTH_WORKERS" --image-format jpg
fi
if [ -z "${VAL_DATA:-}" ]; then
    log "generating $N_VAL held-out images (unseen spacecraft designs)"
    rm -rf "$VAL_DIR"
    "${SYNTH[@]}" --n "$N_VAL" --out "$VAL_DIR" --split heldout \
        --workers "$SYNTH_WORKERS" --image-format jpg
fi

# 3. Train for the time left: min(TRAIN_MIN, BUDGET_MIN - elapsed - RESERVE_MIN), >= 0.5 min
#    (TRAIN_MIN=0: no time cap, EPOCHS epochs).
ELAPSED=$(($(date +%s) - START))
TIME_ARGS=()
if [ "$TRAIN_MIN" != "0" ]; then
    MINUTES=$(awk -v b="$BUDGET_MIN" -v e="$ELAPSED" -v r="$RESERVE_MIN" -v t="$TRAIN_MIN" \
        'BEGIN { m = b - e / 60 - r; if (m > t) m = t; if (m < 0.5) m = 0.5; printf "%.2f", m }')
    TIME_ARGS=(--time-min "$MINUTES")
    log "training for at most $MINUTES min (data ready after ${ELAPSED}s)"
else
    log "training for $EPOCHS epochs (data ready after ${ELAPSED}s)"
fi
RUN=$WORK/run
"${POSEBOWL[@]}" train run --data "$TRAIN_DIR" --val "$VAL_DIR" --out "$RUN" \
    --imgsz "$IMGSZ" --epochs "$EPOCHS" "${TIME_ARGS[@]}" --batch "$BATCH" \
    --workers "$WORKERS" --device "$DEVICE" --cache "$CACHE" --formats none

# 4. ONNX export (a failure keeps best.pt: export it later with `posebowl train export`).
log "exporting ONNX"
if ! "${POSEBOWL[@]}" train export "$RUN/runs/train/weights/best.pt" "$RUN/model" \
    --formats onnx; then
    log "ONNX export failed; best.pt is kept (export it locally with posebowl train export)"
fi

# 5. Bring back at most 8 files.
for f in "$RUN/runs/train/weights/best.pt" "$RUN/model/model.onnx" \
    "$RUN/runs/train/results.csv" "$RUN/runs/train/args.yaml" "$RUN/summary.json" \
    "$RUN/heldout_pt_per_image.csv"; do
    if [ -f "$f" ]; then cp "$f" "$OUT/"; else log "missing: $f"; fi
done
"$PYTHON" - "$RUN/summary.json" <<'PY' || true
import json, sys
s = json.load(open(sys.argv[1]))
h = s.get("heldout_pt", {})
print("held-out mean IoU:", h.get("score"), "| by bucket:",
      {k: round(v["mean"], 4) for k, v in (h.get("by_bucket") or {}).items()})
print("seconds:", s.get("seconds"), "| dataset:", s.get("dataset", {}).get("train"), "train")
PY
log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
