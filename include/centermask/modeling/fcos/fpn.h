#pragma once
// ResNet-FPN as FCOS and PolarMask use it (Lin et al. 2017; Tian et al. 2019): C3–C5 of a
// ResNet, 1×1 lateral convolutions to a common width, a top-down path (nearest ×2 upsampling
// and sum), a 3×3 output convolution per level, and two extra levels computed from P5 — P6 by
// a 3×3 stride-2 conv, P7 by another on ReLU(P6). Five maps, P3–P7, at strides 8–128, each
// named and described by its ShapeSpec so heads never guess channels or strides.
//
//   FeaturePyramid fpn(options);
//   PyramidFeatures features = fpn->forward(images);   // (N, 3, H, W), H, W % 32 == 0
//   features.maps[0]  // P3: (N, channels, H / 8, W / 8)
//
// Inputs need sides divisible by 32 only: P6 and P7 round up (⌈P5 / 2⌉, ⌈P6 / 2⌉), as FCOS's
// stride-2 convolutions with padding 1 do, so the 128 of P7's stride is not a constraint.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "centermask/modeling/backbone.h"

namespace centermask {

struct ResNetStages;  // modeling/backbone/resnet_stages.h

struct FeaturePyramidOptions {
  /// resnet18, resnet34, resnet50 or resnet101.
  std::string backbone = "resnet50";
  /// Channels of the ResNet's first stage (64 standard; narrower for CPU-sized models).
  int width = 64;
  /// Channels of every pyramid level (256 in FCOS and PolarMask).
  int channels = 256;

  /// std::invalid_argument naming the field when it cannot be built.
  void validate() const;
};

/// The pyramid's maps, finest first, with their names ("p3" … "p7") and shapes.
struct PyramidFeatures {
  std::vector<std::string> names;
  std::vector<torch::Tensor> maps;
  std::vector<ShapeSpec> shapes;
};

class FeaturePyramidImpl : public torch::nn::Module {
 public:
  explicit FeaturePyramidImpl(FeaturePyramidOptions options);

  /// (N, 3, H, W), H and W positive multiples of 32 (std::invalid_argument otherwise).
  PyramidFeatures forward(const torch::Tensor& images);
  /// The ResNet's stage outputs C2 … C5 (strides 4 … 32) before the pyramid.
  std::vector<torch::Tensor> bottom_up(const torch::Tensor& images);

  /// Names and shapes of the levels, finest first, without running the network.
  const std::vector<std::string>& level_names() const { return names_; }
  std::vector<ShapeSpec> output_shapes() const;
  int size_divisor() const { return 32; }
  const FeaturePyramidOptions& options() const { return options_; }

 private:
  FeaturePyramidOptions options_;
  std::vector<std::string> names_{"p3", "p4", "p5", "p6", "p7"};
  std::shared_ptr<ResNetStages> trunk_;  ///< its modules are registered in this one
  /// Index 0 → C3 … 2 → C5.
  std::vector<torch::nn::Conv2d> lateral_, output_;
  torch::nn::Conv2d p6_{nullptr}, p7_{nullptr};
};
TORCH_MODULE(FeaturePyramid);

}  // namespace centermask
