#pragma once
// Boxes as ranges of map cells, and masks as per-cell coverage: the geometry that CenterMask
// and CenterMask-FCOS share for cropping ground-truth masks to a box and for placing an
// assembled mask (modeling/ops/mask_assembly.h) on the map.

#include "centermask/structures/instances.h"

namespace centermask {

/// The output cells a box covers, used both to crop ground truth and to place the assembled
/// local shape: cells whose centers lie inside the box, never fewer than one per side. The
/// range may extend past the map (the shape is resized to the whole range, then clipped).
struct CellRegion {
  int x0 = 0, y0 = 0;  ///< first cell
  int x1 = 0, y1 = 0;  ///< one past the last cell
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};
/// Box given by center and size in output cells.
CellRegion box_cell_region(float center_x, float center_y, float width, float height);

/// Adds a mask's coverage of the cells of `region` (clipped to the map by the caller) at
/// `stride` input pixels per cell, as the fraction of each cell's stride² pixels, into `out`
/// (row-major from the region's top-left cell, `out_row_stride` floats per row): the crops
/// the mask losses compare with.
void accumulate_mask_coverage(const MaskPatch& mask, int stride, const CellRegion& region,
                              float* out, int out_row_stride);

}  // namespace centermask
