// CenterMask-FCOS's decoding and its perfect outputs; see centermask_fcos.h.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/mask_assembly.h"
#include "modeling/ops/mask_paste.h"
#include "modeling/ops/perfect_masks.h"

namespace centermask {

namespace {

// The first location of each level in the all-levels order, from the outputs' map sizes.
std::vector<std::int64_t> level_begins(const FcosHeadOutputs& fcos) {
  std::vector<std::int64_t> begin = {0};
  for (const torch::Tensor& level : fcos.class_logits)
    begin.push_back(begin.back() + level.size(2) * level.size(3));
  return begin;
}

}  // namespace

std::vector<std::vector<Instance>> CenterMaskFcosImpl::predict(
    const CenterMaskFcosOutputs& outputs, const std::vector<ImageInfo>& infos,
    const CenterMaskFcosInferenceOptions& options) const {
  torch::NoGradGuard no_grad;
  const std::vector<std::vector<FcosDetection>> detections =
      decode_detections(outputs.fcos, outputs.strides, options,
                        FcosScore::kSqrtClassTimesCenterness, infos.size(), "CenterMask-FCOS");
  const ScopedStage stage("assembly");
  const std::vector<std::int64_t> begin = level_begins(outputs.fcos);
  const int mask_stride = options_.saliency_stride;
  const float to_mask_cells = 1.0f / static_cast<float>(mask_stride);

  // Every kept detection of the batch assembled at once, over its predicted box's cells.
  std::vector<const FcosDetection*> kept;
  FcosMaskSamples samples;
  for (std::size_t b = 0; b < detections.size(); ++b)
    for (const FcosDetection& d : detections[b]) {
      if (d.score < options.score_threshold) continue;
      kept.push_back(&d);
      samples.image.push_back(static_cast<std::int64_t>(b));
      samples.location.push_back(begin[static_cast<std::size_t>(d.level)] + d.location);
      samples.region.push_back(box_cell_region(d.box.center_x() * to_mask_cells,
                                               d.box.center_y() * to_mask_cells,
                                               std::max(0.0f, d.box.width()) * to_mask_cells,
                                               std::max(0.0f, d.box.height()) * to_mask_cells));
      samples.saliency_class.push_back(d.class_index);
    }
  std::vector<std::vector<Instance>> results(infos.size());
  if (kept.empty()) return results;
  AssembledMasks assembled = assemble(outputs, samples, /*clip_margin=*/1);
  const torch::Tensor probability =
      assembled.probability.to(torch::kCPU, torch::kFloat32).contiguous();
  const int rows = static_cast<int>(probability.size(1)),
            cols = static_cast<int>(probability.size(2));
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const FcosDetection& d = *kept[i];
    const auto b = static_cast<std::size_t>(samples.image[i]);
    const ImageInfo& info = infos[b];
    const CellRegion& region = assembled.computed[i];
    // The object's probability over its region's cells: a view into the assembled block.
    // Empty for a region wholly off the map.
    const cv::Mat object_probability =
        region.width() > 0 && region.height() > 0
            ? cv::Mat(rows, cols, CV_32F,
                      probability.data_ptr<float>() + static_cast<std::int64_t>(i) * rows * cols)(
                  cv::Rect(0, 0, region.width(), region.height()))
            : cv::Mat(region.height(), region.width(), CV_32F);
    Instance instance;
    instance.box = cells_to_original(d.box.x0, d.box.y0, d.box.x1, d.box.y1, 1, info);
    instance.class_index = d.class_index;
    instance.score = d.score;
    if (options.mask_quality_scoring)
      instance.score *= mask_quality(object_probability, options.mask_threshold);
    instance.has_mask = true;
    instance.mask =
        mask_in_original(object_probability, region, mask_stride, info, options.mask_threshold);
    results[b].push_back(std::move(instance));
  }
  if (options.mask_quality_scoring)
    for (std::vector<Instance>& image : results)
      std::stable_sort(image.begin(), image.end(),
                       [](const Instance& a, const Instance& c) { return a.score > c.score; });
  return results;
}

std::vector<std::vector<Instance>> CenterMaskFcosImpl::detect(const MethodOutputs& outputs,
                                                              const std::vector<ImageInfo>& infos,
                                                              const PredictOptions& options) const {
  CenterMaskFcosInferenceOptions decode;
  apply_predict_options(options, &decode);
  decode.mask_threshold = options.mask_threshold;
  decode.mask_quality_scoring = options.mask_quality_scoring;
  return predict(method_cast<CenterMaskFcosMethodOutputs>(outputs, "CenterMask-FCOS").outputs,
                 infos, decode);
}

CenterMaskFcosOutputs CenterMaskFcosImpl::perfect_outputs(
    const std::vector<std::vector<Instance>>& instances, int input_height, int input_width) const {
  const auto batch = static_cast<std::int64_t>(instances.size());
  const std::int64_t classes = options_.num_classes;
  const int s = options_.shape_size, mask_stride = options_.saliency_stride;
  const std::vector<FcosLevel> levels = fcos_levels(input_height, input_width);

  std::vector<CenterMaskFcosTargets> targets;
  std::vector<FcosAssignmentView> views;
  for (const std::vector<Instance>& image : instances)
    targets.push_back(
        encode_centermask_fcos_targets(image, input_height, input_width, target_options(1 << 20)));
  for (const CenterMaskFcosTargets& t : targets) views.push_back(FcosAssignmentView::of(t.fcos));
  CenterMaskFcosOutputs out;
  out.mask_height = input_height / mask_stride;
  out.mask_width = input_width / mask_stride;
  out.fcos = perfect_fcos_outputs(views, levels, static_cast<int>(classes), /*min_distance=*/1e-6f,
                                  &out.strides);

  if (options_.has_shape_head()) {
    // Each positive's shape: its object's mask over the ground-truth box, resampled to S × S
    // (computed once per object).
    auto given = std::make_shared<CenterMaskFcosOutputs::GivenShapes>();
    std::vector<float> shapes;
    for (std::int64_t b = 0; b < batch; ++b) {
      const CenterMaskFcosTargets& t = targets[static_cast<std::size_t>(b)];
      // The encoder keeps objects in order, skipping those with an empty box.
      std::vector<const Instance*> kept;
      for (const Instance& instance : instances[static_cast<std::size_t>(b)])
        if (instance.box.width() > 0 && instance.box.height() > 0) kept.push_back(&instance);
      std::vector<cv::Mat> object_shape(static_cast<std::size_t>(t.num_objects()));
      for (std::int64_t i = 0; i < t.fcos.num_locations(); ++i) {
        const std::int64_t object = t.fcos.object[static_cast<std::size_t>(i)];
        if (object < 0 || !t.object_has_mask[static_cast<std::size_t>(object)]) continue;
        cv::Mat& shape = object_shape[static_cast<std::size_t>(object)];
        if (shape.empty())
          shape =
              shape_from_mask(kept[static_cast<std::size_t>(object)]->mask,
                              t.object_region[static_cast<std::size_t>(object)], mask_stride, s);
        given->key.push_back(b * t.fcos.num_locations() + i);
        shapes.insert(shapes.end(), shape.begin<float>(), shape.end<float>());
      }
    }
    const auto m = static_cast<std::int64_t>(given->key.size());
    given->logits = m == 0
                        ? torch::zeros({0, s, s})
                        : torch::logit(torch::from_blob(shapes.data(), {m, s, s}, torch::kFloat32)
                                           .clamp(1e-4, 1 - 1e-4));
    out.given_shapes = given;
  }
  if (options_.has_saliency_head()) {
    const std::int64_t channels = options_.class_specific_saliency ? classes : 1;
    std::vector<float> saliency;
    for (const std::vector<Instance>& image : instances) {
      const std::vector<float> map =
          perfect_saliency(image, input_height, input_width, mask_stride, static_cast<int>(classes),
                           options_.class_specific_saliency, options_.has_shape_head());
      saliency.insert(saliency.end(), map.begin(), map.end());
    }
    out.saliency_logits = torch::logit(
        torch::from_blob(saliency.data(), {batch, channels, out.mask_height, out.mask_width},
                         torch::kFloat32)
            .clamp(1e-4, 1 - 1e-4));
  }
  return out;
}

std::shared_ptr<const MethodOutputs> CenterMaskFcosImpl::perfect_network_outputs(
    const std::vector<std::vector<Instance>>& instances, int input_height, int input_width) const {
  return std::make_shared<CenterMaskFcosMethodOutputs>(
      perfect_outputs(instances, input_height, input_width));
}

}  // namespace centermask
