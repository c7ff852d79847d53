#pragma once
// CenterMask's mask assembly for M objects at once (SPEC §1), the one code path for the
// training loss (ground-truth centers and boxes) and inference (peaks and predicted boxes):
// each object's local shape resized bilinearly to its box's cells, times the saliency map
// cropped to the same cells (the object's class channel when class-specific).

#include <torch/torch.h>

#include <vector>

#include "centermask/data/mask_cells.h"

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
  /// ≥ 0: compute each mask only over its region's cells within this many cells of the map
  /// (the shape still resized to the whole region). Inference sets 1: a predicted box can be
  /// far larger than the image (an untrained network's sizes reach 10⁴ cells, whose
  /// unclipped regions asked for tens of GB), while pixels in the image only ever read cells
  /// on the map and, through bilinear resampling, one cell beyond it, so the masks are the
  /// same. −1: the whole regions (training: ground-truth boxes lie in the image).
  int clip_margin = -1;
};

struct AssembledMasks {
  /// (M, Hm, Wm) mask probability over the cells of `computed` (below). Hm, Wm are the largest
  /// computed sides; padding holds arbitrary values.
  torch::Tensor probability;
  /// (M, Hm, Wm) true inside the region and on the map: where the probability means something.
  torch::Tensor inside;
  /// (M) the cells each object's rows and columns cover: its region, or with clip_margin the
  /// part of it within the margin of the map. Row r, column c of object m is cell
  /// (computed[m].y0 + r, computed[m].x0 + c).
  std::vector<CellRegion> computed;
};

/// Throws std::invalid_argument when neither factor is given or the index vectors differ in
/// length from the regions.
AssembledMasks assemble_masks(const MaskAssemblyInput& input);

}  // namespace centermask
