#pragma once
// Helpers for model tests.

#include <opencv2/core.hpp>

#include "centermask/data/loader.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"

namespace centermask::testing {

/// make_training_batch with default target options for `num_classes` classes.
Batch make_batch(const std::vector<cv::Mat>& images,
                 const std::vector<std::vector<Instance>>& instances, int num_classes,
                 bool class_union_masks = false);

/// A filled ellipse instance inside `box`, in an image of the given size.
Instance ellipse_instance(int class_index, cv::Rect box, int height, int width);

/// Uniform colour noise, reproducible from `seed`.
cv::Mat noise_image(int height, int width, int seed);

/// Intersection over union of two masks (patches in the same image grid).
double mask_iou(const MaskPatch& a, const MaskPatch& b);

/// An image whose input and original are the same `height` × `width` pixels.
ImageInfo identity_info(int height, int width);

/// For each object of `truth`, the best mask IoU of a detection of its class (0 when none).
std::vector<double> best_mask_iou_per_object(const std::vector<Instance>& detected,
                                             const std::vector<Instance>& truth);

}  // namespace centermask::testing
