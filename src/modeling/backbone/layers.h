#pragma once
// Building blocks shared by the backbones.

#include <torch/torch.h>

namespace centermask::layers {

/// Conv (no bias) + BatchNorm + ReLU.
torch::nn::Sequential conv_bn_relu(int in_channels, int out_channels, int kernel, int stride = 1);

/// Conv (no bias) + BatchNorm, no activation: projections onto a residual path.
torch::nn::Sequential conv_bn(int in_channels, int out_channels, int kernel, int stride = 1);

/// A transposed convolution that upsamples by `factor` (kernel 2·factor, stride factor,
/// padding factor/2, no bias), initialised to bilinear interpolation on every channel pair
/// (CenterNet's fill_up_weights) so that an untrained network upsamples smoothly.
torch::nn::ConvTranspose2d bilinear_upsampler(int in_channels, int out_channels, int factor,
                                              bool depthwise);

/// ResNet's and DLA's basic residual block: 3×3 conv (stride) + BN + ReLU + 3×3 conv + BN,
/// plus the residual, then ReLU. The caller passes the residual when the shapes change
/// (ResNet's downsample, DLA's projected bottom); otherwise it is the input.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int in_channels, int out_channels, int stride);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
};
TORCH_MODULE(BasicBlock);

/// He et al.'s weight initialisation for convolutions and BN at (1, 0), as torchvision's
/// ResNet: every model here trains from scratch unless weights are loaded.
void init_conv_and_bn(torch::nn::Module& module);

}  // namespace centermask::layers
