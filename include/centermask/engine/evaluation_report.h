#pragma once
// What running a model over a set gives: its COCO results and, when the set has ground truth,
// their evaluation. Free of LibTorch, so that the public Predictor's header is too.

#include <cstdint>
#include <optional>

#include "centermask/data/coco_results.h"
#include "centermask/evaluation/coco_evaluator.h"

namespace centermask {

struct InferenceRun {
  CocoResults results;  ///< against the set's dataset (its image and category ids)
  std::int64_t images = 0;
  double seconds = 0;
};

struct EvaluationReport {
  CocoEvalResult segm;
  CocoEvalResult bbox;
  /// The same ignoring categories in matching (COCOeval useCats = 0), when asked: the gap to
  /// segm / bbox is what class confusion costs, the rest is localisation and mask quality.
  std::optional<CocoEvalResult> segm_agnostic;
  std::optional<CocoEvalResult> bbox_agnostic;
  InferenceRun run;
};

}  // namespace centermask
