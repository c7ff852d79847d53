// A plain FCOS box detector's loss and decoding; see fcos_boxes.h.

#include "modeling/fcos/fcos_boxes.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "modeling/layers/losses.h"
#include "modeling/ops/nms.h"

namespace centermask {

torch::Tensor flatten_levels(const std::vector<torch::Tensor>& per_level) {
  std::vector<torch::Tensor> flat;
  for (const torch::Tensor& t : per_level)
    flat.push_back(t.flatten(2).transpose(1, 2));  // (N, H·W, C)
  return torch::cat(flat, 1);
}

FcosBoxLosses fcos_box_losses(const FcosHeadOutputs& outputs,
                              const std::vector<FcosTargets>& targets,
                              const std::vector<int>& strides) {
  const torch::Tensor logits = flatten_levels(outputs.class_logits);  // (N, L, C)
  const torch::Tensor regression = flatten_levels(outputs.regression);
  const torch::Tensor centerness = flatten_levels(outputs.centerness_logits).squeeze(2);
  const std::int64_t n = logits.size(0), locations = logits.size(1);
  if (static_cast<std::int64_t>(targets.size()) != n ||
      strides.size() != outputs.class_logits.size())
    throw std::invalid_argument(
        fmt::format("FCOS loss: {} images' targets and {} strides for a batch of {} over {} levels",
                    targets.size(), strides.size(), n, outputs.class_logits.size()));
  // Targets on the host, distances divided by their level's stride.
  std::vector<std::int64_t> labels;
  std::vector<float> ltrb, center;
  for (const FcosTargets& t : targets) {
    if (t.num_locations() != locations)
      throw std::invalid_argument(fmt::format(
          "FCOS loss: targets over {} locations, outputs over {}", t.num_locations(), locations));
    labels.insert(labels.end(), t.label.begin(), t.label.end());
    center.insert(center.end(), t.centerness.begin(), t.centerness.end());
    for (std::size_t level = 0; level + 1 < t.level_begin.size(); ++level)
      for (std::int64_t i = t.level_begin[level]; i < t.level_begin[level + 1]; ++i) {
        for (int k = 0; k < 4; ++k)
          ltrb.push_back(t.ltrb[static_cast<std::size_t>(4 * i + k)] /
                         static_cast<float>(strides[level]));
      }
  }
  const auto device = logits.device();
  const torch::Tensor label_t = torch::tensor(labels, torch::kInt64).to(device);
  // copy: the autograd graph keeps these past this function, the vectors do not live as long.
  const torch::Tensor ltrb_t =
      torch::from_blob(ltrb.data(), {n * locations, 4}, torch::kFloat32)
          .to(device, logits.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  const torch::Tensor center_t =
      torch::from_blob(center.data(), {n * locations}, torch::kFloat32)
          .to(device, logits.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
  const torch::Tensor positive = label_t.ge(0);
  const double num_positive = std::max<double>(1.0, positive.sum().item<double>());

  FcosBoxLosses losses;
  losses.classification =
      sigmoid_focal_loss(logits.reshape({n * locations, -1}), label_t) / num_positive;
  const torch::Tensor where = positive.nonzero().squeeze(1);
  if (where.numel() == 0) {
    losses.box = regression.sum() * 0;
    losses.centerness = centerness.sum() * 0;
  } else {
    const torch::Tensor weight = center_t.index_select(0, where);
    losses.box = ltrb_iou_loss(regression.reshape({n * locations, 4}).index_select(0, where),
                               ltrb_t.index_select(0, where), weight, IouLossKind::kGiou);
    losses.centerness = torch::binary_cross_entropy_with_logits(
        centerness.reshape({n * locations}).index_select(0, where), weight);
  }
  losses.total = losses.classification + losses.box + losses.centerness;
  return losses;
}

FcosDecodeOptions fcos_decode_options(const FcosInferenceOptions& options, FcosScore score) {
  FcosDecodeOptions decode;
  decode.score_threshold = options.candidate_threshold;
  decode.top_per_level = options.top_per_level;
  decode.nms_iou = options.nms_iou;
  decode.max_detections = options.max_detections;
  decode.score = score;
  return decode;
}

std::vector<std::vector<FcosDetection>> decode_fcos_boxes(const FcosHeadOutputs& outputs,
                                                          const std::vector<int>& strides,
                                                          const FcosDecodeOptions& options) {
  torch::NoGradGuard no_grad;
  const ScopedStage stage("decode");
  if (strides.size() != outputs.class_logits.size())
    throw std::invalid_argument(fmt::format("FCOS decode: {} strides for {} levels", strides.size(),
                                            outputs.class_logits.size()));
  const std::int64_t n = outputs.class_logits.front().size(0);
  std::vector<std::vector<FcosDetection>> results(static_cast<std::size_t>(n));
  for (std::int64_t b = 0; b < n; ++b) {
    std::vector<FcosDetection> candidates;
    for (std::size_t level = 0; level < strides.size(); ++level) {
      const torch::Tensor cls = torch::sigmoid(outputs.class_logits[level][b])
                                    .to(torch::kCPU, torch::kFloat32)
                                    .contiguous();  // (C, H, W)
      const torch::Tensor ctr = torch::sigmoid(outputs.centerness_logits[level][b][0])
                                    .to(torch::kCPU, torch::kFloat32)
                                    .contiguous();
      const torch::Tensor reg =
          outputs.regression[level][b].to(torch::kCPU, torch::kFloat32).contiguous();
      const std::int64_t classes = cls.size(0), h = cls.size(1), w = cls.size(2);
      const float* cls_data = cls.data_ptr<float>();
      const float* ctr_data = ctr.data_ptr<float>();
      const float* reg_data = reg.data_ptr<float>();
      std::vector<FcosDetection> level_candidates;
      for (std::int64_t c = 0; c < classes; ++c)
        for (std::int64_t i = 0; i < h * w; ++i) {
          const float p = cls_data[c * h * w + i];
          if (p <= options.score_threshold) continue;
          FcosDetection d;
          d.score = p * ctr_data[i];  // candidates are ranked by this in both formulas
          d.class_index = static_cast<int>(c);
          d.level = static_cast<int>(level);
          d.location = i;
          level_candidates.push_back(d);
        }
      const std::size_t keep = std::min<std::size_t>(
          level_candidates.size(), static_cast<std::size_t>(std::max(0, options.top_per_level)));
      std::partial_sort(
          level_candidates.begin(), level_candidates.begin() + static_cast<std::ptrdiff_t>(keep),
          level_candidates.end(),
          [](const FcosDetection& x, const FcosDetection& y) { return x.score > y.score; });
      level_candidates.resize(keep);
      const float stride = static_cast<float>(strides[level]);
      for (FcosDetection& d : level_candidates) {
        const float x = static_cast<float>((d.location % w) * strides[level] + strides[level] / 2);
        const float y = static_cast<float>((d.location / w) * strides[level] + strides[level] / 2);
        const auto distance = [&](int k) { return reg_data[k * h * w + d.location] * stride; };
        d.box = {x - distance(0), y - distance(1), x + distance(2), y + distance(3)};
        const float p = cls_data[d.class_index * h * w + d.location];
        d.score = options.score == FcosScore::kSqrtClassTimesCenterness
                      ? std::sqrt(d.score)
                      : p * (ctr_data[d.location] + 0.5f);
        candidates.push_back(d);
      }
    }
    std::vector<BoxXYXY> boxes;
    std::vector<float> scores;
    std::vector<std::int64_t> classes;
    for (const FcosDetection& d : candidates) {
      boxes.push_back(d.box);
      scores.push_back(d.score);
      classes.push_back(d.class_index);
    }
    std::vector<std::int64_t> kept;
    {
      const ScopedStage nms_stage("nms");
      kept = box_nms(boxes, scores, options.nms_iou, classes);
    }
    std::vector<FcosDetection>& out = results[static_cast<std::size_t>(b)];
    for (std::size_t k = 0; k < kept.size() && static_cast<int>(k) < options.max_detections; ++k)
      out.push_back(candidates[static_cast<std::size_t>(kept[k])]);
  }
  return results;
}

}  // namespace centermask
