#!/usr/bin/env bash
# Formats the C++ sources with the repository's .clang-format; with --check, only reports
# files that differ and exits non-zero if any do.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mapfile -t files < <(cd "$root" && git ls-files '*.cpp' '*.h')
cd "$root"
if [ "${1:-}" = "--check" ]; then
  clang-format --dry-run -Werror "${files[@]}"
else
  clang-format -i "${files[@]}"
fi
