#include "centermask/modeling/methods/centermask/centermask_targets.h"

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

CellRegion CenterMaskTargets::clipped_region(int k) const {
  const CellRegion& r = mask_region[static_cast<std::size_t>(k)];
  return {std::max(r.x0, 0), std::max(r.y0, 0), std::min(r.x1, mask_width),
          std::min(r.y1, mask_height)};
}

namespace {

// One object's dense box targets (TTFNet, SPEC-FACTS §1): an elliptical Gaussian of integer
// radii alpha·(w/2, h/2) at the integer center, normalised to sum 1, written over whatever is
// there (callers draw larger objects first, so the smaller object wins where two overlap).
void draw_dense_box(CenterMaskTargets& t, int cx_int, int cy_int, float cx, float cy, float w,
                    float h, double alpha) {
  const int rx = static_cast<int>(alpha * w / 2), ry = static_cast<int>(alpha * h / 2);
  const double sx = (2 * rx + 1) / 6.0, sy = (2 * ry + 1) / 6.0;
  const int x_lo = std::max(0, cx_int - rx), x_hi = std::min(t.width - 1, cx_int + rx);
  const int y_lo = std::max(0, cy_int - ry), y_hi = std::min(t.height - 1, cy_int + ry);
  double total = 0;
  for (int y = y_lo; y <= y_hi; ++y)
    for (int x = x_lo; x <= x_hi; ++x) {
      const double dx = x - cx_int, dy = y - cy_int;
      total += std::exp(-dx * dx / (2 * sx * sx) - dy * dy / (2 * sy * sy));
    }
  const std::size_t cells = static_cast<std::size_t>(t.height) * static_cast<std::size_t>(t.width);
  for (int y = y_lo; y <= y_hi; ++y)
    for (int x = x_lo; x <= x_hi; ++x) {
      const double dx = x - cx_int, dy = y - cy_int;
      const double g = std::exp(-dx * dx / (2 * sx * sx) - dy * dy / (2 * sy * sy));
      const std::size_t i = static_cast<std::size_t>(y) * static_cast<std::size_t>(t.width) +
                            static_cast<std::size_t>(x);
      t.box_weight[i] = static_cast<float>(g / total);
      t.box_target[i] = cx - static_cast<float>(x);
      t.box_target[cells + i] = cy - static_cast<float>(y);
      t.box_target[2 * cells + i] = w;
      t.box_target[3 * cells + i] = h;
    }
}

}  // namespace

CenterMaskTargets encode_centermask_targets(const std::vector<Instance>& instances,
                                            int input_height, int input_width,
                                            const CenterMaskTargetOptions& options) {
  if (options.stride <= 0 || options.num_classes <= 0 || options.max_objects < 0)
    throw std::invalid_argument("encode_centermask_targets: stride, num_classes must be > 0");
  if (options.mask_stride <= 0 || options.stride % options.mask_stride != 0)
    throw std::invalid_argument(
        "encode_centermask_targets: mask_stride must be a positive divisor of stride");
  CenterMaskTargets t;
  t.num_classes = options.num_classes;
  t.height = input_height / options.stride;
  t.width = input_width / options.stride;
  t.mask_stride = options.mask_stride;
  // The mask map covers the same input area as the output map (a whole number of its cells).
  const int mask_per_cell = options.stride / options.mask_stride;
  t.mask_height = t.height * mask_per_cell;
  t.mask_width = t.width * mask_per_cell;
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
  t.radius.assign(k_max, 0);
  t.source_index.assign(k_max, -1);
  t.mask_region.assign(k_max, CellRegion{});
  t.mask_start.assign(k_max + 1, 0);
  const std::size_t mask_cells =
      static_cast<std::size_t>(t.mask_height) * static_cast<std::size_t>(t.mask_width);
  if (options.class_union_masks)
    t.class_masks.assign(mask_cells * static_cast<std::size_t>(options.num_classes), 0.0f);
  if (options.dense_box) {
    t.box_target.assign(4 * cells, 0.0f);
    t.box_weight.assign(cells, 0.0f);
  }
  if (t.height == 0 || t.width == 0) return t;

  struct DenseBox {
    int cx_int, cy_int;
    float cx, cy, w, h;
  };
  std::vector<DenseBox> dense_boxes;
  const float inv_stride = 1.0f / static_cast<float>(options.stride);
  const float mask_scale = static_cast<float>(mask_per_cell);
  for (std::size_t source = 0; source < instances.size(); ++source) {
    const Instance& instance = instances[source];
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
    t.radius[k] = radius;
    t.source_index[k] = static_cast<std::int32_t>(source);
    if (options.dense_box) dense_boxes.push_back({cx_int, cy_int, cx, cy, w, h});
    t.mask_region[k] =
        box_cell_region(cx * mask_scale, cy * mask_scale, w * mask_scale, h * mask_scale);
    const CellRegion clipped = t.clipped_region(static_cast<int>(k));
    const std::size_t crop =
        static_cast<std::size_t>(clipped.width()) * static_cast<std::size_t>(clipped.height());
    t.mask_start[k + 1] = t.mask_start[k] + static_cast<std::int64_t>(crop);
    const std::size_t crop_start = t.mask_pixels.size();
    t.mask_pixels.resize(crop_start + crop, 0.0f);
    if (instance.has_mask && !instance.mask.empty()) {
      t.has_mask[k] = 1;
      accumulate_mask_coverage(instance.mask, options.mask_stride, clipped,
                               t.mask_pixels.data() + crop_start, clipped.width());
    }
  }
  // Largest first, so that a smaller object overwrites the cells it shares with a larger one.
  std::stable_sort(dense_boxes.begin(), dense_boxes.end(),
                   [](const DenseBox& a, const DenseBox& b) { return a.w * a.h > b.w * b.h; });
  for (const DenseBox& b : dense_boxes)
    draw_dense_box(t, b.cx_int, b.cy_int, b.cx, b.cy, b.w, b.h, options.dense_box_alpha);
  for (std::size_t k = static_cast<std::size_t>(t.num_objects); k < k_max; ++k)
    t.mask_start[k + 1] = t.mask_start[k];

  if (options.class_union_masks) {
    // The union of a class's masks, as coverage of each cell: rasterise the union at input
    // resolution (only where that class has masks), then count per cell.
    const CellRegion whole{0, 0, t.mask_width, t.mask_height};
    std::vector<std::uint8_t> union_bitmap;
    for (int c = 0; c < options.num_classes; ++c) {
      bool any = false;
      for (const Instance& instance : instances)
        any |= instance.class_index == c && instance.has_mask && !instance.mask.empty();
      if (!any) continue;
      const int in_w = t.mask_width * options.mask_stride;
      const int in_h = t.mask_height * options.mask_stride;
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
      accumulate_mask_coverage(union_patch, options.mask_stride, whole,
                               t.class_masks.data() + static_cast<std::size_t>(c) * mask_cells,
                               t.mask_width);
      union_bitmap = std::move(union_patch.pixels);
    }
  }
  return t;
}

CenterMaskBatchTargets collate_centermask_targets(
    const std::vector<const CenterMaskTargets*>& targets) {
  CenterMaskBatchTargets batch;
  if (targets.empty()) return batch;
  const CenterMaskTargets& first = *targets.front();
  batch.size = static_cast<int>(targets.size());
  batch.num_classes = first.num_classes;
  batch.output_height = first.height;
  batch.output_width = first.width;
  batch.mask_height = first.mask_height;
  batch.mask_width = first.mask_width;
  batch.max_objects = first.max_objects;
  const std::size_t n = targets.size();
  const std::size_t k = static_cast<std::size_t>(first.max_objects);
  const std::size_t map = first.heatmap.size();
  batch.heatmap.resize(n * map);
  batch.center_index.resize(n * k);
  batch.offset.resize(n * k * 2);
  batch.size_cells.resize(n * k * 2);
  batch.class_id.resize(n * k);
  batch.valid.resize(n * k);
  batch.has_mask.resize(n * k);
  batch.radius.resize(n * k);
  batch.mask_region.resize(n * k);
  batch.box_target.resize(n * first.box_target.size());
  batch.box_weight.resize(n * first.box_weight.size());
  batch.mask_start.assign(n * k + 1, 0);
  if (!first.class_masks.empty()) batch.class_masks.resize(n * first.class_masks.size());
  std::size_t total_pixels = 0;
  for (const CenterMaskTargets* t : targets) total_pixels += t->mask_pixels.size();
  batch.mask_pixels.resize(total_pixels);
  std::size_t pixel_base = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const CenterMaskTargets& t = *targets[i];
    if (t.height != first.height || t.width != first.width || t.num_classes != first.num_classes ||
        t.max_objects != first.max_objects || t.mask_height != first.mask_height ||
        t.mask_width != first.mask_width || t.box_weight.size() != first.box_weight.size() ||
        t.class_masks.size() != first.class_masks.size())
      throw std::invalid_argument(
          "collate_centermask_targets: the images' targets differ in size, classes or options");
    std::copy(t.heatmap.begin(), t.heatmap.end(),
              batch.heatmap.begin() + static_cast<std::ptrdiff_t>(i * map));
    std::copy(t.center_index.begin(), t.center_index.end(),
              batch.center_index.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.offset.begin(), t.offset.end(),
              batch.offset.begin() + static_cast<std::ptrdiff_t>(i * k * 2));
    std::copy(t.size.begin(), t.size.end(),
              batch.size_cells.begin() + static_cast<std::ptrdiff_t>(i * k * 2));
    std::copy(t.class_id.begin(), t.class_id.end(),
              batch.class_id.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.valid.begin(), t.valid.end(),
              batch.valid.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.has_mask.begin(), t.has_mask.end(),
              batch.has_mask.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.radius.begin(), t.radius.end(),
              batch.radius.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.mask_region.begin(), t.mask_region.end(),
              batch.mask_region.begin() + static_cast<std::ptrdiff_t>(i * k));
    std::copy(t.box_target.begin(), t.box_target.end(),
              batch.box_target.begin() + static_cast<std::ptrdiff_t>(i * t.box_target.size()));
    std::copy(t.box_weight.begin(), t.box_weight.end(),
              batch.box_weight.begin() + static_cast<std::ptrdiff_t>(i * t.box_weight.size()));
    std::copy(t.mask_pixels.begin(), t.mask_pixels.end(),
              batch.mask_pixels.begin() + static_cast<std::ptrdiff_t>(pixel_base));
    for (std::size_t j = 0; j < k; ++j)
      batch.mask_start[i * k + j + 1] = static_cast<std::int64_t>(pixel_base) + t.mask_start[j + 1];
    pixel_base += t.mask_pixels.size();
    if (!t.class_masks.empty())
      std::copy(t.class_masks.begin(), t.class_masks.end(),
                batch.class_masks.begin() + static_cast<std::ptrdiff_t>(i * t.class_masks.size()));
  }
  return batch;
}

std::unique_ptr<SampleTargets> CenterMaskTargetEncoder::encode(
    const std::vector<Instance>& instances, int input_height, int input_width) const {
  auto encoded = std::make_unique<CenterMaskSampleTargets>();
  encoded->targets = encode_centermask_targets(instances, input_height, input_width, options_);
  return encoded;
}

std::shared_ptr<const BatchTargets> CenterMaskTargetEncoder::collate(
    const std::vector<std::unique_ptr<SampleTargets>>& samples) const {
  std::vector<const CenterMaskTargets*> targets;
  for (const auto& sample : samples) {
    const auto* typed = dynamic_cast<const CenterMaskSampleTargets*>(sample.get());
    if (typed == nullptr)
      throw std::logic_error("CenterMaskTargetEncoder::collate: another method's targets");
    targets.push_back(&typed->targets);
  }
  return std::make_shared<CenterMaskBatchTargets>(collate_centermask_targets(targets));
}

}  // namespace centermask
