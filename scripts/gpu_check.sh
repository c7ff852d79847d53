#!/usr/bin/env bash
# The GPU path in one short run, for a machine with an NVIDIA GPU and PyTorch with CUDA (the
# project's lent H200): CUDA build, the tests (CUDA tests run instead of skipping),
# `centermask bench` for ResNet-18, DLA-34 (with DCNv2, and plain) and Hourglass-104 at 512² in
# fp32 and fp16, and 300 training
# iterations on the demo data on the GPU, in fp32 and in fp16 mixed precision
# (solver.precision). Figures go to $OUT (default gpu_check_out/), one file each; the summary
# is printed at the end.
#   scripts/gpu_check.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu_check_out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" || true
python3 -c 'import torch; assert torch.cuda.is_available(), "PyTorch sees no GPU"'

echo "== CUDA build (build-cuda/)"
scripts/build.sh --cuda > "$out/build.txt" 2>&1 || { tail -30 "$out/build.txt"; exit 1; }
bin=build-cuda/apps/centermask

echo "== tests"
ctest --test-dir build-cuda -LE slow -j 8 --output-on-failure > "$out/ctest.txt" 2>&1 || true
tail -5 "$out/ctest.txt"

echo "== centermask bench, 512², batch 1, end to end"
for backbone in resnet18 dla34 dla34_plain hourglass104; do
  for dtype in fp32 fp16; do
    "$bin" bench --backbone "$backbone" --size 512 --device cuda --dtype "$dtype" --iters 100 \
      --warmup 10 --json > "$out/bench_${backbone}_${dtype}.json"
  done
done

echo "== 300 training iterations on the GPU (demo data), fp32 then fp16 mixed precision"
"$bin" synth --preset demo --out "$out/synth" --train 600 --val 60 --seed 0 --overwrite > /dev/null
for precision in fp32 fp16; do
  "$bin" train --config configs/centermask_demo_cpu.yaml --out "$out/train_$precision" --overwrite \
    --device cuda --set data.train_json="$out/synth/train.json" \
    --set data.train_images="$out/synth/train" --set data.val_json="$out/synth/val.json" \
    --set data.val_images="$out/synth/val" --set solver.epochs=4 --set solver.precision=$precision \
    --set runtime.time_limit_minutes=5 > "$out/train_$precision.txt" 2>&1 || true
  tail -3 "$out/train_$precision.txt"
  cp "$out/train_$precision/log.jsonl" "$out/train_${precision}_log.jsonl" 2>/dev/null || true
done

echo "== summary"
for f in "$out"/bench_*.json; do
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(f"{sys.argv[1].split(\"/\")[-1]}: end to end {d[\"end_to_end_ms\"]:.2f} ms ({d[\"end_to_end_fps\"]:.0f} FPS), model {d[\"model_ms\"]:.2f} ms ({d[\"model_fps\"]:.0f} FPS)")' "$f"
done
