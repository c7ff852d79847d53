// CenterMask-FCOS's target encoder; see centermask_fcos.h. Pure host code: it runs in the
// loader's worker threads.

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "centermask/modeling/fcos/fcos_assignment.h"
#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"

namespace centermask {

CellRegion CenterMaskFcosTargets::clipped_region(std::int64_t k) const {
  const CellRegion& r = object_region[static_cast<std::size_t>(k)];
  return {std::max(r.x0, 0), std::max(r.y0, 0), std::min(r.x1, mask_width),
          std::min(r.y1, mask_height)};
}

CenterMaskFcosTargets encode_centermask_fcos_targets(const std::vector<Instance>& instances,
                                                     int input_height, int input_width,
                                                     const CenterMaskFcosTargetOptions& options) {
  if (options.mask_stride < 1 || options.mask_stride > 8)
    throw std::invalid_argument(fmt::format(
        "CenterMask-FCOS targets: the mask stride must be 1 to 8, got {}", options.mask_stride));
  CenterMaskFcosTargets t;
  t.mask_stride = options.mask_stride;
  t.mask_height = input_height / options.mask_stride;
  t.mask_width = input_width / options.mask_stride;
  const float to_mask_cells = 1.0f / static_cast<float>(options.mask_stride);

  std::vector<BoxXYXY> boxes;
  std::vector<std::int32_t> classes;
  t.crop_start.push_back(0);
  for (const Instance& instance : instances) {
    if (static_cast<int>(boxes.size()) >= options.max_objects || instance.box.width() <= 0 ||
        instance.box.height() <= 0) {
      ++t.dropped;
      continue;
    }
    if (instance.class_index < 0 || instance.class_index >= options.num_classes)
      throw std::invalid_argument(
          fmt::format("CenterMask-FCOS targets: class index {} outside [0, {})",
                      instance.class_index, options.num_classes));
    boxes.push_back(instance.box);
    classes.push_back(instance.class_index);
    t.object_class.push_back(instance.class_index);
    // The same region rule as CenterMask's targets and as inference on a predicted box.
    const CellRegion region = box_cell_region(
        instance.box.center_x() * to_mask_cells, instance.box.center_y() * to_mask_cells,
        instance.box.width() * to_mask_cells, instance.box.height() * to_mask_cells);
    t.object_region.push_back(region);
    const CellRegion clipped = t.clipped_region(t.num_objects() - 1);
    const std::size_t crop = static_cast<std::size_t>(std::max(0, clipped.width())) *
                             static_cast<std::size_t>(std::max(0, clipped.height()));
    const std::size_t start = t.crop_pixels.size();
    t.crop_pixels.resize(start + crop, 0.0f);
    const bool has_mask = instance.has_mask && !instance.mask.empty();
    t.object_has_mask.push_back(has_mask ? 1 : 0);
    if (has_mask && crop > 0)
      accumulate_mask_coverage(instance.mask, options.mask_stride, clipped,
                               t.crop_pixels.data() + start, clipped.width());
    t.crop_start.push_back(static_cast<std::int64_t>(t.crop_pixels.size()));
  }

  const std::vector<FcosLevel> levels = fcos_levels(input_height, input_width);
  FcosAssignOptions assign;
  assign.center_sampling_radius = options.center_sampling_radius;
  t.fcos = assign_fcos_targets(levels, boxes, classes, assign);
  for (const FcosLevel& level : levels) t.strides.push_back(level.stride_px);
  return t;
}

std::unique_ptr<SampleTargets> CenterMaskFcosTargetEncoder::encode(
    const std::vector<Instance>& instances, int input_height, int input_width) const {
  auto encoded = std::make_unique<CenterMaskFcosSampleTargets>();
  encoded->targets = encode_centermask_fcos_targets(instances, input_height, input_width, options_);
  return encoded;
}

std::shared_ptr<const BatchTargets> CenterMaskFcosTargetEncoder::collate(
    const std::vector<std::unique_ptr<SampleTargets>>& samples) const {
  return collate_per_image<CenterMaskFcosTargets>(samples, "CenterMaskFcosTargetEncoder");
}

}  // namespace centermask
