#!/bin/sh
# The MaskDCPT ablation (issue 21): pre-train + fine-tune against the same backbone trained from scratch, both
# evaluated on uir-5d, mixed and unseen-noise. Two comparisons:
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
# The few-images regime (issue 21: where pre-training should help most): FEW=N fine-tunes and trains from scratch on
# the first N CBSD432 images and the same fraction of the PCNet rain pairs (pre-training keeps all of them: it is
# the part that sees the large degraded set); PRETRAINED=DIR reuses a finished pre-training run (DIR/config.yaml's
# iterations must equal PRETRAIN_ITERS, which the equal-compute arm still counts), and then the paper's same-steps
# arm follows the fine-tuning on its thread instead of running alone at the end.
#   FEW=40 PAPER=1 PRETRAINED=runs/i21/maskdcpt-s1/pretrain SEED=1 UIR_DATA_ROOT=../shared/data \
#     sh scripts/ablation_maskdcpt.sh runs/i21/maskdcpt-few40-s1 5000 5000 nafnet
set -euf  # no globbing: the --set values hold brackets
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
# The supervised arms' data (FEW: the first N clean images, the rain pairs cut to the same fraction, at least one).
DATA_SET=""
if [ -n "${FEW:-}" ]; then
  RAIN=$(( (FEW * 36 + 399) / 400 ))
  DATA_SET="--set data.sources.0.files=[0,$FEW] --set data.sources.1.files=[0,$FEW] --set data.sources.2.files=[0,$RAIN]"
fi
PRETRAIN=$OUT/pretrain
if [ -n "${PRETRAINED:-}" ]; then
  PRETRAIN=$PRETRAINED
  if [ ! -f "$PRETRAIN/final.safetensors" ]; then
    echo "PRETRAINED=$PRETRAIN: not a finished pre-training run (no final.safetensors)" >&2
    exit 2
  fi
  for line in "  backbone: ${ARCH}-cpu" "  name: maskdcpt" "  total_iters: $PRE"; do
    if ! grep -qsx "$line" "$PRETRAIN/config.yaml"; then
      echo "PRETRAINED=$PRETRAIN: its config.yaml does not say '${line#  }' (ARCH $ARCH, PRETRAIN_ITERS $PRE)" >&2
      exit 2
    fi
  done
  if [ -n "${PATCH:-}" ]; then
    echo "PATCH is the pre-training's; with PRETRAINED the pre-training is not run (leave PATCH out)" >&2
    exit 2
  fi
fi
mkdir -p "$OUT"
echo "pre-train $PRE${PRETRAINED:+ (reused: $PRETRAINED)} + fine-tune $FINE iterations vs scratch $SCRATCH${PAPER:+ and \
$FINE} ($ARCH, seed $SEED${FEW:+, $FEW images and $RAIN rain pairs})" | tee "$OUT/plan.txt"
same_steps() {  # the paper's comparison: from scratch for the fine-tuning's iterations
  # shellcheck disable=SC2086  # LR_SET and DATA_SET are empty or --set pairs
  sh scripts/resumable_train.sh "$OUT/scratch-same-steps" "configs/${ARCH}_maskdcpt_finetune.yaml" \
    --set model.init=null --set optim.total_iters="$FINE" --set train.seed="$SEED" $LR_SET $DATA_SET "$@" \
    >> "$OUT/scratch-same-steps.log" 2>&1
}
(
  if [ -z "${PRETRAINED:-}" ]; then
    # shellcheck disable=SC2086  # PATCH_SET is empty or one --set pair
    sh scripts/resumable_train.sh "$PRETRAIN" "configs/${ARCH}_maskdcpt_pretrain.yaml" \
      --set optim.total_iters="$PRE" --set train.threads=1 --set train.seed="$SEED" $PATCH_SET
  fi
  # shellcheck disable=SC2086
  sh scripts/resumable_train.sh "$OUT/finetune" "configs/${ARCH}_maskdcpt_finetune.yaml" \
    --set model.init="$PRETRAIN" --set optim.total_iters="$FINE" --set train.threads=1 \
    --set train.seed="$SEED" $LR_SET $DATA_SET
  if [ -n "${PRETRAINED:-}" ] && [ -n "${PAPER:-}" ]; then same_steps --set train.threads=1; fi
) >> "$OUT/maskdcpt.log" 2>&1 &
# shellcheck disable=SC2086
sh scripts/resumable_train.sh "$OUT/scratch" "configs/${ARCH}_maskdcpt_finetune.yaml" \
  --set model.init=null --set optim.total_iters="$SCRATCH" --set train.threads=1 --set train.seed="$SEED" \
  $LR_SET $DATA_SET >> "$OUT/scratch.log" 2>&1
wait
MODELS="$OUT/scratch/final.safetensors $OUT/finetune/final.safetensors"
if [ -n "${PAPER:-}" ]; then
  if [ -z "${PRETRAINED:-}" ]; then same_steps; fi
  MODELS="$MODELS $OUT/scratch-same-steps/final.safetensors"
fi
for bench in uir-5d mixed unseen-noise; do  # mixed and unseen noise: where pre-training should help most
  # shellcheck disable=SC2086
  $UIR eval --model $MODELS --benchmark "$bench" --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-$bench"
done
