#!/usr/bin/env bash
# Builds the Debian package of the program, the C++ SDK, the configs and the Python module:
# build/centermask_<version>_amd64.deb, installed under /usr, its dependencies Debian's
# runtime packages of what the program links (dpkg-shlibdeps: LibTorch, OpenCV, yaml-cpp, fmt,
# OpenBLAS, ONNX, protobuf...).
#   bash scripts/package-deb.sh            then: apt install ./build/centermask_*.deb
# Builds what the package holds first (not the tests or benchmarks) in the existing build
# folder (CENTERMASK_BUILD_DIR, default build/; scripts/build.sh configures one).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${CENTERMASK_BUILD_DIR:-$root/build}"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CENTERMASK_BUILD_TARGET=centermask "$root/scripts/build.sh"
fi
# Debian's python3 reads /usr/lib/python3/dist-packages: the module goes there in the package
# (a `cmake --install` to another prefix keeps its own choice, restored below).
cmake -S "$root" -B "$build" -DCENTERMASK_PYTHON_INSTALL_DIR=lib/python3/dist-packages > /dev/null
restore() { cmake -S "$root" -B "$build" -DCENTERMASK_PYTHON_INSTALL_DIR= > /dev/null; }
trap restore EXIT
targets=(centermask centermask-torch centermask_eval centermask_core centermask_model centermask_engine
  centermask_export)
if grep -q "^pybind11_DIR:PATH=/" "$build/CMakeCache.txt"; then targets+=(centermask_python); fi
cmake --build "$build" --target "${targets[@]}"
(cd "$build" && cpack -G DEB > cpack.log) || { cat "$build/cpack.log"; exit 1; }
package="$(ls -t "$build"/centermask_*_amd64.deb | head -1)"
echo "$package"
dpkg-deb --field "$package" Package Version Depends
