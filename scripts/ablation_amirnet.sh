#!/bin/sh
# AMIRNet's ablation at an equal budget: nafnet-ftb-cpu trained by the amirnet method (tree grown at a quarter,
# half and three quarters of the run) vs plain nafnet-cpu trained by supervised L1, on configs/nafnet_amirnet.yaml's
# data, side by side (one thread each), then both on uir-5d, and the tree drawn.
#   UIR_DATA_ROOT=../shared/data sh scripts/ablation_amirnet.sh OUT [ITERATIONS]
set -eu
OUT=${1:?usage: sh scripts/ablation_amirnet.sh OUT [ITERATIONS]}
ITERS=${2:-8000}
UIR=${UIR:-uir}
PYTHON=${PYTHON:-python}
GROW="[$(( ITERS / 4 )), $(( ITERS / 2 )), $(( ITERS * 3 / 4 ))]"
mkdir -p "$OUT"
echo "amirnet (grow at $GROW) vs nafnet, $ITERS iterations each" | tee "$OUT/plan.txt"
$UIR train configs/nafnet_amirnet.yaml --out "$OUT/amirnet" --no-progress --set optim.total_iters="$ITERS" \
  --set "method.grow_steps=$GROW" --set train.threads=1 > "$OUT/amirnet.log" 2>&1 &
$UIR train configs/nafnet_amirnet.yaml --out "$OUT/nafnet" --no-progress --set optim.total_iters="$ITERS" \
  --set 'method={name: supervised, loss: l1}' --set model.backbone=nafnet-cpu --set train.threads=1 \
  > "$OUT/nafnet.log" 2>&1
wait
$UIR eval --model "$OUT/nafnet/final.safetensors" "$OUT/amirnet/final.safetensors" --benchmark uir-5d \
  --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-uir-5d"
$PYTHON scripts/amirnet_tree.py "$OUT/amirnet" --out "$OUT/tree.png"
