#!/bin/sh
# Issue 19's design study as one lent-GPU call (docs/gpu.md): nafnet-fr against nafnet-small, from scratch, side by
# side for MINUTES of wall-clock time (configs/nafnet_v2_gpu_study.yaml), then both EMA weights in fp16 and the logs
# into $OUT. On the device, from the repository root, with `.data` carried (`make gpu-data` here first):
#   sh scripts/gpu_study.sh 8
# EXTRA (optional) is appended to both runs' --set pairs, e.g. EXTRA=,data.batch_size=4,data.num_workers=1 for a
# dry run on a CPU. The training runs are stopped by `timeout` well inside a 10-minute call so the weights come back.
set -u
MINUTES=${1:?usage: sh scripts/gpu_study.sh MINUTES}
EXTRA=${EXTRA:-}
OUT=${OUT:-/tmp/gpu-study-out}
RUNS=${RUNS:-/tmp/gpu-study}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src" UIR_DATA_ROOT="${UIR_DATA_ROOT:-$PWD/.data}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null; echo "cores: $(nproc)"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# The budget's own deadline, plus a minute's grace, then the runs are stopped (SIGTERM: each saves last.ckpt).
timeout $(( ${MINUTES%.*} * 60 + 60 )) $PY scripts/train_to_budget.py --minutes "$MINUTES" --calibrate 45 --out "$RUNS" \
    "fr=configs/nafnet_v2_gpu_study.yaml$EXTRA" \
    "small=configs/nafnet_v2_gpu_study.yaml,model.backbone=nafnet-small$EXTRA" 2>&1 | tee "$OUT/budget.log"
for run in fr small; do
    pkill -TERM -f "uir train .*$RUNS/$run" 2>/dev/null
done
sleep 2
for run in fr small; do
    weights="$RUNS/$run/final.safetensors"
    [ -f "$weights" ] || weights="$RUNS/$run/best.safetensors"
    [ -f "$weights" ] && $PY scripts/ship_weights.py "$weights" "$OUT/$run-ema-fp16.safetensors"
    tail -3 "$RUNS/$run.log"
    tail -2 "$RUNS/$run/log.csv"
done
tar czf "$OUT/logs.tgz" -C "$RUNS" fr.log small.log fr/log.csv small/log.csv fr/config.yaml small/config.yaml 2>/dev/null
ls -la "$OUT"
