#!/usr/bin/env bash
# Configures and builds into build/ (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
# to build against a CUDA LibTorch on a GPU machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CENTERMASK_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" --parallel "$(nproc)"
