#pragma once
// ResNet's stem and four stages, registered into the module that owns them: shared by the
// CenterNet-style ResNet backbone (stride 4 by upsampling) and the FPN (P3–P7). The stage
// modules keep the names "stem", "layer1" … "layer4" in their owner, so checkpoints of either
// network name them as torchvision's ResNet does.

#include <torch/torch.h>

#include <vector>

#include "modeling/backbone/layers.h"

namespace centermask {

struct ResNetStages {
  torch::nn::Sequential stem{nullptr};  ///< 7×7 conv stride 2 + BN + ReLU (max pool in forward)
  layers::FoldedConvBn folded_stem;     ///< the stem's inference form
  std::vector<torch::nn::Sequential> stages;  ///< layer1 … layer4: strides 4, 8, 16, 32
  int stage_channels[4] = {0, 0, 0, 0};

  /// The four stage outputs C2 … C5 (strides 4, 8, 16, 32) of (N, 3, H, W) images.
  std::vector<torch::Tensor> forward(const torch::Tensor& images);
};

/// Builds ResNet-`depth` (18, 34: basic blocks; 50, 101: bottlenecks) with `width` channels
/// in its first stage and registers its modules in `owner`. std::invalid_argument for another
/// depth.
ResNetStages register_resnet_stages(torch::nn::Module& owner, int depth, int width);

}  // namespace centermask
