#!/usr/bin/env bash
# Installs every Debian 12 package CenterMask needs to build, test and run. Idempotent: when
# everything is already installed it touches neither the network nor apt's lists.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  # LibTorch (CPU) for tensors, autograd and models. OpenBLAS matters: without it LibTorch's
  # matrix products fall back to reference BLAS, ~30x slower (measured ~6 vs ~190 GFLOP/s).
  libtorch-dev libopenblas0-pthread
  # Gloo's headers: LibTorch's c10d (ProcessGroupGloo) is built with it; its headers include them.
  # Data-parallel training (`centermask train --nproc-per-node`, torchrun's variables).
  libgloo-dev
  libopencv-dev        # images, video and geometry
  libyaml-cpp-dev      # configs
  libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev
  # The Python package (python/: centermask.Predictor, centermask.evaluate) and its test.
  pybind11-dev python3-dev python3-numpy
  # The report's test renders `centermask report`'s page in a real headless browser.
  chromium
  # format_check (ctest) holds the sources to .clang-format; without it the check would skip.
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
