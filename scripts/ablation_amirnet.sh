#!/bin/sh
# AMIRNet's ablation (issue 21), on configs/nafnet_amirnet.yaml's data, every arm evaluated on three benchmarks:
#   amirnet       nafnet-ftb-cpu trained by the amirnet method, its tree grown at 1/4, 1/2 and 3/4 of the run;
#   ftb-notree    the same network, method and loss with no growth (grow_steps []): isolates the tree;
#   nafnet        plain nafnet-cpu under supervised L1, the same iterations;
#   nafnet-equal  the same at equal compute: ITERATIONS x COST / 100 (COST=160: an AMIRNet step cost 1.6x a NAFNet
#                 one at issue 7's budget; 1.9x in issue 21's seed-0 run, docs/RESULTS.md, so 160 leans AMIRNet's way).
#   maskdcpt-amirnet  the combination (issue 21): the amirnet arm started from a MaskDCPT pre-training of nafnet-cpu
#                 (PRETRAINED: its run folder; each FTB starts as the pre-trained block); not among the default arms.
#   nafnet-combo-equal  plain nafnet-cpu at the combination's compute: nafnet-equal's iterations plus the
#                 pre-training's (PRETRAINED's optim.total_iters) x PRE_COST / 100 (PRE_COST: a pre-training step's
#                 cost in % of a NAFNet step of this config; required with this arm); not among the default arms.
# Every arm is evaluated on uir-5d, mixed and unseen-noise.
# PARALLEL arms at a time (default 2; 1 beside another run), one thread each; then the tree is drawn. Stopped (kill
# the script's process group: each run saves), the same command resumes every arm where it stopped
# (scripts/resumable_train.sh).
#   UIR_DATA_ROOT=../shared/data sh scripts/ablation_amirnet.sh OUT [ITERATIONS]
# Environment: SEED (train.seed and method.seed, default 0), CE (method.ce_weight, default the config's),
# RESERVOIR (method.reservoir_size, default the config's: 2048; docs/RESULTS.md's rows from before issue 21 used
# 256), COST (default 160), ARMS (a space-separated subset, default the first four), PRETRAINED (for maskdcpt-amirnet),
# PARALLEL (arms at a time, default 2; 1 beside another run).
# The combined row: ARMS="amirnet maskdcpt-amirnet" PRETRAINED=runs/i21/maskdcpt-s1/pretrain SEED=1 CE=0.1 ... (a
# finished arm is not run again, so the same OUT evaluates the two side by side); at equal compute:
# ARMS="maskdcpt-amirnet nafnet-combo-equal" PRE_COST=175 with the same PRETRAINED, SEED and CE (175: median speeds,
# one thread each, two runs at a time: 2.77 it/s for runs/i21/maskdcpt-s1/pretrain, 4.84 for amirnet-s1/nafnet).
set -eu
OUT=${1:?usage: sh scripts/ablation_amirnet.sh OUT [ITERATIONS]}
ITERS=${2:-8000}
SEED=${SEED:-0}
COST=${COST:-160}
DEFAULT_ARMS="amirnet ftb-notree nafnet nafnet-equal"
ARMS=${ARMS:-$DEFAULT_ARMS}
PARALLEL=${PARALLEL:-2}
case "$PARALLEL" in
  '' | 0 | *[!0-9]*) echo "PARALLEL=$PARALLEL: the arms to train at a time, a positive integer" >&2; exit 2 ;;
esac
TAG=""  # another set of arms gets its own eval folders and plan (eval-uir-5d-amirnet-maskdcpt-amirnet ...)
if [ "$ARMS" != "$DEFAULT_ARMS" ]; then TAG="-$(echo "$ARMS" | tr ' ' '-')"; fi
UIR=${UIR:-uir}
PYTHON=${PYTHON:-python}
GROW="[$(( ITERS / 4 )), $(( ITERS / 2 )), $(( ITERS * 3 / 4 ))]"
EQUAL=$(( (ITERS * COST + 50) / 100 ))
COMBO_EQUAL=""
TREE_SET=""
if [ -n "${CE:-}" ]; then TREE_SET="--set method.ce_weight=$CE"; fi
if [ -n "${RESERVOIR:-}" ]; then TREE_SET="$TREE_SET --set method.reservoir_size=$RESERVOIR"; fi
for name in $ARMS; do  # every arm checked before any starts
  case "$name" in
    amirnet | ftb-notree | nafnet | nafnet-equal) ;;
    maskdcpt-amirnet | nafnet-combo-equal)
      if [ ! -f "${PRETRAINED:-.}/last.ckpt" ] || ! grep -qs '^  backbone: nafnet-cpu$' "$PRETRAINED/config.yaml"; then
        echo "$name needs PRETRAINED, a nafnet-cpu pre-training run (last.ckpt, config.yaml)" >&2
        exit 2
      fi
      if [ "$name" = nafnet-combo-equal ]; then
        PRE_ITERS=$(sed -n 's/^  total_iters: \([0-9][0-9]*\)$/\1/p' "$PRETRAINED/config.yaml")
        if [ -z "$PRE_ITERS" ]; then echo "$name: no optim.total_iters in $PRETRAINED/config.yaml" >&2; exit 2; fi
        COMBO_EQUAL=$(( EQUAL + (PRE_ITERS * ${PRE_COST:?nafnet-combo-equal needs PRE_COST, a pre-training step in % of a NAFNet step} + 50) / 100 ))
      fi
      ;;
    *) echo "unknown arm $name (amirnet, ftb-notree, nafnet, nafnet-equal, maskdcpt-amirnet, nafnet-combo-equal)" >&2
      exit 2 ;;
  esac
done
mkdir -p "$OUT"
echo "arms: $ARMS; $ITERS iterations (nafnet-equal $EQUAL${COMBO_EQUAL:+, nafnet-combo-equal $COMBO_EQUAL}), grow at $GROW, seed $SEED" |
  tee "$OUT/plan$TAG.txt"

arm() {  # arm NAME: train one arm on one thread, its log in OUT/NAME.log
  case "$1" in
    amirnet) set -- "$1" --set "method.grow_steps=$GROW" $TREE_SET --set method.seed="$SEED" ;;
    ftb-notree) set -- "$1" --set "method.grow_steps=[]" $TREE_SET --set method.seed="$SEED" ;;
    maskdcpt-amirnet) set -- "$1" --set "method.grow_steps=$GROW" $TREE_SET --set method.seed="$SEED" \
      --set model.init="$PRETRAINED" ;;
    nafnet) set -- "$1" --set 'method={name: supervised, loss: l1}' --set model.backbone=nafnet-cpu ;;
    nafnet-equal) set -- "$1" --set 'method={name: supervised, loss: l1}' --set model.backbone=nafnet-cpu \
      --set optim.total_iters="$EQUAL" ;;
    nafnet-combo-equal) set -- "$1" --set 'method={name: supervised, loss: l1}' --set model.backbone=nafnet-cpu \
      --set optim.total_iters="$COMBO_EQUAL" ;;
  esac
  name=$1
  shift
  sh scripts/resumable_train.sh "$OUT/$name" configs/nafnet_amirnet.yaml --set optim.total_iters="$ITERS" \
    --set train.threads=1 --set train.seed="$SEED" "$@" >> "$OUT/$name.log" 2>&1
}

MODELS=""
pids=""
running=0
for name in $ARMS; do  # PARALLEL arms at a time; a failed arm stops the script before the evaluations
  arm "$name" &
  pids="$pids $!"
  MODELS="$MODELS $OUT/$name/final.safetensors"
  running=$(( running + 1 ))
  if [ "$running" -ge "$PARALLEL" ]; then
    for pid in $pids; do wait "$pid"; done
    pids=""
    running=0
  fi
done
for pid in $pids; do wait "$pid"; done
for bench in uir-5d mixed unseen-noise; do
  # shellcheck disable=SC2086  # one path per arm
  $UIR eval --model $MODELS --benchmark "$bench" --data-root "$UIR_DATA_ROOT" --out "$OUT/eval-$bench$TAG"
done
for name in $ARMS; do
  case "$name" in
    amirnet) $PYTHON scripts/amirnet_tree.py "$OUT/amirnet" --out "$OUT/tree.png" ;;
    maskdcpt-amirnet) $PYTHON scripts/amirnet_tree.py "$OUT/$name" --out "$OUT/tree-$name.png" ;;
  esac
done
