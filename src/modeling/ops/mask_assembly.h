#pragma once
// CenterMask's mask assembly for M objects at once (SPEC §1), the one code path for the
// training loss (ground-truth centers and boxes) and inference (peaks and predicted boxes):
// each object's local shape resized bilinearly to its box's cells, times the saliency map
// cropped to the same cells (the object's class channel when class-specific).

#include <torch/torch.h>

#include <vector>

#include "centermask/data/centermask_targets.h"

namespace centermask {

struct MaskAssemblyInput {
  /// (M, S, S) local shape logits; undefined = saliency only.
  torch::Tensor shape_logits;
  /// (N, 1 or C, H, W) saliency logits; undefined = shape only.
  torch::Tensor saliency_logits;
  int map_height = 0;                        ///< H, needed when there is no saliency map
  int map_width = 0;                         ///< W
  std::vector<CellRegion> regions;           ///< (M) box_cell_region of each box, unclipped
  std::vector<std::int64_t> image_index;     ///< (M) which image's saliency map
  std::vector<std::int64_t> saliency_class;  ///< (M) channel when the map has C channels
};

struct AssembledMasks {
  /// (M, Hm, Wm) mask probability; row r, column c of object m is cell (y0 + r, x0 + c) of its
  /// region. Hm, Wm are the largest region sides; padding holds arbitrary values.
  torch::Tensor probability;
  /// (M, Hm, Wm) true inside the region and on the map: where the probability means something.
  torch::Tensor inside;
};

/// Throws std::invalid_argument when neither factor is given or the index vectors differ in
/// length from the regions.
AssembledMasks assemble_masks(const MaskAssemblyInput& input);

}  // namespace centermask
