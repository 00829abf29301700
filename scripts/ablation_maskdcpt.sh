#!/bin/sh
# The MaskDCPT ablation (issue 21): pre-train + fine-tune against the same backbone trained from scratch, both
# evaluated on uir-5d and unseen-noise. Two comparisons:
#   - equal compute: scratch runs FINE + PRE x COST iterations (a MaskDCPT step costs 1.06x a supervised one on
#     nafnet-cpu and 1.03x on restormer-cpu, measured); it runs beside the pre-train + fine-tune arm, one thread each;
#   - the paper's: scratch for the same FINE iterations as the fine-tuning (PAPER=1; run after the other two).
#   UIR_DATA_ROOT=../shared/data sh scripts/ablation_maskdcpt.sh OUT [PRETRAIN_ITERS] [FINETUNE_ITERS] [ARCH]
# ARCH is nafnet or restormer (configs/ARCH_maskdcpt_{pretrain,finetune}.yaml). Defaults: 10000 10000 nafnet.
# Environment: SEED (train.seed of every arm, default 0); PATCH (the pre-training's method.patch_size; unset: the
# backbone's deepest stride, see uir.methods.maskdcpt.default_patch_size; 16 reproduces docs/RESULTS.md's rows
# from before issue 21); FINETUNE_LR (the fine-tuning's optim.lr; unset: the config's, for both fine-tune and
# scratch arms); PAPER=1 adds the paper's comparison. Stopped (kill the script's process group: each run saves),
# the same command resumes every arm where it stopped (scripts/resumable_train.sh).
set -eu
OUT=${1:?usage: sh scripts/ablation_maskdcpt.sh OUT [PRETRAIN_ITERS] [FINETUNE_ITERS] [ARCH]}
PRE=${2:-10000}
FINE=${3:-10000}
ARCH=${4:-nafnet}
SEED=${SEED:-0}
case "$ARCH" in
  restormer) COST=103 ;;
  *) COST=106 ;;
esac
SCRATCH=$(( FINE + (PRE * COST + 50) / 100 ))
UIR=${UIR:-uir}
PATCH_SET=""
if [ -n "${PATCH:-}" ]; then PATCH_SET="--set method.patch_size=$PATCH"; fi
LR_SET=""
if [ -n "${FINETUNE_LR:-}" ]; then LR_SET="--set optim.lr=$FINETUNE_LR"; fi
mkdir -p "$OUT"
echo "pre-train $PRE + fine-tune $FINE iterations vs scratch $SCRATCH${PAPER:+ and $FINE} ($ARCH, seed $SEED)" \
  | tee "$OUT/plan.txt"
(
  # shellcheck disable=SC2086  # PATCH_SET and LR_SET are empty or one --set pair each
  sh scripts/resumable_train.sh "$OUT/pretrain" "configs/${ARCH}_maskdcpt_pretrain.yaml" \
    --set optim.total_iters="$PRE" --set train.threads=1 --set train.seed="$SEED" $PATCH_SET
  # shellcheck disable=SC2086
  sh scripts/resumable_train.sh "$OUT/finetune" "configs/${ARCH}_maskdcpt_finetune.yaml" \
    --set model.init="$OUT/pretrain" --set optim.total_iters="$FINE" --set train.threads=1 \
    --set train.seed="$SEED" $LR_SET
) >> "$OUT/maskdcpt.log" 2>&1 &
# shellcheck disable=SC2086
sh scripts/resumable_train.sh "$OUT/scratch" "configs/${ARCH}_maskdcpt_finetune.yaml" \
  --set model.init=null --set optim.total_iters="$SCRATCH" --set train.threads=1 --set train.seed="$SEED" \
  $LR_SET >> "$OUT/scratch.log" 2>&1
wait
MODELS="$OUT/scratch/final.safetensors $OUT/finetune/final.safetensors"
if [ -n "${PAPER:-}" ]; then
  # shellcheck disable=SC2086
  sh scripts/resumable_train.sh "$OUT/scratch-same-steps" "configs/${ARCH}_maskdcpt_finetune.yaml" \
    --set model.init=null --set optim.total_iters="$FINE" --set train.seed="$SEED" $LR_SET \
    >> "$OUT/scratch-same-steps.log" 2>&1
  MODELS="$MODELS $OUT/scratch-same-steps/final.safetensors"
fi
for bench in uir-5d unseen-noise; do
  # shellcheck disable=SC2086
  $UIR eval --model $MODELS --benchmark "$bench" --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-$bench"
done
