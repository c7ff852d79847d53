#pragma once
// The representation's ceiling on a dataset: every image's ground truth encoded by the model's
// own target encoder as perfect network outputs, decoded through the real inference path and
// scored like a trained model. It tells a user which input size, S and saliency stride their
// data needs before hours of training (`centermask upper-bound`).
#include <array>
#include <cstdint>
#include <memory>

#include "centermask/data/training_set.h"
#include "centermask/engine/config.h"
#include "centermask/evaluation/coco_evaluator.h"

namespace centermask {

struct UpperBoundReport {
  CocoEvalResult segm;
  CocoEvalResult bbox;
  /// Mean over non-crowd ground truth of the best mask IoU with a detection of its class in
  /// its image (0 when none), for all / small / medium / large (COCO's area ranges on the
  /// annotation's area), and how many objects each mean is over.
  std::array<double, 4> mean_mask_iou{};
  std::array<std::int64_t, 4> objects{};
  std::int64_t images = 0;
  std::int64_t detections = 0;
  double seconds = 0;
};

/// The upper bound of `model` (only its options matter: no weights are read) on `set` at the
/// test transform of `test` (input size; the decoder's top-K and mask threshold). The dataset
/// needs masks: InputError naming `set_name` when no annotation of a usable image has one.
UpperBoundReport compute_upper_bound(const ModelConfig& model,
                                     const std::shared_ptr<const TrainingSet>& set,
                                     const TestConfig& test, const std::string& set_name,
                                     int workers = 0);

}  // namespace centermask
