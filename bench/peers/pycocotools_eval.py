#!/usr/bin/env python3
"""pycocotools' whole process on a ground-truth / results pair, as `centermask eval` does it:
load both files, evaluate, accumulate, summarize; prints one JSON line with the seconds of
each step. A dev tool for bench/peers/eval_compare.sh (pycocotools on PYTHONPATH); the product
never needs Python.
Usage: pycocotools_eval.py GT RESULTS [segm|bbox]
"""
import contextlib
import io
import json
import sys
import time

import numpy as np

# cocoapi's last release uses np.float, removed in NumPy 1.24: the alias it meant.
if not hasattr(np, "float"):
    np.float = float

from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def main():
    gt_path, results_path = sys.argv[1], sys.argv[2]
    iou_type = sys.argv[3] if len(sys.argv) > 3 else "segm"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(results_path)
        loaded = time.perf_counter()
        evaluation = COCOeval(gt, dt, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    end = time.perf_counter()
    print(json.dumps({"iou_type": iou_type, "load_s": loaded - start, "evaluate_s": end - loaded,
                      "total_s": end - start, "AP": evaluation.stats[0],
                      "stats": [float(v) for v in evaluation.stats]}))


if __name__ == "__main__":
    main()
