#!/bin/sh
# The Perceive-IR ablation (METHODS §4, stage 2): each loss term added in turn on the Perceive-IR network, the plain
# Restormer-style network with L1 and with the quality-aware loss, at equal iterations (and an equal-compute arm on
# request), all evaluated on BENCHES (one `uir eval` per benchmark, so its grids/ put the arms side by side). PARALLEL
# arms (default 2) train at a time, one thread each.
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
#   restormer-l1-equal  restormer-cpu, L1, ITERS x COST / 100 iterations: equal stage-2 compute with
#                       perceiveir-full (stage 1, the tiers' fold restorers and the perceiver, not counted); not
#                       among the default arms: name it in ARMS
# Environment: ARMS (a space-separated subset, default the first six), COST (the full arm's step cost in % of a
# restormer-l1 step, for restormer-l1-equal; required with it), SEED (train.seed, default the config's 0), DPL_SKIP
# (method.dpl_skip_deepest), BENCHES (default uir-5d), PARALLEL (arms at a time, default 2; 1 beside another run).
# Every arm runs through scripts/resumable_train.sh: stopped, the same command resumes it. Issue 21's runs (the
# mixed-tier perceiver started from classifier-5d, the fold-0 restorer of the 2-fold tiers as the proxy, seed 1's
# MaskDCPT pre-training as the semantic encoder; COST=183 measured with benchmarks/train_step_profile.py):
#   PARALLEL=1 ARMS="restormer-l1 perceiveir-full restormer-l1-equal" COST=183 SEED=0 DPL_SKIP=1 \
#   BENCHES="uir-5d mixed unseen-noise" UIR_DATA_ROOT=../shared/data sh scripts/ablation_perceiveir.sh runs/i21/pir-s0 \
#   runs/i21/pir-perceiver-mixed-c5d/perceiver.safetensors 5000 runs/i21/pir-tiers/runs/fold0/final.safetensors \
#   runs/i21/maskdcpt-s1/pretrain/final.safetensors
set -euf  # no globbing: the --set values hold brackets
OUT=${1:?usage: sh scripts/ablation_perceiveir.sh OUT PERCEIVER [ITERS] [PROXY] [SEMANTIC]}
PERCEIVER=${2:?the stage-1 perceiver (a run folder or perceiver.safetensors)}
ITERS=${3:-2000}
PROXY=${4:-}
SEMANTIC=${5:-}
ARMS=${ARMS:-restormer-l1 perceiveir-l1 perceiveir-cl perceiveir-cl-clip perceiveir-full restormer-qa}
BENCHES=${BENCHES:-uir-5d}
PARALLEL=${PARALLEL:-2}
case "$PARALLEL" in
  '' | 0 | *[!0-9]*) echo "PARALLEL=$PARALLEL: the arms to train at a time, a positive integer" >&2; exit 2 ;;
esac
UIR=${UIR:-uir}
mkdir -p "$OUT"
PROXIES="[]"
if [ -n "$PROXY" ]; then PROXIES="[$PROXY]"; fi
PIR="model.backbone=perceiveir-cpu"
if [ -n "$SEMANTIC" ]; then
  PIR="$PIR model.overrides.semantic_backbone=nafnet-cpu model.overrides.semantic_init=$SEMANTIC"
fi
L1="method.clip_weight=0 method.dpl_weight=0 method.contrast_weight=0"
COMMON="optim.total_iters=$ITERS optim.warmup_iters=$(( ITERS / 10 ))"
if [ -n "${SEED:-}" ]; then COMMON="$COMMON train.seed=$SEED"; fi
if [ -n "${DPL_SKIP:-}" ]; then COMMON="$COMMON method.dpl_skip_deepest=$DPL_SKIP"; fi
: > "$OUT/arms.txt"
for name in $ARMS; do
  case "$name" in
    restormer-l1) echo "$name model.backbone=restormer-cpu $L1 $COMMON" ;;
    perceiveir-l1) echo "$name $PIR $L1 $COMMON" ;;
    perceiveir-cl) echo "$name $PIR method.clip_weight=0 method.dpl_weight=0 method.contrast_weight=0.1 $COMMON" ;;
    perceiveir-cl-clip)
      echo "$name $PIR method.clip_weight=0.05 method.dpl_weight=0 method.contrast_weight=0.1 $COMMON" ;;
    perceiveir-full)
      echo "$name $PIR method.clip_weight=0.05 method.dpl_weight=0.1 method.contrast_weight=0.1 $COMMON" ;;
    restormer-qa) echo "$name model.backbone=restormer-cpu method.clip_weight=0.05 method.dpl_weight=0.1 $COMMON" ;;
    restormer-l1-equal)
      EQUAL=$(( (ITERS * ${COST:?restormer-l1-equal needs COST, the full arm's step cost in %} + 50) / 100 ))
      echo "$name model.backbone=restormer-cpu $L1 $COMMON optim.total_iters=$EQUAL optim.warmup_iters=$(( EQUAL / 10 ))"
      ;;
    *) echo "unknown arm $name" >&2; exit 2 ;;
  esac >> "$OUT/arms.txt"
done
echo "$ITERS iterations per arm; perceiver $PERCEIVER; proxies $PROXIES; semantic ${SEMANTIC:-random}; arms $ARMS" \
  | tee "$OUT/plan.txt"
# One arm: its name, then its --set overrides (word-split on purpose; a later one wins).
run_arm() {
  name=$1
  shift
  sets=""
  for kv in "$@"; do sets="$sets --set $kv"; done
  # shellcheck disable=SC2086
  sh scripts/resumable_train.sh "$OUT/$name" configs/restormer_quality_aware.yaml \
    --set method.perceiver="$PERCEIVER" --set "method.proxies=$PROXIES" --set train.val_every=0 \
    --set train.threads=1 $sets >> "$OUT/$name.log" 2>&1 && echo "$name done" || echo "$name FAILED (see $OUT/$name.log)"
}
running=0
while read -r line; do
  # shellcheck disable=SC2086
  run_arm $line &
  running=$(( running + 1 ))
  if [ "$running" -ge "$PARALLEL" ]; then
    wait
    running=0
  fi
done < "$OUT/arms.txt"
wait
models=""
while read -r name _; do models="$models $OUT/$name/final.safetensors"; done < "$OUT/arms.txt"
for bench in $BENCHES; do
  # shellcheck disable=SC2086
  $UIR eval --model $models --benchmark "$bench" --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-$bench" --grid 2
done
