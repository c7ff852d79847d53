#!/bin/bash
# Copy-paste against none on a small set: 200 generated demo-style images (the few-hundred-
# image regime of a user's photos), the CPU recipe at the images' 192 px, 12 minutes each, one
# torch thread each, both runs side by side so that they share the machine's load equally.
# Prints the evaluation lines (every 400 iterations) of both runs. docs/results/real_photos.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=build/apps/centermask
out=${OUT:-/tmp/copy_paste_small_set}
minutes=${MINUTES:-12}
"$bin" synth --preset demo --out "$out/data" --train 200 --val 200 --seed 3 --overwrite > /dev/null
d="$out/data"
common=(--config configs/centermask_demo_cpu.yaml --set "data.train_json=$d/train.json"
  --set "data.train_images=$d/train" --set "data.val_json=$d/val.json"
  --set "data.val_images=$d/val" --set data.input_size=192 --set test.input_size=224
  --set data.center_border_px=48 --set "runtime.time_limit_minutes=$minutes"
  --set runtime.threads=1 --set runtime.eval_every_iters=400 --set runtime.seed=1 --overwrite)
"$bin" train "${common[@]}" --out "$out/none" > "$out/none.log" 2>&1 &
"$bin" train "${common[@]}" --set data.copy_paste_probability=0.5 --out "$out/copy_paste" \
  > "$out/copy_paste.log" 2>&1 &
wait
for run in none copy_paste; do echo "== $run"; grep "evaluation at iteration" "$out/$run.log"; done
