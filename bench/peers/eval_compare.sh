#!/bin/bash
# The evaluator against pycocotools, whole process (load both files + evaluate + summary), side
# by side and alternated, on bench_coco_eval's case (1000 images, 5k ground truth, 100k
# detections with masks); each round also checks that the 12 summary numbers agree to 1e-12.
# PYCOCOTOOLS: a folder holding the pycocotools package (a dev tool): the PyPI package's
# source, github.com/ppwwyyxx/cocoapi (2.0.11), PythonAPI built in place with Debian's
# cython3 and python3-numpy (`python3 setup.py build_ext --inplace`).
#   PYCOCOTOOLS=/path/to/PythonAPI bench/peers/eval_compare.sh [ROUNDS=3] [segm|bbox]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
iou=${2:-segm}
case_dir=${CASE_DIR:-/tmp/centermask_eval_case}
[ -f "$case_dir/results.json" ] || build/bench/bench_coco_eval --dir "$case_dir" > /dev/null
: "${PYCOCOTOOLS:?set PYCOCOTOOLS to a folder with the pycocotools package}"
for round in $(seq "$rounds"); do
  start=$(date +%s.%N)
  ours_json=$(build/apps/centermask eval --gt "$case_dir/gt.json" \
    --results "$case_dir/results.json" --iou "$iou" --json)
  ours=$(echo "$(date +%s.%N) - $start" | bc)
  start=$(date +%s.%N)
  theirs_json=$(PYTHONPATH="$PYCOCOTOOLS${PYTHONPATH:+:$PYTHONPATH}" /usr/bin/python3 \
    bench/peers/pycocotools_eval.py "$case_dir/gt.json" "$case_dir/results.json" "$iou")
  theirs=$(echo "$(date +%s.%N) - $start" | bc)
  agreement=$(/usr/bin/python3 -c 'import json, sys
a = json.loads(sys.argv[1])["stats"]; b = json.loads(sys.argv[2])["stats"]
d = max(abs(x - y) for x, y in zip(a, b))
print("stats agree (max difference %.1e)" % d if d <= 1e-12 else "STATS DIFFER by %.3g" % d)' \
    "$ours_json" "$theirs_json")
  echo "round $round $iou: ours ${ours} s, pycocotools ${theirs} s, ratio $(echo "scale=1; $theirs / $ours" | bc); $agreement"
done
