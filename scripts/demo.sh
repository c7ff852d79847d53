#!/usr/bin/env bash
# The demo: installs dependencies, builds, shows the LibTorch/BLAS the build runs on, times the
# CenterMask network stage by stage (untrained: training arrives with the trainer), generates
# the synthetic benchmark and draws it, and
# evaluates a bundled set of detections on 79 real COCO val2017 images with the project's COCO
# evaluator (which agrees with pycocotools to 1e-13 on this set).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build="${CENTERMASK_BUILD_DIR:-$root/build}"
bin="$build/apps/centermask"
example="$root/tests/data/coco_eval/coco_mini_val"

if [ -x "$build/bench/bench_torch_blas" ]; then
  echo; echo "== LibTorch on this machine"
  "$build/bench/bench_torch_blas"
fi
if [ -x "$build/bench/bench_model" ]; then
  echo; echo "== CenterMask (ResNet-18) inference, per stage, at 512x512 on this machine"
  "$build/bench/bench_model" --backbone resnet18 --iters 3
fi
synth="$build/demo/synth"
echo; echo "== centermask synth: the built-in benchmark (into $synth)"
"$bin" synth --out "$synth" --train 200 --val 50 --seed 0 --overwrite
echo; echo "== centermask show: ground truth and two training augmentations per image"
"$bin" show --gt "$synth/val.json" --images "$synth/val" --out "$build/demo/pictures" --limit 8 --augment 2
for iou in segm bbox; do
  echo; echo "== centermask eval --iou $iou (bundled example: $example)"
  "$bin" eval --gt "$example/gt.json" --results "$example/results.json" --iou "$iou"
done
echo
echo "Demo done. Pictures of the synthetic benchmark: $build/demo/pictures/"
echo "Evaluate your own results with:"
echo "  $bin eval --gt GT.json --results RESULTS.json [--iou segm|bbox] [--per-class] [--json]"
