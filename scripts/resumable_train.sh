#!/bin/sh
# One training run that outlives a session (issue 21's ablation arms): the same command starts it, resumes it from
# OUT/last.ckpt after a stop (SIGTERM or Ctrl-C saves it), and does nothing once OUT/final.safetensors exists.
#   sh scripts/resumable_train.sh OUT CONFIG [--set KEY=VALUE ...]
# A resumed run takes its saved config (OUT/config.yaml), so CONFIG and the overrides only count the first time.
set -eu
OUT=${1:?usage: sh scripts/resumable_train.sh OUT CONFIG [--set KEY=VALUE ...]}
shift
UIR=${UIR:-uir}
if [ -f "$OUT/final.safetensors" ]; then
  echo "$OUT: finished, not run again"
elif [ -f "$OUT/last.ckpt" ]; then
  exec $UIR train "$OUT" --resume --no-progress
else
  exec $UIR train "$@" --out "$OUT" --no-progress
fi
