// PolarMask's target encoder; see polarmask.h. Pure host code: it runs in the loader's
// worker threads.

#include <fmt/format.h>

#include <stdexcept>

#include "centermask/modeling/fcos/fcos_assignment.h"
#include "centermask/modeling/methods/polarmask/polar_rays.h"
#include "centermask/modeling/methods/polarmask/polarmask.h"

namespace centermask {

namespace {

// The reference's filter (coco_seg.py): an annotation with a tiny box or fewer than 15 mask
// pixels cannot give a polygon worth learning.
bool usable_for_polygon(const Instance& instance) {
  if (!instance.has_mask || instance.mask.empty()) return false;
  if (instance.box.width() < 10 && instance.box.height() < 10) return false;
  return instance.mask.area() >= 15;
}

}  // namespace

PolarMaskTargets encode_polarmask_targets(const std::vector<Instance>& instances, int input_height,
                                          int input_width, const PolarMaskTargetOptions& options) {
  if (options.num_rays < 1 || 360 % options.num_rays != 0)
    throw std::invalid_argument(
        fmt::format("PolarMask targets: the ray count must divide 360, got {}", options.num_rays));
  PolarMaskTargets targets;
  targets.num_rays = options.num_rays;

  std::vector<BoxXYXY> boxes;
  std::vector<std::int32_t> classes;
  std::vector<std::array<float, 2>> centers;
  std::vector<std::vector<cv::Point>> contours;
  for (const Instance& instance : instances) {
    if (static_cast<int>(boxes.size()) >= options.max_objects || !usable_for_polygon(instance)) {
      ++targets.dropped;
      continue;
    }
    if (instance.class_index < 0 || instance.class_index >= options.num_classes)
      throw std::invalid_argument(fmt::format("PolarMask targets: class index {} outside [0, {})",
                                              instance.class_index, options.num_classes));
    std::vector<cv::Point> contour = largest_contour(instance.mask);
    if (contour.empty()) {
      ++targets.dropped;
      continue;
    }
    if (options.sampling_center == PolarMaskSamplingCenter::kMassCenter) {
      const cv::Point center = contour_mass_center(contour);
      centers.push_back({static_cast<float>(center.x), static_cast<float>(center.y)});
    } else {
      centers.push_back({instance.box.center_x(), instance.box.center_y()});
    }
    boxes.push_back(instance.box);
    classes.push_back(instance.class_index);
    contours.push_back(std::move(contour));
  }

  const std::vector<FcosLevel> levels = fcos_levels(input_height, input_width);
  FcosAssignOptions assign_options;
  assign_options.center_sampling_radius = options.center_sampling_radius;
  const FcosTargets assigned = assign_fcos_targets(levels, boxes, classes, assign_options, centers);

  targets.level_begin = assigned.level_begin;
  for (const FcosLevel& level : levels) targets.strides.push_back(level.stride_px);
  targets.label = assigned.label;
  targets.ltrb = assigned.ltrb;
  targets.num_positive = assigned.num_positive;
  const auto locations = static_cast<std::size_t>(assigned.num_locations());
  const auto n = static_cast<std::size_t>(options.num_rays);
  targets.rays.assign(locations * n, 0.0f);
  targets.centerness.assign(locations, 0.0f);
  for (std::size_t level = 0; level < levels.size(); ++level) {
    const int stride = levels[level].stride_px;
    for (std::int64_t i = assigned.level_begin[level]; i < assigned.level_begin[level + 1]; ++i) {
      const std::int64_t object = assigned.object[static_cast<std::size_t>(i)];
      if (object < 0) continue;
      const std::int64_t local = i - assigned.level_begin[level];
      const auto x = static_cast<float>((local % levels[level].width) * stride + stride / 2);
      const auto y = static_cast<float>((local / levels[level].width) * stride + stride / 2);
      const std::vector<float> rays =
          polar_ray_lengths(contours[static_cast<std::size_t>(object)], x, y, options.num_rays);
      std::copy(
          rays.begin(), rays.end(),
          targets.rays.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(i) * n));
      targets.centerness[static_cast<std::size_t>(i)] =
          options.centerness == PolarMaskCenterness::kPolar
              ? polar_centerness(rays)
              : assigned.centerness[static_cast<std::size_t>(i)];
    }
  }
  return targets;
}

std::unique_ptr<SampleTargets> PolarMaskTargetEncoder::encode(
    const std::vector<Instance>& instances, int input_height, int input_width) const {
  auto encoded = std::make_unique<PolarMaskSampleTargets>();
  encoded->targets = encode_polarmask_targets(instances, input_height, input_width, options_);
  return encoded;
}

std::shared_ptr<const BatchTargets> PolarMaskTargetEncoder::collate(
    const std::vector<std::unique_ptr<SampleTargets>>& samples) const {
  return collate_per_image<PolarMaskTargets>(samples, "PolarMaskTargetEncoder");
}

}  // namespace centermask
