#!/usr/bin/env bash
# Our inference beside ONNX Runtime's on the same network, in one run on this machine: the
# network exported with `centermask export` twice — raw maps (--postprocess off) and final
# detections (--postprocess on, the decoding in the graph; fp32) — and timed in ONNX Runtime
# (the npm package onnxruntime-node, CPU, its own graph optimisations) against `centermask
# bench` of the same weights, alternating, ROUNDS times. One line per measurement. ONNX
# Runtime's figures leave out preparing the input and pasting the masks into the image (the
# deploy program's work; ours end to end includes both).
#   bench/peers/onnxruntime_compare.sh (--weights RUN/model_final.pt | --config CFG) [SIZE=512] [THREADS=2] [ROUNDS=3]
# Our model-only figure is the network as predict runs it (CenterMask and CenterMask-FCOS
# evaluate local shapes only at the detections); the exported graph gives every map densely
# (the raw maps), so for those two methods ONNX Runtime computes the shape layer at every
# location: ort_ms covers more work there. PolarMask's maps are the same in both.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CENTERMASK_BIN:-$root/build/apps/centermask}"
model_args=("$1" "$2")
size="${3:-512}"
threads="${4:-2}"
rounds="${5:-3}"
ort_path="${CENTERMASK_ONNXRUNTIME_NODE_PATH:-/usr/local/lib/centermask-onnxruntime/node_modules}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
extra=()
if [ "$1" = --config ]; then extra=(--classes 80); fi
"$bin" export "${model_args[@]}" "${extra[@]}" --format onnx --input-size "$size" \
  --postprocess off --out "$work/model.onnx" > "$work/export.txt"
decoded=no
if "$bin" export "${model_args[@]}" "${extra[@]}" --format onnx --input-size "$size" \
  --out "$work/decoded.onnx" > "$work/export_decoded.txt" 2>&1; then decoded=yes; fi
python3 -c "
import random, struct, sys
random.seed(0)
n = 3 * $size * $size
open('$work/input.f32', 'wb').write(struct.pack('<%df' % n, *[random.gauss(0, 1) for _ in range(n)]))"
for round in $(seq 1 "$rounds"); do
  ours=$("$bin" bench "${model_args[@]}" "${extra[@]}" --size "$size" --threads "$threads" \
           --iters 20 --warmup 3 --json 2> /dev/null |
         python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f %.1f" % (r["model_ms"], r["end_to_end_ms"]))')
  NODE_PATH="$ort_path" INPUT_SHAPE="1,3,$size,$size" node "$root/scripts/onnxruntime/run_model.js" \
    "$work/model.onnx" "$work/input.f32" "$work/ort" "$threads" 20 > /dev/null
  ort=$(python3 -c "import json; print('%.1f' % json.load(open('$work/ort/outputs.json'))['ms'])")
  ort_decoded="(no decoding export for this method)"
  if [ "$decoded" = yes ]; then
    NODE_PATH="$ort_path" INPUT_SHAPE="1,3,$size,$size" node "$root/scripts/onnxruntime/run_model.js" \
      "$work/decoded.onnx" "$work/input.f32" "$work/ort_decoded" "$threads" 20 > /dev/null
    ort_decoded=$(python3 -c "import json; print('%.1f ms' % json.load(open('$work/ort_decoded/outputs.json'))['ms'])")
  fi
  echo "round $round: size $size, $threads threads: ours model ${ours% *} ms, end to end ${ours#* } ms; onnxruntime raw maps $ort ms, with decoding $ort_decoded"
done
