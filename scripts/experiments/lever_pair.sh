#!/bin/bash
# One lever against the recipe on any COCO-format set: two runs side by side (one torch thread
# each, so that they share the machine's load equally), the same seed, data and budget, one with
# the lever's --set overrides. Prints both runs' evaluation lines (AP against iterations).
# docs/results/real_photos.md holds what it measured.
#
#   scripts/experiments/lever_pair.sh OUT TRAIN_JSON TRAIN_IMAGES VAL_JSON VAL_IMAGES \
#       INPUT_SIZE TEST_INPUT_SIZE KEY=VALUE [KEY=VALUE ...]
#
# Environment: CONFIG (configs/centermask_demo_cpu.yaml), MINUTES (20), EVAL_EVERY (200
# iterations), SEED (1), EXTRA (more --set KEY=VALUE for both runs, space-separated).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 8 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
out=$1 train_json=$2 train_images=$3 val_json=$4 val_images=$5 input=$6 test_input=$7
shift 7
bin=build/apps/centermask
common=(--config "${CONFIG:-configs/centermask_demo_cpu.yaml}"
  --set "data.train_json=$train_json" --set "data.train_images=$train_images"
  --set "data.val_json=$val_json" --set "data.val_images=$val_images"
  --set "data.input_size=$input" --set "test.input_size=$test_input"
  --set "runtime.time_limit_minutes=${MINUTES:-20}" --set runtime.threads=1
  --set "runtime.eval_every_iters=${EVAL_EVERY:-200}" --set "runtime.seed=${SEED:-1}" --overwrite)
for extra in ${EXTRA:-}; do common+=(--set "$extra"); done
lever=()
for setting in "$@"; do lever+=(--set "$setting"); done
mkdir -p "$out"
"$bin" train "${common[@]}" --out "$out/recipe" > "$out/recipe.log" 2>&1 &
"$bin" train "${common[@]}" "${lever[@]}" --out "$out/lever" > "$out/lever.log" 2>&1 &
wait
echo "lever: $*"
for run in recipe lever; do
  echo "== $run"
  grep "evaluation at iteration" "$out/$run.log"
done
