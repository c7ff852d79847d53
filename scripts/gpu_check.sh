#!/usr/bin/env bash
# The GPU path in one short run, for a machine with an NVIDIA GPU and PyTorch with CUDA (the
# project's lent H100/H200): CUDA build, the tests with CUDA required (a CUDA test that would
# skip for want of a GPU fails instead), `centermask bench` for ResNet-18, DLA-34 (with DCNv2,
# and plain) and Hourglass-104 at 512² in fp32 and fp16, and 300 training iterations on the demo
# data on the GPU in fp32 and in fp16 mixed precision (solver.precision). Figures go to $OUT
# (default gpu_check_out/), one file each.
#
# Every step runs even when an earlier one failed (a GPU is lent for minutes: one run should
# show everything), and the script ends with one line a reader of the log can trust:
#   gpu_check: PASS (build ok; tests 812/812 passed, 0 skipped, CUDA tests 3 passed; ...)
#   gpu_check: FAIL (tests: 2 failed: DeformConv.Cuda...; ...)
# and exits non-zero on FAIL.
#   scripts/gpu_check.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu_check_out}"
mkdir -p "$out"
failures=()
summary=()

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1 ||
  failures+=("nvidia-smi failed")
if ! python3 -c 'import torch; assert torch.cuda.is_available(), "PyTorch sees no GPU"' \
  > "$out/torch.txt" 2>&1; then
  cat "$out/torch.txt"
  echo "gpu_check: FAIL (PyTorch sees no GPU; nothing else was run)"
  exit 1
fi

echo "== CUDA build (build-cuda/)"
if ! scripts/build.sh --cuda > "$out/build.txt" 2>&1; then
  tail -30 "$out/build.txt"
  echo "gpu_check: FAIL (the CUDA build failed: $out/build.txt)"
  exit 1
fi
summary+=("build ok")
bin=build-cuda/apps/centermask

echo "== tests (CENTERMASK_REQUIRE_CUDA=1: CUDA tests fail rather than skip)"
CENTERMASK_REQUIRE_CUDA=1 ctest --test-dir build-cuda -LE slow -j 8 --output-on-failure \
  --output-junit "$out/ctest.xml" > "$out/ctest.txt" 2>&1
ctest_status=$?
tail -5 "$out/ctest.txt"
# ctest's own closing line: "100% tests passed, 0 tests failed out of 812".
tests_line="$(grep -E '[0-9]+% tests passed' "$out/ctest.txt" | tail -1)"
# The tests that need a GPU are named Suite.Cuda* (tests/support/cuda.h).
cuda_tests="$(ctest --test-dir build-cuda -N -LE slow 2>/dev/null | grep -cE '[A-Za-z]\.Cuda' || true)"
cuda_passed="$(grep -E 'Test +#[0-9]+: [A-Za-z0-9_/]+\.Cuda[^ ]* \.+ +Passed' "$out/ctest.txt" | wc -l)"
skipped="$(grep -cE '\*\*\*Skipped|Not Run' "$out/ctest.txt" || true)"
if [ "$ctest_status" -ne 0 ] || [ -z "$tests_line" ]; then
  failed_names="$(grep -E '^\s+[0-9]+ - .* \((Failed|SEGFAULT|Timeout|Subprocess aborted|Exception)' \
    "$out/ctest.txt" | sed -E 's/^ +[0-9]+ - //; s/ \(.*//' | head -8 | paste -sd, -)"
  failures+=("tests: ${tests_line:-no ctest summary} [${failed_names}]")
else
  summary+=("tests: $tests_line, $skipped skipped, CUDA tests $cuda_passed/$cuda_tests passed")
fi
if [ "$cuda_passed" -eq 0 ] || [ "$cuda_passed" -lt "$cuda_tests" ]; then
  failures+=("CUDA tests: $cuda_passed of $cuda_tests passed")
fi

echo "== centermask bench, 512², batch 1, end to end"
for backbone in resnet18 dla34 dla34_plain hourglass104; do
  for dtype in fp32 fp16; do
    if ! "$bin" bench --backbone "$backbone" --size 512 --device cuda --dtype "$dtype" \
      --iters 100 --warmup 10 --json > "$out/bench_${backbone}_${dtype}.json" \
      2> "$out/bench_${backbone}_${dtype}.err"; then
      failures+=("bench $backbone $dtype: $(tail -1 "$out/bench_${backbone}_${dtype}.err")")
      rm -f "$out/bench_${backbone}_${dtype}.json"
    fi
  done
done

echo "== 300 training iterations on the GPU (demo data), fp32 then fp16 mixed precision"
"$bin" synth --preset demo --out "$out/synth" --train 600 --val 60 --seed 0 --overwrite > /dev/null ||
  failures+=("synth failed")
for precision in fp32 fp16; do
  if "$bin" train --config configs/centermask_demo_cpu.yaml --out "$out/train_$precision" \
    --overwrite --device cuda --set data.train_json="$out/synth/train.json" \
    --set data.train_images="$out/synth/train" --set data.val_json="$out/synth/val.json" \
    --set data.val_images="$out/synth/val" --set solver.epochs=4 \
    --set solver.precision=$precision --set runtime.time_limit_minutes=5 \
    > "$out/train_$precision.txt" 2>&1; then
    summary+=("train $precision: $(grep -oE 'mask AP [0-9.]+' "$out/train_$precision.txt" | tail -1)")
  else
    failures+=("train $precision: $(tail -1 "$out/train_$precision.txt")")
  fi
  tail -3 "$out/train_$precision.txt"
  cp "$out/train_$precision/log.jsonl" "$out/train_${precision}_log.jsonl" 2>/dev/null || true
done

echo "== figures"
for f in "$out"/bench_*.json; do
  [ -e "$f" ] || continue
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(f"{sys.argv[1].split(\"/\")[-1]}: end to end {d[\"end_to_end_ms\"]:.2f} ms ({d[\"end_to_end_fps\"]:.0f} FPS), model {d[\"model_ms\"]:.2f} ms ({d[\"model_fps\"]:.0f} FPS)")' "$f"
done

joined() { local IFS=';'; echo "$*" | sed 's/;/; /g'; }
if [ ${#failures[@]} -eq 0 ]; then
  echo "gpu_check: PASS ($(joined "${summary[@]}"))"
  exit 0
fi
echo "gpu_check: FAIL ($(joined "${failures[@]}"))"
exit 1
