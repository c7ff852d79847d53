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
  # `centermask export --format onnx`: ONNX's protobuf, checker and shape inference.
  libonnx-dev
)

# The export tests run exported models in ONNX Runtime: its CPU library from the npm package
# onnxruntime-node, run by node (Debian's nodejs and npm where no node is installed yet). The
# package's install script fetches GPU extras from elsewhere and fails: --ignore-scripts.
ort_prefix=/usr/local/lib/centermask-onnxruntime
ort_version=1.31.1
install_onnxruntime() {
  if [ -f "$ort_prefix/node_modules/onnxruntime-node/package.json" ]; then return 0; fi
  echo "install-deps: installing onnxruntime-node $ort_version in $ort_prefix"
  "${sudo_cmd[@]}" mkdir -p "$ort_prefix"
  "${sudo_cmd[@]}" npm install --prefix "$ort_prefix" --ignore-scripts --no-audit --no-fund \
    "onnxruntime-node@$ort_version" > /dev/null
}
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then packages+=(nodejs npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  install_onnxruntime
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
install_onnxruntime
