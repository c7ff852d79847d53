#pragma once
// Helpers for model tests.

#include "centermask/data/loader.h"
#include "centermask/data/synthetic_dataset.h"

namespace centermask::testing {

/// make_training_batch with default target options for `num_classes` classes.
Batch make_batch(const std::vector<cv::Mat>& images,
                 const std::vector<std::vector<Instance>>& instances, int num_classes,
                 bool class_union_masks = false);

/// Intersection over union of two masks (patches in the same image grid).
double mask_iou(const MaskPatch& a, const MaskPatch& b);

}  // namespace centermask::testing
