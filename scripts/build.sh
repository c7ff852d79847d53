#!/usr/bin/env bash
# Configures and builds into build/ (Release). Extra arguments go to CMake, e.g.
#   scripts/build.sh -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
# to build against a CUDA LibTorch on a GPU machine. CENTERMASK_BUILD_TARGET=centermask builds
# only the command-line program (what the demo needs: about half the build, without the tests
# and benchmarks); unset, everything.
#
#   scripts/build.sh --cuda [CMake arguments]
# builds against the CUDA LibTorch of the installed PyTorch (torch.utils.cmake_prefix_path; the
# CUDA toolkit's nvcc must be on PATH for its CMake files) into build-cuda/: the same code, the
# devices chosen at run time (--device cuda, runtime.device).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-}" = "--cuda" ]; then
  shift
  prefix="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" || {
    echo "build.sh --cuda: needs PyTorch with CUDA (python3 -c 'import torch' failed)" >&2
    exit 2
  }
  set -- -DCMAKE_PREFIX_PATH="$prefix" "$@"
  CENTERMASK_BUILD_DIR="${CENTERMASK_BUILD_DIR:-$root/build-cuda}"
fi
build="${CENTERMASK_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
target=()
if [ -n "${CENTERMASK_BUILD_TARGET:-}" ]; then target=(--target "$CENTERMASK_BUILD_TARGET"); fi
cmake --build "$build" --parallel "$(nproc)" "${target[@]}"
