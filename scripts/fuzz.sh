#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default
# 120), seeded with the project's test data. Crashes are written to fuzz-corpus/.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-120}"
if ! command -v clang++ >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
  apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi
CC=clang CXX=clang++ cmake -S "$root" -B "$root/build-fuzz" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCENTERMASK_BUILD_FUZZERS=ON -DCENTERMASK_WITH_TORCH=OFF -DCENTERMASK_BUILD_TESTS=OFF \
  -DCENTERMASK_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-fuzz" --target fuzz_rle_string fuzz_coco_reader
mkdir -p "$root/fuzz-corpus/rle" "$root/fuzz-corpus/coco" "$root/fuzz-corpus/crashes"
cp "$root"/tests/data/coco_eval/*/gt.json "$root"/tests/data/coco_eval/{perfect,crowd_ignore,fp_top}/results.json "$root/fuzz-corpus/coco/" 2>/dev/null || true
for f in "$root"/tests/data/coco_eval/*/gt.json; do cp "$f" "$root/fuzz-corpus/coco/$(basename "$(dirname "$f")")_gt.json"; done
printf '\xc8\xc8jn1b1f40000fZk0' > "$root/fuzz-corpus/rle/seed1"
printf '\x0a\x0a0`1' > "$root/fuzz-corpus/rle/seed2"
cd "$root/fuzz-corpus"
"$root/build-fuzz/fuzz/fuzz_rle_string" -max_total_time="$seconds" -artifact_prefix=crashes/ rle
"$root/build-fuzz/fuzz/fuzz_coco_reader" -max_total_time="$seconds" -max_len=65536 -artifact_prefix=crashes/ coco
