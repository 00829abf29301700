#!/bin/sh
# The MaskDCPT ablation at equal compute: pre-train + fine-tune vs the same backbone trained from scratch for the
# same cost (a MaskDCPT step costs 1.06x a supervised one on nafnet-cpu and 1.03x on restormer-cpu, measured), both
# evaluated on uir-5d and unseen-noise. The two arms run side by side, one thread each.
#   UIR_DATA_ROOT=../shared/data sh scripts/ablation_maskdcpt.sh OUT [PRETRAIN_ITERS] [FINETUNE_ITERS] [ARCH]
# ARCH is nafnet or restormer (configs/ARCH_maskdcpt_{pretrain,finetune}.yaml). Defaults: 10000 10000 nafnet.
set -eu
OUT=${1:?usage: sh scripts/ablation_maskdcpt.sh OUT [PRETRAIN_ITERS] [FINETUNE_ITERS] [ARCH]}
PRE=${2:-10000}
FINE=${3:-10000}
ARCH=${4:-nafnet}
case "$ARCH" in
  restormer) COST=103 ;;
  *) COST=106 ;;
esac
SCRATCH=$(( FINE + (PRE * COST + 50) / 100 ))
UIR=${UIR:-uir}
mkdir -p "$OUT"
echo "pre-train $PRE + fine-tune $FINE iterations vs scratch $SCRATCH ($ARCH)" | tee "$OUT/plan.txt"
(
  $UIR train "configs/${ARCH}_maskdcpt_pretrain.yaml" --out "$OUT/pretrain" --no-progress \
    --set optim.total_iters="$PRE" --set train.threads=1
  $UIR train "configs/${ARCH}_maskdcpt_finetune.yaml" --out "$OUT/finetune" --no-progress \
    --set model.init="$OUT/pretrain" --set optim.total_iters="$FINE" --set train.threads=1
) > "$OUT/maskdcpt.log" 2>&1 &
$UIR train "configs/${ARCH}_maskdcpt_finetune.yaml" --out "$OUT/scratch" --no-progress \
  --set model.init=null --set optim.total_iters="$SCRATCH" --set train.threads=1 > "$OUT/scratch.log" 2>&1
wait
for bench in uir-5d unseen-noise; do
  $UIR eval --model "$OUT/scratch/final.safetensors" "$OUT/finetune/final.safetensors" --benchmark "$bench" \
    --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-$bench"
done
