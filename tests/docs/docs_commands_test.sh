#!/usr/bin/env bash
# The documentation's commands run as written: every ```bash block of each given Markdown file,
# in order, as one script (set -e) from a scratch folder that sees the repository's configs/,
# with the built program on PATH — so a renamed flag or key fails here instead of in a user's
# first hour. Training is cut short with CENTERMASK_SET (the variable the docs mention); ```sh
# blocks (installation, placeholders, GPUs) are shown, not run.
#   docs_commands_test.sh SOURCE_DIR BUILD_DIR FILE.md [FILE.md ...]
set -euo pipefail
source_dir="$1"
build_dir="$2"
shift 2
export PATH="$build_dir/apps:$PATH"
export CENTERMASK_SET="${CENTERMASK_SET:-solver.epochs=1 runtime.time_limit_minutes=0.1 runtime.threads=1}"
status=0
for page in "$@"; do
  work="$(mktemp -d)"
  ln -s "$source_dir/configs" "$work/configs"
  script="$work/commands.sh"
  awk '/^```bash[[:space:]]*$/ {inside = 1; next} /^```/ {inside = 0} inside' \
    "$source_dir/$page" > "$script"
  commands="$(grep -cv '^[[:space:]]*\(#.*\)\?$' "$script" || true)"
  if [ "$commands" -eq 0 ]; then
    echo "FAIL $page: no \`\`\`bash block to run"
    status=1
    continue
  fi
  echo "== $page: $commands lines of commands"
  start=$SECONDS
  if (cd "$work" && bash -euo pipefail -x "$script") > "$work/output.txt" 2>&1; then
    echo "ok $page ($((SECONDS - start)) s)"
  else
    echo "FAIL $page: a command failed; its output ends:"
    tail -40 "$work/output.txt"
    status=1
  fi
  rm -rf "$work"
done
exit $status
