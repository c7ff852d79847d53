#include "centermask/data/centermask_targets.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace centermask {

double gaussian_radius(double height, double width, double min_overlap) {
  // Kept exactly as CenterNet computes it (including its well-known deviations from the
  // CornerNet derivation), so that our heatmaps match models trained with it.
  const double a1 = 1, b1 = height + width;
  const double c1 = width * height * (1 - min_overlap) / (1 + min_overlap);
  const double r1 = (b1 + std::sqrt(b1 * b1 - 4 * a1 * c1)) / 2;
  const double a2 = 4, b2 = 2 * (height + width);
  const double c2 = (1 - min_overlap) * width * height;
  const double r2 = (b2 + std::sqrt(b2 * b2 - 4 * a2 * c2)) / 2;
  const double a3 = 4 * min_overlap, b3 = -2 * min_overlap * (height + width);
  const double c3 = (min_overlap - 1) * width * height;
  const double r3 = (b3 + std::sqrt(b3 * b3 - 4 * a3 * c3)) / 2;
  return std::min({r1, r2, r3});
}

void draw_gaussian_max(float* map, int height, int width, int center_x, int center_y, int radius) {
  const int diameter = 2 * radius + 1;
  const double sigma = diameter / 6.0;
  const int left = std::min(center_x, radius), right = std::min(width - center_x, radius + 1);
  const int top = std::min(center_y, radius), bottom = std::min(height - center_y, radius + 1);
  const double cutoff = std::numeric_limits<double>::epsilon();  // relative to the peak 1
  for (int dy = -top; dy < bottom; ++dy) {
    float* row = map + static_cast<std::ptrdiff_t>(center_y + dy) * width + center_x;
    for (int dx = -left; dx < right; ++dx) {
      double g = std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
      if (g < cutoff) g = 0;
      row[dx] = std::max(row[dx], static_cast<float>(g));
    }
  }
}

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

CellRegion CenterMaskTargets::clipped_region(int k) const {
  const CellRegion& r = mask_region[static_cast<std::size_t>(k)];
  return {std::max(r.x0, 0), std::max(r.y0, 0), std::min(r.x1, width), std::min(r.y1, height)};
}

namespace {

// Adds a mask patch's coverage into an output-resolution map restricted to `region`
// (clipped), as the fraction of each cell's stride² input pixels.
void accumulate_coverage(const MaskPatch& mask, int stride, const CellRegion& region, float* out,
                         int out_row_stride) {
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

}  // namespace

CenterMaskTargets encode_centermask_targets(const std::vector<Instance>& instances,
                                            int input_height, int input_width,
                                            const CenterMaskTargetOptions& options) {
  if (options.stride <= 0 || options.num_classes <= 0 || options.max_objects < 0)
    throw std::invalid_argument("encode_centermask_targets: stride, num_classes must be > 0");
  CenterMaskTargets t;
  t.num_classes = options.num_classes;
  t.height = input_height / options.stride;
  t.width = input_width / options.stride;
  t.max_objects = options.max_objects;
  const std::size_t cells = static_cast<std::size_t>(t.height) * static_cast<std::size_t>(t.width);
  const std::size_t k_max = static_cast<std::size_t>(options.max_objects);
  t.heatmap.assign(cells * static_cast<std::size_t>(options.num_classes), 0.0f);
  t.center_index.assign(k_max, 0);
  t.offset.assign(2 * k_max, 0.0f);
  t.size.assign(2 * k_max, 0.0f);
  t.class_id.assign(k_max, 0);
  t.valid.assign(k_max, 0);
  t.has_mask.assign(k_max, 0);
  t.mask_region.assign(k_max, CellRegion{});
  t.mask_start.assign(k_max + 1, 0);
  if (options.class_union_masks)
    t.class_masks.assign(cells * static_cast<std::size_t>(options.num_classes), 0.0f);
  if (t.height == 0 || t.width == 0) return t;

  const float inv_stride = 1.0f / static_cast<float>(options.stride);
  for (const Instance& instance : instances) {
    if (instance.class_index < 0 || instance.class_index >= options.num_classes)
      throw std::invalid_argument("encode_centermask_targets: class index out of range");
    // Box at output resolution, clipped to the map (as CenterNet clips).
    const float x0 = std::clamp(instance.box.x0 * inv_stride, 0.0f, static_cast<float>(t.width));
    const float x1 = std::clamp(instance.box.x1 * inv_stride, 0.0f, static_cast<float>(t.width));
    const float y0 = std::clamp(instance.box.y0 * inv_stride, 0.0f, static_cast<float>(t.height));
    const float y1 = std::clamp(instance.box.y1 * inv_stride, 0.0f, static_cast<float>(t.height));
    const float w = x1 - x0, h = y1 - y0;
    if (!(w > 0 && h > 0)) {
      ++t.dropped_too_small;
      continue;
    }
    if (t.num_objects >= options.max_objects) {
      ++t.dropped_over_max;
      continue;
    }
    const float cx = 0.5f * (x0 + x1), cy = 0.5f * (y0 + y1);
    const int cx_int = std::min(static_cast<int>(cx), t.width - 1);
    const int cy_int = std::min(static_cast<int>(cy), t.height - 1);
    const int radius = std::max(
        0, static_cast<int>(gaussian_radius(std::ceil(h), std::ceil(w), options.min_overlap)));
    draw_gaussian_max(t.heatmap.data() + static_cast<std::size_t>(instance.class_index) * cells,
                      t.height, t.width, cx_int, cy_int, radius);

    const std::size_t k = static_cast<std::size_t>(t.num_objects++);
    t.center_index[k] = static_cast<std::int64_t>(cy_int) * t.width + cx_int;
    t.offset[2 * k] = cx - static_cast<float>(cx_int);
    t.offset[2 * k + 1] = cy - static_cast<float>(cy_int);
    t.size[2 * k] = w;
    t.size[2 * k + 1] = h;
    t.class_id[k] = instance.class_index;
    t.valid[k] = 1;
    t.mask_region[k] = box_cell_region(cx, cy, w, h);
    const CellRegion clipped = t.clipped_region(static_cast<int>(k));
    const std::size_t crop =
        static_cast<std::size_t>(clipped.width()) * static_cast<std::size_t>(clipped.height());
    t.mask_start[k + 1] = t.mask_start[k] + static_cast<std::int64_t>(crop);
    const std::size_t crop_start = t.mask_pixels.size();
    t.mask_pixels.resize(crop_start + crop, 0.0f);
    if (instance.has_mask && !instance.mask.empty()) {
      t.has_mask[k] = 1;
      accumulate_coverage(instance.mask, options.stride, clipped, t.mask_pixels.data() + crop_start,
                          clipped.width());
    }
  }
  for (std::size_t k = static_cast<std::size_t>(t.num_objects); k < k_max; ++k)
    t.mask_start[k + 1] = t.mask_start[k];

  if (options.class_union_masks) {
    // The union of a class's masks, as coverage of each cell: rasterise the union at input
    // resolution (only where that class has masks), then count per cell.
    const CellRegion whole{0, 0, t.width, t.height};
    std::vector<std::uint8_t> union_bitmap;
    for (int c = 0; c < options.num_classes; ++c) {
      bool any = false;
      for (const Instance& instance : instances)
        any |= instance.class_index == c && instance.has_mask && !instance.mask.empty();
      if (!any) continue;
      const int in_w = t.width * options.stride, in_h = t.height * options.stride;
      union_bitmap.assign(static_cast<std::size_t>(in_w) * static_cast<std::size_t>(in_h), 0);
      for (const Instance& instance : instances) {
        if (instance.class_index != c || !instance.has_mask) continue;
        const MaskPatch& m = instance.mask;
        for (int y = std::max(0, -m.top); y < m.height && m.top + y < in_h; ++y)
          for (int x = std::max(0, -m.left); x < m.width && m.left + x < in_w; ++x)
            if (m.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(m.width) +
                         static_cast<std::size_t>(x)])
              union_bitmap[static_cast<std::size_t>(m.top + y) * static_cast<std::size_t>(in_w) +
                           static_cast<std::size_t>(m.left + x)] = 1;
      }
      MaskPatch union_patch{0, 0, in_w, in_h, std::move(union_bitmap)};
      accumulate_coverage(union_patch, options.stride, whole,
                          t.class_masks.data() + static_cast<std::size_t>(c) * cells, t.width);
      union_bitmap = std::move(union_patch.pixels);
    }
  }
  return t;
}

}  // namespace centermask
