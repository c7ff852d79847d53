// PolarMask's decoding and its perfect outputs; see polarmask.h.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "centermask/modeling/methods/polarmask/polar_rays.h"
#include "centermask/modeling/methods/polarmask/polarmask.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/mask_paste.h"

namespace centermask {

std::vector<std::vector<Instance>> PolarMaskImpl::predict(
    const PolarMaskOutputs& outputs, const std::vector<ImageInfo>& infos,
    const PolarMaskInferenceOptions& options) const {
  torch::NoGradGuard no_grad;
  const std::vector<std::vector<FcosDetection>> detections =
      decode_detections(outputs.fcos, outputs.strides, options,
                        FcosScore::kClassTimesCenternessPlusHalf, infos.size(), "PolarMask");
  const ScopedStage stage("assembly");  // rays → polygons → masks in original pixels
  std::vector<torch::Tensor> rays;      // per level (N, n, H, W) on the host
  for (const torch::Tensor& level : outputs.rays)
    rays.push_back(level.to(torch::kCPU, torch::kFloat32).contiguous());
  const int n = options_.num_rays;

  std::vector<std::vector<Instance>> results(infos.size());
  for (std::size_t b = 0; b < infos.size(); ++b) {
    const ImageInfo& info = infos[b];
    for (const FcosDetection& d : detections[b]) {
      if (d.score < options.score_threshold) continue;
      const torch::Tensor& level_rays = rays[static_cast<std::size_t>(d.level)];
      const std::int64_t h = level_rays.size(2), w = level_rays.size(3);
      const int stride = outputs.strides[static_cast<std::size_t>(d.level)];
      const float* data = level_rays.data_ptr<float>() + static_cast<std::int64_t>(b) * n * h * w;
      std::vector<float> lengths(static_cast<std::size_t>(n));
      for (int k = 0; k < n; ++k)
        lengths[static_cast<std::size_t>(k)] =
            data[static_cast<std::int64_t>(k) * h * w + d.location] * static_cast<float>(stride);
      const auto x = static_cast<float>((d.location % w) * stride + stride / 2);
      const auto y = static_cast<float>((d.location / w) * stride + stride / 2);
      std::vector<cv::Point2f> polygon = polygon_from_rays(x, y, lengths);
      for (cv::Point2f& p : polygon) {
        // Clamped to the input as the reference, then into the original image's pixels.
        p.x = std::clamp(p.x, 0.0f, static_cast<float>(info.input_width - 1));
        p.y = std::clamp(p.y, 0.0f, static_cast<float>(info.input_height - 1));
        const Point2 q = info.input_to_original.apply({p.x, p.y});
        p = {static_cast<float>(q.x), static_cast<float>(q.y)};
      }
      Instance instance;
      instance.box = cells_to_original(d.box.x0, d.box.y0, d.box.x1, d.box.y1, 1, info);
      instance.class_index = d.class_index;
      instance.score = d.score;
      instance.has_mask = true;
      instance.mask = fill_polygon(polygon, info.original_height, info.original_width);
      results[b].push_back(std::move(instance));
    }
  }
  return results;
}

std::vector<std::vector<Instance>> PolarMaskImpl::detect(const MethodOutputs& outputs,
                                                         const std::vector<ImageInfo>& infos,
                                                         const PredictOptions& options) const {
  PolarMaskInferenceOptions decode;
  apply_predict_options(options, &decode);
  return predict(method_cast<PolarMaskMethodOutputs>(outputs, "PolarMask").outputs, infos, decode);
}

PolarMaskOutputs PolarMaskImpl::perfect_outputs(const std::vector<std::vector<Instance>>& instances,
                                                int input_height, int input_width) const {
  const PolarMaskTargetOptions target_opts = target_options(1 << 20);
  const auto batch = static_cast<std::int64_t>(instances.size());
  const std::int64_t n = options_.num_rays;
  std::vector<PolarMaskTargets> targets;
  std::vector<FcosAssignmentView> views;
  for (const std::vector<Instance>& image : instances)
    targets.push_back(encode_polarmask_targets(image, input_height, input_width, target_opts));
  for (const PolarMaskTargets& t : targets) views.push_back(FcosAssignmentView::of(t));
  const std::vector<FcosLevel> levels = fcos_levels(input_height, input_width);
  PolarMaskOutputs out;
  out.fcos =
      perfect_fcos_outputs(views, levels, options_.num_classes, /*min_distance=*/0, &out.strides);
  // Each positive's rays, in strides (at least 1e-6: the polar IoU divides by them).
  for (std::size_t li = 0; li < levels.size(); ++li) {
    const std::int64_t h = levels[li].height, w = levels[li].width;
    const auto stride = static_cast<float>(levels[li].stride_px);
    torch::Tensor rays = torch::ones({batch, n, h, w});
    auto rays_a = rays.accessor<float, 4>();
    for (std::int64_t b = 0; b < batch; ++b) {
      const PolarMaskTargets& t = targets[static_cast<std::size_t>(b)];
      for (std::int64_t local = 0; local < h * w; ++local) {
        const auto i = static_cast<std::size_t>(t.level_begin[li] + local);
        if (t.label[i] < 0) continue;
        for (std::int64_t k = 0; k < n; ++k)
          rays_a[b][k][local / w][local % w] =
              std::max(t.rays[static_cast<std::size_t>(n) * i + static_cast<std::size_t>(k)],
                       1e-6f) /
              stride;
      }
    }
    out.rays.push_back(rays);
  }
  return out;
}

std::shared_ptr<const MethodOutputs> PolarMaskImpl::perfect_network_outputs(
    const std::vector<std::vector<Instance>>& instances, int input_height, int input_width) const {
  return std::make_shared<PolarMaskMethodOutputs>(
      perfect_outputs(instances, input_height, input_width));
}

}  // namespace centermask
