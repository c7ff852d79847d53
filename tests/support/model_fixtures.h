#pragma once
// Small training batches built without files: synthetic images (or given instances) encoded
// and collated exactly as the loader does, for model tests and benchmarks.

#include <opencv2/core.hpp>
#include <vector>

#include "centermask/data/loader.h"
#include "centermask/data/synthetic_dataset.h"

namespace centermask::testing {

/// The annotated objects of a synthetic image as instances (box = the visible mask's extent).
std::vector<Instance> synthetic_instances(const SyntheticImage& image);

/// A training batch of images (all one size, a multiple of 32, used as the network input
/// without augmentation) and their instances in image pixels.
Batch make_batch(const std::vector<cv::Mat>& images,
                 const std::vector<std::vector<Instance>>& instances, int num_classes,
                 bool class_union_masks = false);

/// Intersection over union of two masks (patches in the same image grid).
double mask_iou(const MaskPatch& a, const MaskPatch& b);

}  // namespace centermask::testing
