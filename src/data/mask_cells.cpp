#include "centermask/data/mask_cells.h"

#include <cmath>
#include <cstdint>

namespace centermask {

CellRegion box_cell_region(float center_x, float center_y, float width, float height) {
  // Cell i (center i + 0.5) is inside [x0, x1) when x0 <= i + 0.5 < x1.
  auto range = [](float center, float extent, int* first, int* end) {
    const double lo = center - extent / 2.0, hi = center + extent / 2.0;
    *first = static_cast<int>(std::ceil(lo - 0.5));
    *end = static_cast<int>(std::ceil(hi - 0.5));
    if (*end <= *first) {  // thinner than a cell: the cell holding the center
      *first = static_cast<int>(std::floor(center));
      *end = *first + 1;
    }
  };
  CellRegion r;
  range(center_x, width, &r.x0, &r.x1);
  range(center_y, height, &r.y0, &r.y1);
  return r;
}

void accumulate_mask_coverage(const MaskPatch& mask, int stride, const CellRegion& region,
                              float* out, int out_row_stride) {
  const float per_pixel = 1.0f / static_cast<float>(stride * stride);
  for (int y = 0; y < mask.height; ++y) {
    const int cell_y = (mask.top + y) / stride;
    if (mask.top + y < 0 || cell_y < region.y0 || cell_y >= region.y1) continue;
    const std::uint8_t* row =
        mask.pixels.data() + static_cast<std::size_t>(y) * static_cast<std::size_t>(mask.width);
    float* out_row = out + static_cast<std::ptrdiff_t>(cell_y - region.y0) * out_row_stride;
    for (int x = 0; x < mask.width; ++x) {
      if (!row[x]) continue;
      const int cell_x = (mask.left + x) / stride;
      if (mask.left + x < 0 || cell_x < region.x0 || cell_x >= region.x1) continue;
      out_row[cell_x - region.x0] += per_pixel;
    }
  }
}

}  // namespace centermask
