#!/usr/bin/env bash
# The demo: installs dependencies, builds the command-line program, generates the synthetic demo
# split (`synth --preset demo`: 192-px images, 1-4 overlapping flat-coloured objects of 30-60% of
# the side on colour noise), trains CenterMask with the CPU recipe (configs/centermask_demo_cpu.yaml
# at the images' 192 px) for 20 minutes of training time, its cosine schedule annealed to that
# budget whatever the machine's speed, evaluates it on the validation split with the project's
# COCO evaluator (pycocotools-equivalent), and draws ground truth beside predictions.
# Everything goes under data/ and runs/ in the checkout.
#   CENTERMASK_DEMO_MINUTES=M  trains for M minutes instead of 20
#   CENTERMASK_DEMO_EPOCHS=N   stops after N epochs if that comes first (e.g. 1 for a smoke run)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
# Only the program: the tests and benchmarks are what scripts/test.sh builds.
CENTERMASK_BUILD_TARGET=centermask "$root/scripts/build.sh"
build="${CENTERMASK_BUILD_DIR:-$root/build}"
bin="$build/apps/centermask"
cd "$root"
run=runs/demo
# The demo images are 192 px: train at that size (the recipe's 256 would only upsample them),
# with the random center's border scaled to match, and test at 224, the recipe's 1.25x rule
# rounded to a multiple of 32 (224 beat 192 and 256 on the demo's model; README). The recipe's schedule ends
# at its time limit (solver.schedule_length: time_limit), 20 minutes here, with no epoch cap
# (solver.epochs 0), so the budget binds on a dataset of any size.
extra=(--set data.input_size=192 --set test.input_size=224 --set data.center_border_px=48
  --set "runtime.time_limit_minutes=${CENTERMASK_DEMO_MINUTES:-20}")
if [ -n "${CENTERMASK_DEMO_EPOCHS:-}" ]; then extra+=(--set "solver.epochs=$CENTERMASK_DEMO_EPOCHS"); fi

echo; echo "== centermask synth --preset demo: 2000 training and 200 validation images (data/synth)"
"$bin" synth --preset demo --out data/synth --train 2000 --val 200 --seed 0 --overwrite

echo; echo "== centermask train (configs/centermask_demo_cpu.yaml into $run; Ctrl-C stops with a checkpoint)"
"$bin" train --config configs/centermask_demo_cpu.yaml --out "$run" --overwrite "${extra[@]}"

echo; echo "== centermask test: predict the validation split and evaluate"
"$bin" test --weights "$run/model_final.pt" --gt data/synth/val.json --images data/synth/val \
  --out "$run/val_results.json" | tee "$run/test.txt"

echo; echo "== pictures: ground truth | predictions (score >= 0.3)"
"$bin" show --gt data/synth/val.json --images data/synth/val --results "$run/val_results.json" \
  --score-thr 0.3 --limit 24 --out "$run/pictures"

mask_ap="$(awk '/IoU type segm/{f=1} f && /Average Precision.*IoU=0.50:0.95.*all/{print $NF; exit}' "$run/test.txt")"
box_ap="$(awk '/IoU type bbox/{f=1} f && /Average Precision.*IoU=0.50:0.95.*all/{print $NF; exit}' "$run/test.txt")"
echo
echo "Demo done."
echo "  mask AP on the synthetic validation split: $mask_ap   (box AP $box_ap)"
echo "  pictures (ground truth | predictions):    $root/$run/pictures/"
echo "  run folder (config, log.jsonl, checkpoints, metrics): $root/$run/"
echo "Next:"
echo "  $bin predict --weights $run/model_final.pt --input IMAGE_OR_FOLDER --out predictions"
echo "  $bin train --config configs/centermask_demo_cpu.yaml --out runs/mine --set data.train_json=... (any COCO dataset)"
