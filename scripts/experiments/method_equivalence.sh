#!/usr/bin/env bash
# Shows that a refactor changed no number: for each method, the first 100 logged losses of a
# seeded run (the learning check's config and split, a log line per iteration) and the
# `centermask test` stats of that run's checkpoint, written to OUT/<method>.losses and
# OUT/<method>.test.json. Run it with the binary before and after the change, then compare:
#   CENTERMASK_BIN=old/build/apps/centermask scripts/experiments/method_equivalence.sh /tmp/before
#   scripts/experiments/method_equivalence.sh /tmp/after
#   diff -r /tmp/before /tmp/after   # identical losses and stats
# With CHECKPOINTS=DIR it also tests DIR/<method>.pt (checkpoints trained before the change)
# and writes OUT/<method>.old_checkpoint.test.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:?usage: method_equivalence.sh OUT_DIR}"
bin="${CENTERMASK_BIN:-$root/build/apps/centermask}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" synth --preset demo --size 64 --train 128 --val 32 --seed 7 --out "$work/data" > /dev/null
data=(--set "data.train_json=$work/data/train.json" --set "data.train_images=$work/data/train"
      --set "data.val_json=$work/data/val.json" --set "data.val_images=$work/data/val")
for method in centermask polarmask centermask_fcos; do
  "$bin" train --config "$root/tests/data/learning/$method.yaml" --out "$work/$method" "${data[@]}" \
    --set solver.epochs=6.25 --set runtime.log_every_iters=1 --set runtime.seed=0 > /dev/null 2>&1
  python3 -c 'import json,sys; [print(json.loads(l)["iter"], repr(json.loads(l)["loss"])) for l in open(sys.argv[1]) if "\"type\":\"train\"" in l]' \
    "$work/$method/log.jsonl" > "$out/$method.losses"
  "$bin" test --weights "$work/$method/model_final.pt" --gt "$work/data/val.json" \
    --images "$work/data/val" --json > "$out/$method.test.json" 2> /dev/null
  cp "$work/$method/model_final.pt" "$out/$method.pt"
  if [ -n "${CHECKPOINTS:-}" ]; then
    "$bin" test --weights "$CHECKPOINTS/$method.pt" --gt "$work/data/val.json" \
      --images "$work/data/val" --json > "$out/$method.old_checkpoint.test.json" 2> /dev/null
  fi
  echo "$method: $(wc -l < "$out/$method.losses") losses, last $(tail -1 "$out/$method.losses")"
done
