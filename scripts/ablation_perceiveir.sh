#!/bin/sh
# The Perceive-IR ablation at equal iterations (METHODS §4, stage 2): each loss term added in turn on the
# Perceive-IR network, the plain Restormer-style network with L1 and with the quality-aware loss, all evaluated on
# uir-5d (one `uir eval`, so its grids/ put the arms side by side). Two arms train at a time, one thread each.
#   UIR_DATA_ROOT=../shared/data sh scripts/ablation_perceiveir.sh OUT PERCEIVER [ITERS] [PROXY] [SEMANTIC]
# PERCEIVER: the stage-1 run (configs/perceiver_tiers.yaml) or its perceiver.safetensors; it rates the outputs
# (L_clip) and its encoder is L_dpl's feature space.
# PROXY: a frozen restorer (run folder or .safetensors) whose outputs are L_dpl's proxy P_k; empty: no proxy term.
# SEMANTIC: the frozen semantic encoder of perceiveir-cpu (a nafnet-cpu run or weights, e.g. a MaskDCPT
# pre-training); empty: the fixed random encoder.
# Arms (configs/restormer_quality_aware.yaml, batch 8 of 64² crops, ITERS iterations, default 2000):
#   restormer-l1        restormer-cpu, L1
#   perceiveir-l1       perceiveir-cpu, L1
#   perceiveir-cl       + 0.1 L_cl
#   perceiveir-cl-clip  + 0.1 L_cl + 0.05 L_clip
#   perceiveir-full     + 0.1 L_cl + 0.05 L_clip + 0.1 L_dpl
#   restormer-qa        restormer-cpu, L1 + 0.05 L_clip + 0.1 L_dpl (the loss on a plain backbone)
set -eu
OUT=${1:?usage: sh scripts/ablation_perceiveir.sh OUT PERCEIVER [ITERS] [PROXY] [SEMANTIC]}
PERCEIVER=${2:?the stage-1 perceiver (a run folder or perceiver.safetensors)}
ITERS=${3:-2000}
PROXY=${4:-}
SEMANTIC=${5:-}
UIR=${UIR:-uir}
mkdir -p "$OUT"
PROXIES="[]"
if [ -n "$PROXY" ]; then PROXIES="[$PROXY]"; fi
PIR="model.backbone=perceiveir-cpu"
if [ -n "$SEMANTIC" ]; then
  PIR="$PIR model.overrides.semantic_backbone=nafnet-cpu model.overrides.semantic_init=$SEMANTIC"
fi
L1="method.clip_weight=0 method.dpl_weight=0 method.contrast_weight=0"
{
  echo "restormer-l1 model.backbone=restormer-cpu $L1"
  echo "perceiveir-l1 $PIR $L1"
  echo "perceiveir-cl $PIR method.clip_weight=0 method.dpl_weight=0 method.contrast_weight=0.1"
  echo "perceiveir-cl-clip $PIR method.clip_weight=0.05 method.dpl_weight=0 method.contrast_weight=0.1"
  echo "perceiveir-full $PIR method.clip_weight=0.05 method.dpl_weight=0.1 method.contrast_weight=0.1"
  echo "restormer-qa model.backbone=restormer-cpu method.clip_weight=0.05 method.dpl_weight=0.1"
} > "$OUT/arms.txt"
echo "$ITERS iterations per arm; perceiver $PERCEIVER; proxies $PROXIES; semantic ${SEMANTIC:-random}" \
  | tee "$OUT/plan.txt"
# One arm: its name, then its --set overrides (word-split on purpose).
run_arm() {
  name=$1
  shift
  sets=""
  for kv in "$@"; do sets="$sets --set $kv"; done
  # shellcheck disable=SC2086
  $UIR train configs/restormer_quality_aware.yaml --out "$OUT/$name" --no-progress $sets \
    --set method.perceiver="$PERCEIVER" --set "method.proxies=$PROXIES" --set optim.total_iters="$ITERS" \
    --set optim.warmup_iters=$(( ITERS / 10 )) --set train.val_every=0 --set train.threads=1 \
    > "$OUT/$name.log" 2>&1 && echo "$name done" || echo "$name FAILED (see $OUT/$name.log)"
}
running=0
while read -r line; do
  # shellcheck disable=SC2086
  run_arm $line &
  running=$(( running + 1 ))
  if [ "$running" -ge 2 ]; then
    wait
    running=0
  fi
done < "$OUT/arms.txt"
wait
models=""
while read -r name _; do models="$models $OUT/$name/final.safetensors"; done < "$OUT/arms.txt"
# shellcheck disable=SC2086
$UIR eval --model $models --benchmark uir-5d --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-uir-5d" --grid 2
