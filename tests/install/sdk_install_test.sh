#!/usr/bin/env bash
# The installed SDK as a user meets it: `cmake --install` into a fresh prefix, then with only
# that prefix (not the source or build tree): the installed program trains a tiny model from
# the installed configs, examples/predict_image configures and builds against the installed
# CMake package (find_package(centermask)) and against its pkg-config file, runs on a picture
# and names an unreadable one, and the Python module imports from the prefix's dist-packages.
#   sdk_install_test.sh BUILD_DIR
set -euo pipefail
build="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
bin="$prefix/bin/centermask"
"$bin" --version

# A checkpoint to predict with, made by the installed program from the installed configs.
"$bin" synth --preset demo --out "$work/data" --train 8 --val 2 --seed 0 > /dev/null
CENTERMASK_SET="solver.epochs=1 solver.schedule_length=epochs runtime.time_limit_minutes=0" \
  "$bin" train --config "$prefix/share/centermask/configs/centermask_demo_cpu.yaml" \
  --out "$work/run" --set data.input_size=64 --set test.input_size=64 \
  --set data.center_border_px=16 --set test.flip_test=false \
  --set "data.train_json=$work/data/train.json" --set "data.train_images=$work/data/train" \
  --set "data.val_json=$work/data/val.json" --set "data.val_images=$work/data/val" \
  > "$work/train.log" 2>&1 || { cat "$work/train.log"; exit 1; }
model="$work/run/model_final.pt"
picture="$(ls "$work/data/val/"* | head -1)"

check_example() {  # $1: the example's binary
  local out
  out="$("$1" "$model" "$picture")"
  echo "$out" | head -3
  echo "$out" | grep -Eq '^[a-z_]+ [0-9.]+ box [0-9.-]+ [0-9.-]+ [0-9.-]+ [0-9.-]+ mask [0-9]+ px$' \
    || { echo "unexpected output: $out"; exit 1; }
  if "$1" "$model" "$work/missing.jpg" 2> "$work/err.txt"; then
    echo "a missing picture was not an error"; exit 1
  fi
  grep -q "missing.jpg: not a readable image" "$work/err.txt" || { cat "$work/err.txt"; exit 1; }
}

# The example, copied out of the installed tree, through the CMake package.
cp -r "$prefix/share/centermask/examples/predict_image" "$work/example"
cmake -S "$work/example" -B "$work/example/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
check_example "$work/example/build/predict_image"

# The same through pkg-config.
if command -v pkg-config > /dev/null; then
  # shellcheck disable=SC2046
  c++ -std=c++17 -O1 -o "$work/predict_image_pc" "$work/example/main.cpp" \
    $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs centermask)
  check_example "$work/predict_image_pc"
fi

# The Python module in the prefix's dist-packages, read by the interpreter it was built for
# (Debian's).
python="${CENTERMASK_TEST_PYTHON:-/usr/bin/python3}"
module="$(find "$prefix/lib" -name 'centermask*.so' -path '*dist-packages*' | head -1)"
if [ -z "$module" ]; then
  echo "python: no module installed (this build has no Python package)"
elif ! "$python" -c "import numpy" 2> /dev/null; then
  echo "python: skipped ($python has no numpy)"
else
  PYTHONPATH="$(dirname "$module")" "$python" -c "
import sys, numpy, centermask
detections = centermask.Predictor(sys.argv[1]).predict(numpy.zeros((40, 60, 3), numpy.uint8))
print('python:', len(detections), 'detections from', centermask.__file__)
" "$model"
fi
echo "the installed SDK works"
