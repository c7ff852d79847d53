#!/bin/bash
# Side by side in one run, alternating so that a noisy machine hits every row alike:
# `centermask bench` for ResNet-18 CenterMask (fp32 with the inference form off and on, bf16)
# against eager PyTorch's same network and torchvision's Mask R-CNN R50-FPN (dev tools:
# Debian's python3-torch, python3-torchvision). Prints one JSON line per run.
#   bench/peers/compare.sh [ROUNDS=3] [SIZE=512]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
size=${2:-512}
cli=build/apps/centermask
python=/usr/bin/python3
for round in $(seq "$rounds"); do
  for variant in "fp32 off" "fp32 on" "bf16 on"; do
    set -- $variant
    if [ "$1" = bf16 ] && ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then continue; fi
    echo "{\"round\":$round,\"row\":\"ours $1 fold=$2\",\"result\":$($cli bench --backbone resnet18 \
      --size "$size" --iters 10 --dtype "$1" --fold "$2" --json)}"
  done
  echo "{\"round\":$round,\"row\":\"eager pytorch\",\"result\":$($python bench/peers/eager_pytorch.py \
    resnet18_centermask --size "$size" --iters 10)}"
  echo "{\"round\":$round,\"row\":\"mask r-cnn\",\"result\":$($python bench/peers/eager_pytorch.py \
    maskrcnn_r50_fpn --size "$size" --iters 4 --warmup 1)}"
done
