#!/usr/bin/env bash
# Configures and builds into build/ (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
# to build against a CUDA LibTorch on a GPU machine. CENTERMASK_BUILD_TARGET=centermask builds
# only the command-line program (what the demo needs: about half the build, without the tests
# and benchmarks); unset, everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CENTERMASK_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
target=()
if [ -n "${CENTERMASK_BUILD_TARGET:-}" ]; then target=(--target "$CENTERMASK_BUILD_TARGET"); fi
cmake --build "$build" --parallel "$(nproc)" "${target[@]}"
