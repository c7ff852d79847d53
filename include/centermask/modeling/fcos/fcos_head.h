#pragma once
// FCOS's head (Tian et al. 2019), shared by PolarMask and CenterMask-FCOS: two towers of
// `tower_convs` × (conv 3×3 + GroupNorm(32) + ReLU) run on every pyramid level with the same
// weights — one for classification, one for regression — then a classification conv (C
// logits per location), a regression conv (`regression_outputs` per location, 4 = the box's
// l, t, r, b) scaled per level by a learnable scalar and passed through exp (distances are
// positive), and a centerness conv on the regression tower (FCOS's centerness-on-regression
// improvement, as PolarMask's own head). The classification bias starts at −log((1 − π) / π)
// with π = 0.01 so that focal loss training starts stable, as RetinaNet and FCOS.
//
//   FcosHead head(options);
//   FcosHeadOutputs out = head->forward(pyramid.maps);   // one entry per level

#include <torch/torch.h>

#include <string>
#include <vector>

namespace centermask {

struct FcosHeadOptions {
  int num_classes = 80;
  int in_channels = 256;       ///< the pyramid's channels
  int num_levels = 5;          ///< P3–P7: one learnable scale each
  int tower_convs = 4;         ///< conv + GN + ReLU units per tower
  int norm_groups = 32;        ///< GroupNorm groups; must divide in_channels
  int regression_outputs = 4;  ///< 4 for boxes (l, t, r, b); PolarMask: its ray count
  double prior_probability = 0.01;

  /// std::invalid_argument naming the field when the head cannot be built.
  void validate() const;
};

/// Per level (finest first), the raw outputs: (N, C, H, W) class logits, (N, R, H, W)
/// positive regressions in pixels / stride units as trained (exp of the scaled conv), and
/// (N, 1, H, W) centerness logits.
struct FcosHeadOutputs {
  std::vector<torch::Tensor> class_logits;
  std::vector<torch::Tensor> regression;
  std::vector<torch::Tensor> centerness_logits;
  /// (N, in_channels, H, W) the regression tower's output: what the box, the centerness and
  /// CenterMask-FCOS's local shape read.
  std::vector<torch::Tensor> regression_features;
};

/// Every level of every head in float32 (mixed-precision training: see modeling/precision.h).
void widen_to_float32(FcosHeadOutputs& outputs);

class FcosHeadImpl : public torch::nn::Module {
 public:
  explicit FcosHeadImpl(FcosHeadOptions options);
  /// One map per level, each (N, in_channels, H_l, W_l); at most num_levels of them.
  FcosHeadOutputs forward(const std::vector<torch::Tensor>& levels);
  const FcosHeadOptions& options() const { return options_; }

 private:
  FcosHeadOptions options_;
  torch::nn::Sequential class_tower_{nullptr}, regression_tower_{nullptr};
  torch::nn::Conv2d class_logits_{nullptr}, regression_{nullptr}, centerness_{nullptr};
  torch::Tensor scales_;  ///< (num_levels) learnable, start at 1
};
TORCH_MODULE(FcosHead);

/// Validates a method's ResNet-FPN and FCOS head: std::invalid_argument naming the method's
/// keys, model.fpn_channels, model.head_tower_convs and model.head_norm_groups written as
/// `key_prefix` + fpn_channels etc. (e.g. "model.polarmask.").
void validate_pyramid_and_head(const std::string& backbone, int backbone_width, int fpn_channels,
                               const FcosHeadOptions& head, const std::string& key_prefix);

/// FCOS's initialisation for a head convolution: N(0, 0.01) weights, zero bias, "same" padding.
torch::nn::Conv2d fcos_head_conv(int in_channels, int out_channels, int kernel);
/// A tower of `convs` × (fcos_head_conv 3×3 + GroupNorm(groups) + ReLU) at `channels`.
torch::nn::Sequential fcos_tower(int channels, int convs, int groups);

}  // namespace centermask
