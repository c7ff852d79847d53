#!/usr/bin/env bash
# Installs dependencies, builds, and runs the default test suite (everything not labelled
# slow). Usage: scripts/test.sh [extra ctest arguments, e.g. -L unit or -R Rle]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
cd "${CENTERMASK_BUILD_DIR:-$root/build}"
ctest --output-on-failure --parallel "$(nproc)" --label-exclude slow "$@"
