#!/usr/bin/env python3
"""The Python package against the command line it wraps.

A tiny model is trained with `centermask train`; Predictor must give `centermask predict`'s
detections (classes, scores, boxes, and masks pixel for pixel), evaluate() must give `centermask
eval --json --per-class`'s numbers and pycocotools' reference values, and bad inputs must raise
ValueError naming what is wrong. Run by CTest with PYTHONPATH=<build>/python and CENTERMASK_CLI
set; by hand: PYTHONPATH=build/python CENTERMASK_CLI=build/apps/centermask python3 <this file>.
"""
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import numpy as np

import centermask

CLI = os.environ.get("CENTERMASK_CLI", "centermask")
SOURCE_DIR = pathlib.Path(__file__).resolve().parents[2]
EVAL_CASES = SOURCE_DIR / "tests" / "data" / "coco_eval"
ORT_NODE_PATH = os.environ.get("CENTERMASK_ONNXRUNTIME_NODE_PATH",
                               "/usr/local/lib/centermask-onnxruntime/node_modules")

TINY_CONFIG = """model:
  backbone: resnet18
  backbone_width: 16
  centermask:
    head_channels: 16
    shape_size: 8
data:
  train_json: {root}/data/train.json
  train_images: {root}/data/train
  val_json: {root}/data/val.json
  val_images: {root}/data/val
  input_size: 64
  center_border_px: 16
  workers: 1
solver:
  lr: 1.0e-3
  batch_size: 4
  epochs: 2
test:
  input_size: 64
runtime:
  threads: 1
"""


def run_cli(*args):
    done = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"centermask {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stdout


def decode_coco_rle(rle):
    """COCO's compressed RLE string (pycocotools' rleFrString) as an H x W bool array."""
    height, width = rle["size"]
    text, counts, p = rle["counts"], [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    flat = np.zeros(height * width, dtype=bool)
    position, value = 0, False
    for count in counts:
        flat[position:position + count] = value
        position += count
        value = not value
    return flat.reshape(width, height).T  # column-major, as COCO stores it


class PredictorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        root = pathlib.Path(cls.tmp.name)
        run_cli("synth", "--out", root / "data", "--train", 12, "--val", 4, "--size", 64,
                "--seed", 11, "--min-objects", 1, "--max-objects", 3, "--threads", 1)
        (root / "tiny.yaml").write_text(TINY_CONFIG.format(root=root))
        run_cli("train", "--config", root / "tiny.yaml", "--out", root / "run")
        cls.weights = root / "run" / "model_final.pt"
        cls.images = root / "data" / "val"
        cls.predictions = root / "predictions"
        # A low cut, so that the barely trained model still gives many detections to compare.
        run_cli("predict", "--weights", cls.weights, "--input", cls.images, "--out",
                cls.predictions, "--score-thr", 0.05, "--threads", 1, "--no-overlays")
        cls.predictor = centermask.Predictor(str(cls.weights), score_threshold=0.05, threads=1)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_detections_are_the_command_lines(self):
        images = json.loads((self.predictions / "images.json").read_text())["images"]
        results = json.loads((self.predictions / "results.json").read_text())
        compared = 0
        for image in images:
            expected = [r for r in results if r["image_id"] == image["id"]]
            bgr = centermask.read_image(str(self.images / image["file_name"]))
            self.assertEqual(bgr.shape, (image["height"], image["width"], 3))
            self.assertEqual(bgr.dtype, np.uint8)
            got = self.predictor.predict(bgr)
            self.assertEqual(len(got), len(expected), image["file_name"])
            self.assertEqual([d["score"] for d in got], sorted((d["score"] for d in got), reverse=True))
            key = lambda d: (-d["score"], d["category_id"], tuple(d["bbox"]))
            for g, e in zip(sorted(got, key=key), sorted(expected, key=key)):
                self.assertEqual(g["category_id"], e["category_id"])
                self.assertEqual(g["category_name"],
                                 next(c["name"] for c in self.predictor.categories
                                      if c["id"] == e["category_id"]))
                self.assertAlmostEqual(g["score"], e["score"], places=6)
                np.testing.assert_allclose(g["bbox"], e["bbox"], atol=1e-3)
                self.assertEqual(g["mask"].dtype, np.bool_)
                self.assertEqual(g["mask"].shape, bgr.shape[:2])
                np.testing.assert_array_equal(g["mask"], decode_coco_rle(e["segmentation"]))
                compared += 1
        self.assertGreater(compared, 0, "the tiny model gave no detection to compare")

    def test_a_strided_view_predicts_as_its_copy(self):
        bgr = centermask.read_image(str(sorted(self.images.iterdir())[0]))
        mirrored = bgr[:, ::-1]  # a view with a negative stride
        from_view = self.predictor.predict(mirrored)
        from_copy = self.predictor.predict(np.ascontiguousarray(mirrored))
        self.assertEqual(len(from_view), len(from_copy))
        for a, b in zip(from_view, from_copy):
            self.assertEqual(a["score"], b["score"])
            np.testing.assert_array_equal(a["mask"], b["mask"])

    def test_settings_follow_the_checkpoint_unless_overridden(self):
        settings = self.predictor.test_settings
        self.assertEqual(settings["input_size"], 64)
        self.assertEqual(settings["dtype"], "fp32")
        other = centermask.Predictor(str(self.weights), input_size=96, mask_threshold=0.6,
                                     flip_test=True)
        self.assertEqual(other.test_settings["input_size"], 96)
        self.assertAlmostEqual(other.test_settings["mask_threshold"], 0.6)
        self.assertTrue(other.test_settings["flip_test"])

    @unittest.skipUnless(pathlib.Path(ORT_NODE_PATH, "onnxruntime-node").is_dir()
                         and shutil.which("node"), "node or onnxruntime-node missing")
    def test_an_exported_graph_gives_the_predictors_detections(self):
        root = pathlib.Path(self.tmp.name)
        run_cli("export", "--weights", self.weights, "--out", root / "model.onnx",
                "--mask-size", 112)
        threshold = self.predictor.test_settings["mask_threshold"]
        compared = 0
        for path in sorted(self.images.iterdir()):
            bgr = centermask.read_image(str(path))
            images, transform = centermask.network_input(bgr, 64)
            self.assertEqual(images.shape, (1, 3, 64, 64))
            images.astype("<f4").tofile(root / "input.f32")
            subprocess.run(["node", str(SOURCE_DIR / "scripts" / "onnxruntime" / "run_model.js"),
                            str(root / "model.onnx"), str(root / "input.f32"), str(root / "ort")],
                           env={**os.environ, "NODE_PATH": ORT_NODE_PATH,
                                "INPUT_SHAPE": "1,3,64,64"}, check=True)
            listing = json.loads((root / "ort" / "outputs.json").read_text())["outputs"]
            outputs = {name: np.fromfile(root / "ort" / f"{name}.bin",
                                         dtype=np.int64 if info["type"] == "int64" else np.float32)
                       .reshape(info["dims"]) for name, info in listing.items()}
            got = centermask.exported_detections(outputs, transform, mask_threshold=threshold)
            expected = [d for d in self.predictor.predict(bgr)]
            self.assertEqual(len(got), len(expected), path.name)
            for g, e in zip(sorted(got, key=lambda d: -d["score"]), expected):
                self.assertEqual(g["class_index"],
                                 [c["id"] for c in self.predictor.categories].index(e["category_id"]))
                self.assertAlmostEqual(g["score"], e["score"], delta=1e-4)
                np.testing.assert_allclose(g["bbox"], e["bbox"], atol=0.5)
                union = np.logical_or(g["mask"], e["mask"]).sum()
                both = np.logical_and(g["mask"], e["mask"]).sum()
                # The barely trained model's masks are mostly a few pixels, where one pixel
                # across the threshold is much of the IoU: those may differ by a few pixels.
                # (export_test checks pasting on large masks; here it is the binding.)
                if union > 50:
                    self.assertGreaterEqual(both / union, 0.99)
                else:
                    self.assertLessEqual(union - both, 5)
                compared += 1
        self.assertGreater(compared, 0)

    def test_bad_inputs_name_what_is_wrong(self):
        with self.assertRaisesRegex(ValueError, "uint8"):
            self.predictor.predict(np.zeros((32, 32, 3), dtype=np.float32))
        with self.assertRaisesRegex(ValueError, r"H x W x 3.*\(32, 32\)"):
            self.predictor.predict(np.zeros((32, 32), dtype=np.uint8))
        with self.assertRaisesRegex(ValueError, "empty"):
            self.predictor.predict(np.zeros((0, 32, 3), dtype=np.uint8))
        with self.assertRaisesRegex(ValueError, "no_such.pt"):
            centermask.Predictor("no_such.pt")
        with self.assertRaisesRegex(ValueError, "multiple of 32"):
            centermask.Predictor(str(self.weights), input_size=50)
        with self.assertRaisesRegex(ValueError, "missing.png"):
            centermask.read_image("missing.png")


class EvaluateTest(unittest.TestCase):
    def test_the_numbers_are_eval_json_and_pycocotools(self):
        cases = sorted(p for p in EVAL_CASES.iterdir() if (p / "expected.json").exists())
        self.assertGreater(len(cases), 3)
        for case in cases:
            expected = json.loads((case / "expected.json").read_text())
            for iou in ("segm", "bbox"):
                if iou not in expected:
                    continue
                with self.subTest(case=case.name, iou=iou):
                    got = centermask.evaluate(str(case / "gt.json"), str(case / "results.json"),
                                              iou=iou)
                    cli = json.loads(run_cli("eval", "--gt", case / "gt.json", "--results",
                                             case / "results.json", "--iou", iou, "--json",
                                             "--per-class"))
                    self.assertEqual(got["stats"], cli["stats"])
                    self.assertEqual({str(k): v for k, v in got["per_class"].items()},
                                     cli["per_class"])
                    self.assertEqual(got["num_detections"], cli["num_detections"])
                    np.testing.assert_allclose(got["stats"], expected[iou]["stats"], atol=1e-12)

    def test_lvis_rules_are_eval_lvis(self):
        gt = {"categories": [{"id": 1, "name": "a", "frequency": "f"},
                             {"id": 2, "name": "b", "frequency": "r"}],
              "images": [{"id": 1, "width": 100, "height": 100, "neg_category_ids": [2],
                          "not_exhaustive_category_ids": []}],
              "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "area": 1600,
                               "bbox": [10, 10, 40, 40]}]}
        results = [{"image_id": 1, "category_id": 2, "bbox": [60, 60, 30, 30], "score": 0.9},
                   {"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.8}]
        with tempfile.TemporaryDirectory() as tmp:
            gt_path, results_path = pathlib.Path(tmp, "gt.json"), pathlib.Path(tmp, "r.json")
            gt_path.write_text(json.dumps(gt))
            results_path.write_text(json.dumps(results))
            got = centermask.evaluate(str(gt_path), str(results_path), iou="bbox", lvis=True)
            cli = json.loads(run_cli("eval", "--gt", gt_path, "--results", results_path, "--iou",
                                     "bbox", "--lvis", "--json", "--per-class"))
        self.assertEqual(got["rules"], "lvis")
        self.assertEqual(got["names"][6], "APr")
        self.assertEqual(got["stats"], cli["stats"])
        self.assertAlmostEqual(got["stats"][0], 1.0, places=12)  # b has no ground truth: left out

    def test_bad_inputs_name_what_is_wrong(self):
        case = EVAL_CASES / "perfect"
        with self.assertRaisesRegex(ValueError, "iou"):
            centermask.evaluate(str(case / "gt.json"), str(case / "results.json"), iou="mask")
        with self.assertRaisesRegex(ValueError, "nothing_here.json"):
            centermask.evaluate(str(case / "nothing_here.json"), str(case / "results.json"))


if __name__ == "__main__":
    unittest.main()
