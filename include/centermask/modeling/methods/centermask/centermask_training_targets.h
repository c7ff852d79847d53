#pragma once
// A loader Batch's CenterMask targets as tensors on the training device: dense per-slot
// targets for the heatmap, offset and size losses, and the objects that have masks flattened
// over the batch for the mask loss, with their ground-truth crops padded to a common size.

#include <torch/torch.h>

#include "centermask/data/loader.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"

namespace centermask {

struct CenterMaskTrainingTargets {
  int num_classes = 0;
  int height = 0;       ///< output rows
  int width = 0;        ///< output columns
  int mask_height = 0;  ///< mask map rows (the saliency map's resolution)
  int mask_width = 0;
  torch::Tensor heatmap;       ///< (N, C, H, W)
  torch::Tensor center_index;  ///< (N, K) int64 y·W + x
  torch::Tensor offset;        ///< (N, K, 2)
  torch::Tensor size;          ///< (N, K, 2) cells
  torch::Tensor valid;         ///< (N, K) float, 1 for a real object
  std::int64_t num_objects = 0;
  torch::Tensor box_target;  ///< (N, 4, H, W) dense box targets, or undefined
  torch::Tensor box_weight;  ///< (N, H, W), or undefined

  // The M masks to assemble over the whole batch (host copies drive the assembly): one per
  // object with a mask target at its center cell, plus, with a neighbourhood, the same object's
  // mask assembled from the shapes at nearby cells (a peak may land there at inference).
  std::vector<std::int64_t> mask_image;  ///< (M) image in the batch
  std::vector<std::int64_t> mask_cell;   ///< (M) cell y·W + x whose local shape is used
  std::vector<std::int64_t> mask_class;  ///< (M)
  std::vector<CellRegion> mask_region;   ///< (M) box_cell_region of the ground-truth box
  std::vector<float> mask_weight;        ///< (M) 1 at centers, the Gaussian's value elsewhere
  /// (M, Hm, Wm) coverage in [0, 1] over each region (row-major from its top-left cell), zero
  /// in padding and where the region leaves the map; Hm, Wm = largest region sides.
  torch::Tensor mask_target;
  torch::Tensor class_masks;  ///< (N, C, H, W) when the batch has them, else undefined

  std::int64_t num_masks() const { return static_cast<std::int64_t>(mask_image.size()); }
};

/// make_training_batch with CenterMask's encoder for `options` (tests, benchmarks, tools).
Batch make_training_batch(const std::vector<cv::Mat>& images,
                          const std::vector<std::vector<Instance>>& instances,
                          const CenterMaskTargetOptions& options);

/// A training batch's CenterMask targets; std::invalid_argument when it has none (loaded for
/// inference), std::logic_error when they are another method's.
const CenterMaskBatchTargets& centermask_batch_targets(const Batch& batch);

/// Copies a training batch's targets to `device`. `mask_neighbourhood` r > 0 also assembles
/// each object's mask from the local shape at the cells within r of its center (a
/// (2r+1)² window, on the map, where the object's heatmap Gaussian is at least 0.1), each
/// weighted by that Gaussian's value.
CenterMaskTrainingTargets make_training_targets(const Batch& batch, const torch::Device& device,
                                                int mask_neighbourhood = 0);
CenterMaskTrainingTargets make_training_targets(const CenterMaskBatchTargets& batch,
                                                const torch::Device& device,
                                                int mask_neighbourhood = 0);

}  // namespace centermask
