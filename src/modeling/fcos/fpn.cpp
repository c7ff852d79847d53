// ResNet-FPN, P3–P7 (FCOS's and PolarMask's feature pyramid); see fpn.h.

#include "centermask/modeling/fcos/fpn.h"

#include <fmt/format.h>

#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "modeling/backbone/layers.h"
#include "modeling/backbone/resnet_stages.h"

namespace centermask {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

void FeaturePyramidOptions::validate() const {
  if (backbone != "resnet18" && backbone != "resnet34" && backbone != "resnet50" &&
      backbone != "resnet101")
    throw std::invalid_argument(fmt::format(
        "model.backbone \"{}\" has no feature pyramid (expected resnet18, resnet34, resnet50 or "
        "resnet101)",
        backbone));
  if (width < 8 || width % 8 != 0)
    throw std::invalid_argument(
        fmt::format("model.backbone_width must be a positive multiple of 8, got {}", width));
  if (channels < 1)
    throw std::invalid_argument(
        fmt::format("model.fpn_channels must be positive, got {}", channels));
}

namespace {

// FCOS's (maskrcnn-benchmark's) FPN convolutions: Kaiming-uniform with a = 1, bias 0.
nn::Conv2d fpn_conv(int in_channels, int out_channels, int kernel, int stride) {
  nn::Conv2d conv(
      nn::Conv2dOptions(in_channels, out_channels, kernel).stride(stride).padding(kernel / 2));
  nn::init::kaiming_uniform_(conv->weight, /*a=*/1);
  nn::init::zeros_(conv->bias);
  return conv;
}

}  // namespace

FeaturePyramidImpl::FeaturePyramidImpl(FeaturePyramidOptions options)
    : options_(std::move(options)) {
  options_.validate();
  const int depth = std::stoi(options_.backbone.substr(6));
  trunk_ = std::make_shared<ResNetStages>(register_resnet_stages(*this, depth, options_.width));
  layers::init_conv_and_bn(*this);  // the ResNet's own initialisation; the FPN's below
  const int c = options_.channels;
  for (int level = 0; level < 3; ++level) {
    const std::string name = std::to_string(level + 3);  // fpn_lateral3 … as detectron2
    lateral_.push_back(register_module("fpn_lateral" + name,
                                       fpn_conv(trunk_->stage_channels[level + 1], c, 1, 1)));
    output_.push_back(register_module("fpn_output" + name, fpn_conv(c, c, 3, 1)));
  }
  p6_ = register_module("p6", fpn_conv(c, c, 3, 2));
  p7_ = register_module("p7", fpn_conv(c, c, 3, 2));
}

std::vector<torch::Tensor> FeaturePyramidImpl::bottom_up(const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != 3)
    throw std::invalid_argument("the feature pyramid expects images of shape (N, 3, H, W), got " +
                                c10::str(images.sizes()));
  check_input_size(static_cast<int>(images.size(2)), static_cast<int>(images.size(3)),
                   size_divisor());
  return trunk_->forward(images);
}

PyramidFeatures FeaturePyramidImpl::forward(const torch::Tensor& images) {
  const ScopedStage stage("backbone");  // ResNet and FPN together, as CenterMask's backbone
  const std::vector<torch::Tensor> c = bottom_up(images);  // C2 … C5
  // Top-down: each level's lateral plus the coarser level's sum, upsampled (nearest, ×2; the
  // sides are exact since the input is a multiple of 32).
  std::vector<torch::Tensor> inner(3);
  inner[2] = lateral_[2]->forward(c[3]);
  for (int level = 1; level >= 0; --level)
    inner[static_cast<std::size_t>(level)] =
        lateral_[static_cast<std::size_t>(level)]->forward(c[static_cast<std::size_t>(level) + 1]) +
        F::interpolate(inner[static_cast<std::size_t>(level) + 1],
                       F::InterpolateFuncOptions()
                           .scale_factor(std::vector<double>{2.0, 2.0})
                           .mode(torch::kNearest));
  PyramidFeatures out;
  out.names = names_;
  out.shapes = output_shapes();
  for (std::size_t level = 0; level < 3; ++level)
    out.maps.push_back(output_[level]->forward(inner[level]));
  // FCOS's LastLevelP6P7 on P5 (PolarMask's too): P7 sees ReLU(P6).
  out.maps.push_back(p6_->forward(out.maps[2]));
  out.maps.push_back(p7_->forward(torch::relu(out.maps[3])));
  return out;
}

std::vector<ShapeSpec> FeaturePyramidImpl::output_shapes() const {
  std::vector<ShapeSpec> shapes;
  for (int level = 3; level <= 7; ++level) shapes.push_back({options_.channels, 1 << level});
  return shapes;
}

}  // namespace centermask
