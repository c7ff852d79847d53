#!/usr/bin/env bash
# Measures the floors of the learning check (tests/integration/learning_test.cpp): trains each
# method's learning config (tests/data/learning/<method>.yaml) on the test's generated split
# with training seeds 0..N-1 and prints, per run, the final validation mask AP and AP50 and the
# ratio of the mean of the last 5 logged losses to the first logged loss, then per method the
# lowest AP and AP50 and the highest ratio. The test's floors are set from these with a margin.
#   scripts/experiments/learning_floors.sh [SEEDS=10] [METHODS="centermask polarmask centermask_fcos"] [SIZE=small|large]
# SIZE=large is the slow-labelled variant's (128-px pictures, tests/data/learning/*_large.yaml).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seeds="${1:-10}"
methods="${2:-centermask polarmask centermask_fcos}"
size="${3:-small}"
bin="${CENTERMASK_BIN:-$root/build/apps/centermask}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ "$size" = large ]; then
  "$bin" synth --preset demo --size 128 --train 256 --val 48 --seed 7 --out "$work/data" > /dev/null
  suffix=_large
else
  "$bin" synth --preset demo --size 64 --train 128 --val 32 --seed 7 --out "$work/data" > /dev/null
  suffix=
fi
data=(--set "data.train_json=$work/data/train.json" --set "data.train_images=$work/data/train"
      --set "data.val_json=$work/data/val.json" --set "data.val_images=$work/data/val")
for method in $methods; do
  min_ap=1; min_ap50=1; max_ratio=0
  for seed in $(seq 0 $((seeds - 1))); do
    run="$work/$method-$seed"
    start=$(date +%s.%N)
    "$bin" train --config "$root/tests/data/learning/$method$suffix.yaml" --out "$run" \
      "${data[@]}" --set runtime.seed="$seed" > "$run.txt" 2>&1 || { tail -5 "$run.txt"; exit 1; }
    seconds=$(python3 -c "print($(date +%s.%N) - $start)")
    read -r ap ap50 ratio < <(python3 - "$run" <<'PY'
import json, sys
run = sys.argv[1]
losses = [json.loads(l)["loss"] for l in open(f"{run}/log.jsonl") if '"type":"train"' in l]
metrics = json.load(open(f"{run}/metrics.json"))
print(metrics["segm"]["AP"], metrics["segm"]["AP50"], sum(losses[-5:]) / 5 / losses[0])
PY
)
    printf '%s seed %s: mask AP %.4f, AP50 %.4f, last/first loss %.4f, %.0f s\n' "$method" "$seed" \
      "$ap" "$ap50" "$ratio" "$seconds"
    min_ap=$(python3 -c "print(min($min_ap, $ap))")
    min_ap50=$(python3 -c "print(min($min_ap50, $ap50))")
    max_ratio=$(python3 -c "print(max($max_ratio, $ratio))")
  done
  printf '%s: over %s seeds, lowest mask AP %.4f, lowest AP50 %.4f, highest last/first loss %.4f\n' \
    "$method" "$seeds" "$min_ap" "$min_ap50" "$max_ratio"
done
