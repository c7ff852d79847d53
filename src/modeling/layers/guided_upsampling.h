#pragma once
// Image-guided upsampling of a saliency head's features, shared by CenterMask (stride 4 → 2
// → 1) and CenterMask-FCOS (P3's stride 8 → 4 → …): each stage doubles the resolution
// bilinearly, concatenates the input image average-pooled to the new stride (the edges that
// coarse features cannot carry) and applies conv 3×3 + ReLU.

#include <torch/torch.h>

#include <vector>

namespace centermask {

/// One stage: in_channels (+ 3 image channels) → out_channels.
torch::nn::Sequential guided_upsampling_stage(int in_channels, int out_channels);

/// Runs `stages` on features x at `from_stride` input pixels per cell: stage i works at
/// from_stride / 2^(i+1). images: the network's (N, 3, H, W) input.
torch::Tensor run_guided_upsampling(torch::Tensor x, std::vector<torch::nn::Sequential>& stages,
                                    const torch::Tensor& images, int from_stride);

}  // namespace centermask
