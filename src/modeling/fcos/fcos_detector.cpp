// The FCOS family's shared half; see fcos_detector.h.

#include "centermask/modeling/fcos/fcos_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "centermask/modeling/fcos/fcos_assignment.h"
#include "modeling/fcos/fcos_boxes.h"

namespace centermask {

FcosHeadOptions FcosDetectorOptions::head_options() const {
  FcosHeadOptions head;
  head.num_classes = num_classes;
  head.in_channels = fpn_channels;
  head.num_levels = 5;
  head.tower_convs = head_tower_convs;
  head.norm_groups = head_norm_groups;
  head.regression_outputs = 4;
  return head;
}

void FcosDetectorOptions::validate_detector(const std::string& title,
                                            const std::string& key_prefix) const {
  const auto fail = [](const std::string& message) { throw std::invalid_argument(message); };
  if (num_classes < 1) fail(fmt::format("model.num_classes: must be ≥ 1, got {}", num_classes));
  if (backbone != "resnet18" && backbone != "resnet34" && backbone != "resnet50" &&
      backbone != "resnet101")
    fail(fmt::format(
        "model.backbone: {} runs on a ResNet-FPN: expected resnet18, resnet34, resnet50 or "
        "resnet101, got '{}'",
        title, backbone));
  if (center_sampling_radius <= 0)
    fail(fmt::format("{}center_sampling_radius: must be > 0, got {}", key_prefix,
                     center_sampling_radius));
  const FcosLossWeights& w = loss_weights;
  for (const auto& [key, value] :
       {std::pair<const char*, double>{"classification", w.classification},
        {"box", w.box},
        {"centerness", w.centerness},
        {"mask", w.mask}})
    if (!(value >= 0) || !std::isfinite(value))
      fail(
          fmt::format("{}loss_weights.{}: must be finite and ≥ 0, got {}", key_prefix, key, value));
  validate_pyramid_and_head(backbone, backbone_width, fpn_channels, head_options(), key_prefix);
}

void declare_fcos_detector_keys(OptionKeys& keys, FcosDetectorOptions& options,
                                const FcosKeyHelp& help) {
  keys.add_int("fpn_channels", "channels of every pyramid level and head tower",
               options.fpn_channels);
  keys.add_int("head_tower_convs", help.towers, options.head_tower_convs);
  keys.add_int("head_norm_groups", "GroupNorm groups of the towers", options.head_norm_groups);
  keys.add_double("center_sampling_radius",
                  "positives within r * stride of the " + help.sampling_center,
                  options.center_sampling_radius);
}

void declare_fcos_loss_weight_keys(OptionKeys& keys, FcosLossWeights& weights,
                                   const FcosKeyHelp& help) {
  keys.add_double("loss_weights.classification", "focal loss weight", weights.classification);
  keys.add_double("loss_weights.box", help.box_loss, weights.box);
  keys.add_double("loss_weights.centerness", "centerness BCE weight", weights.centerness);
  keys.add_double("loss_weights.mask", help.mask_loss, weights.mask);
}

FcosDetectorImpl::FcosDetectorImpl(const FcosDetectorOptions& options)
    : detector_options_(options) {
  pyramid_ = register_module(
      "pyramid", FeaturePyramid(FeaturePyramidOptions{options.backbone, options.backbone_width,
                                                      options.fpn_channels}));
  fcos_head_ = register_module("head", FcosHead(options.head_options()));
}

torch::Tensor FcosDetectorImpl::weighted_total(const FcosFamilyLosses& losses) const {
  const FcosLossWeights& w = detector_options_.loss_weights;
  return w.classification * losses.classification + w.box * losses.box +
         w.centerness * losses.centerness + w.mask * losses.mask;
}

MethodLosses FcosDetectorImpl::named(const FcosFamilyLosses& losses) {
  MethodLosses named;
  named.total = losses.total;
  named.terms = {{"classification", losses.classification},
                 {"box", losses.box},
                 {"centerness", losses.centerness},
                 {"mask", losses.mask}};
  return named;
}

std::string FcosDetectorImpl::first_non_finite(
    const FcosHeadOutputs& fcos,
    const std::vector<std::pair<const char*, const std::vector<torch::Tensor>*>>& extra) {
  std::vector<std::pair<const char*, const std::vector<torch::Tensor>*>> heads = {
      {"classification", &fcos.class_logits},
      {"box", &fcos.regression},
      {"centerness", &fcos.centerness_logits}};
  heads.insert(heads.end(), extra.begin(), extra.end());
  for (const auto& [name, levels] : heads)
    for (const torch::Tensor& level : *levels)
      if (level.defined() && !torch::isfinite(level).all().item<bool>()) return name;
  return "";
}

std::vector<std::vector<FcosDetection>> FcosDetectorImpl::decode_detections(
    const FcosHeadOutputs& fcos, const std::vector<int>& strides,
    const FcosInferenceOptions& options, FcosScore score, std::size_t images, const char* title) {
  std::vector<std::vector<FcosDetection>> detections =
      decode_fcos_boxes(fcos, strides, fcos_decode_options(options, score));
  if (detections.size() != images)
    throw std::invalid_argument(fmt::format("{} predict: {} images' infos for a batch of {}", title,
                                            images, detections.size()));
  return detections;
}

FcosHeadOutputs FcosDetectorImpl::perfect_fcos_outputs(
    const std::vector<FcosAssignmentView>& images, const std::vector<FcosLevel>& levels,
    int num_classes, float min_distance, std::vector<int>* strides) {
  const auto batch = static_cast<std::int64_t>(images.size());
  const float sure = 1 - 1e-4f;
  const auto logit = [](float p) { return std::log(p / (1 - p)); };
  FcosHeadOutputs out;
  for (std::size_t li = 0; li < levels.size(); ++li) {
    const FcosLevel& level = levels[li];
    const std::int64_t h = level.height, w = level.width;
    torch::Tensor cls = torch::full({batch, num_classes, h, w}, logit(1 - sure));
    torch::Tensor ctr = torch::full({batch, 1, h, w}, logit(1 - sure));
    torch::Tensor box = torch::ones({batch, 4, h, w});
    auto cls_a = cls.accessor<float, 4>();
    auto ctr_a = ctr.accessor<float, 4>();
    auto box_a = box.accessor<float, 4>();
    const auto stride = static_cast<float>(level.stride_px);
    for (std::int64_t b = 0; b < batch; ++b) {
      const FcosAssignmentView& t = images[static_cast<std::size_t>(b)];
      for (std::int64_t local = 0; local < h * w; ++local) {
        const auto i = static_cast<std::size_t>((*t.level_begin)[li] + local);
        const std::int64_t label = (*t.label)[i];
        if (label < 0) continue;
        const std::int64_t y = local / w, x = local % w;
        cls_a[b][label][y][x] = logit(sure);
        ctr_a[b][0][y][x] = logit(std::clamp((*t.centerness)[i], 1e-4f, sure));
        for (std::int64_t k = 0; k < 4; ++k)
          box_a[b][k][y][x] =
              std::max((*t.ltrb)[4 * i + static_cast<std::size_t>(k)], min_distance) / stride;
      }
    }
    out.class_logits.push_back(cls);
    out.centerness_logits.push_back(ctr);
    out.regression.push_back(box);
    strides->push_back(level.stride_px);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> FcosDetectorImpl::fcos_raw_maps(
    const FcosHeadOutputs& fcos) {
  std::vector<std::pair<std::string, torch::Tensor>> maps;
  for (std::size_t level = 0; level < fcos.class_logits.size(); ++level) {
    maps.emplace_back(fmt::format("class_logits_p{}", level + 3), fcos.class_logits[level]);
    maps.emplace_back(fmt::format("box_p{}", level + 3), fcos.regression[level]);
    maps.emplace_back(fmt::format("centerness_logits_p{}", level + 3),
                      fcos.centerness_logits[level]);
  }
  return maps;
}

void FcosDetectorImpl::apply_predict_options(const PredictOptions& predict,
                                             FcosInferenceOptions* options) {
  options->max_detections = predict.top_k;
  options->score_threshold = predict.score_threshold;
}

}  // namespace centermask
