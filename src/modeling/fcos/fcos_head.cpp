// FCOS's shared head; see fcos_head.h.

#include "centermask/modeling/fcos/fcos_head.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "centermask/modeling/fcos/fpn.h"
#include "centermask/modeling/precision.h"
#include "modeling/layers/group_norm.h"

namespace centermask {

namespace nn = torch::nn;

void FcosHeadOptions::validate() const {
  const auto fail = [](const std::string& message) {
    throw std::invalid_argument("FCOS head: " + message);
  };
  if (num_classes < 1) fail(fmt::format("model.num_classes must be ≥ 1, got {}", num_classes));
  if (in_channels < 1) fail(fmt::format("model.fpn_channels must be ≥ 1, got {}", in_channels));
  if (num_levels < 1) fail(fmt::format("the pyramid must have ≥ 1 level, got {}", num_levels));
  if (tower_convs < 0) fail(fmt::format("model.head_tower_convs must be ≥ 0, got {}", tower_convs));
  if (norm_groups < 1 || in_channels % norm_groups != 0)
    fail(fmt::format("model.head_norm_groups ({}) must divide model.fpn_channels ({})", norm_groups,
                     in_channels));
  if (regression_outputs < 1)
    fail(fmt::format("regression outputs must be ≥ 1, got {}", regression_outputs));
  if (!(prior_probability > 0 && prior_probability < 1))
    fail(fmt::format("the prior probability must lie in (0, 1), got {}", prior_probability));
}

void validate_pyramid_and_head(const std::string& backbone, int backbone_width, int fpn_channels,
                               const FcosHeadOptions& head, const std::string& key_prefix) {
  try {
    FeaturePyramidOptions{backbone, backbone_width, fpn_channels}.validate();
    head.validate();
  } catch (const std::invalid_argument& e) {
    // The pyramid and the head name their keys without the method's prefix.
    std::string message = e.what();
    for (const char* key :
         {"model.fpn_channels", "model.head_tower_convs", "model.head_norm_groups"})
      for (std::size_t at; (at = message.find(key)) != std::string::npos;)
        message.replace(at, 6, key_prefix);
    throw std::invalid_argument(message);
  }
}

nn::Conv2d fcos_head_conv(int in_channels, int out_channels, int kernel) {
  nn::Conv2d conv(nn::Conv2dOptions(in_channels, out_channels, kernel).padding(kernel / 2));
  nn::init::normal_(conv->weight, 0.0, 0.01);
  nn::init::zeros_(conv->bias);
  return conv;
}

nn::Sequential fcos_tower(int channels, int convs, int groups) {
  nn::Sequential units;
  for (int i = 0; i < convs; ++i) {
    units->push_back(fcos_head_conv(channels, channels, 3));
    units->push_back(layers::WideningGroupNorm(nn::GroupNormOptions(groups, channels)));
    units->push_back(nn::ReLU(nn::ReLUOptions(true)));
  }
  return units;
}

FcosHeadImpl::FcosHeadImpl(FcosHeadOptions options) : options_(options) {
  options_.validate();
  const int c = options_.in_channels;
  class_tower_ =
      register_module("class_tower", fcos_tower(c, options_.tower_convs, options_.norm_groups));
  regression_tower_ = register_module("regression_tower",
                                      fcos_tower(c, options_.tower_convs, options_.norm_groups));
  class_logits_ = register_module("class_logits", fcos_head_conv(c, options_.num_classes, 3));
  regression_ = register_module("regression", fcos_head_conv(c, options_.regression_outputs, 3));
  centerness_ = register_module("centerness", fcos_head_conv(c, 1, 3));
  nn::init::constant_(class_logits_->bias,
                      -std::log((1 - options_.prior_probability) / options_.prior_probability));
  scales_ = register_parameter("scales", torch::ones({options_.num_levels}));
}

FcosHeadOutputs FcosHeadImpl::forward(const std::vector<torch::Tensor>& levels) {
  if (levels.empty() || static_cast<int>(levels.size()) > options_.num_levels)
    throw std::invalid_argument(fmt::format("FCOS head: {} feature levels given, for a head of {}",
                                            levels.size(), options_.num_levels));
  FcosHeadOutputs out;
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const torch::Tensor& x = levels[l];
    if (x.dim() != 4 || x.size(1) != options_.in_channels)
      throw std::invalid_argument(fmt::format("FCOS head: level {} is {}, expected (N, {}, H, W)",
                                              l, c10::str(x.sizes()), options_.in_channels));
    const torch::Tensor class_features = class_tower_->forward(x);
    const torch::Tensor regression_features = regression_tower_->forward(x);
    out.class_logits.push_back(class_logits_->forward(class_features));
    out.regression.push_back(torch::exp(scales_[static_cast<std::int64_t>(l)] *
                                        regression_->forward(regression_features)));
    out.centerness_logits.push_back(centerness_->forward(regression_features));
    out.regression_features.push_back(regression_features);
  }
  return out;
}

void widen_to_float32(FcosHeadOutputs& outputs) {
  for (auto* levels : {&outputs.class_logits, &outputs.regression, &outputs.centerness_logits,
                       &outputs.regression_features})
    widen_to_float32(*levels);
}

}  // namespace centermask
