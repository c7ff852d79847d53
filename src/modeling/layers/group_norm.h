#pragma once
// GroupNorm that takes reduced-precision input: LibTorch's CPU autocast (1.13) leaves
// group_norm out of its lists, so a bf16 convolution output reaching an fp32 GroupNorm fails
// ("expected scalar type BFloat16 but found Float"). This one widens such input to fp32, as
// CUDA's autocast does for group_norm; in fp32 it is nn::GroupNorm exactly (same parameter
// names, so checkpoints are unchanged).

#include <torch/torch.h>

namespace centermask::layers {

class WideningGroupNormImpl : public torch::nn::GroupNormImpl {
 public:
  using torch::nn::GroupNormImpl::GroupNormImpl;
  torch::Tensor forward(const torch::Tensor& input) {
    const bool reduced =
        input.scalar_type() == torch::kBFloat16 || input.scalar_type() == torch::kHalf;
    return torch::nn::GroupNormImpl::forward(reduced ? input.to(torch::kFloat32) : input);
  }
};
TORCH_MODULE(WideningGroupNorm);

}  // namespace centermask::layers
