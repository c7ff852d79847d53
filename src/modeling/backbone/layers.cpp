#include "modeling/backbone/layers.h"

#include <cmath>

namespace centermask::layers {

namespace nn = torch::nn;

nn::Sequential conv_bn(int in_channels, int out_channels, int kernel, int stride) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, kernel)
                                       .stride(stride)
                                       .padding(kernel / 2)
                                       .bias(false)),
                        nn::BatchNorm2d(out_channels));
}

nn::Sequential conv_bn_relu(int in_channels, int out_channels, int kernel, int stride) {
  nn::Sequential block = conv_bn(in_channels, out_channels, kernel, stride);
  block->push_back(nn::ReLU(nn::ReLUOptions(true)));
  return block;
}

nn::ConvTranspose2d bilinear_upsampler(int in_channels, int out_channels, int factor,
                                       bool depthwise) {
  const int kernel = 2 * factor;
  nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(in_channels, out_channels, kernel)
                             .stride(factor)
                             .padding(factor / 2)
                             .groups(depthwise ? out_channels : 1)
                             .bias(false));
  // Weight layout (in, out / groups, k, k). Bilinear kernel: (1 - |x/f - c|)(1 - |y/f - c|).
  torch::NoGradGuard no_grad;
  const double f = std::ceil(kernel / 2.0);
  const double c = (2 * f - 1 - static_cast<int>(f) % 2) / (2.0 * f);
  torch::Tensor kernel_2d = torch::empty({kernel, kernel});
  auto k = kernel_2d.accessor<float, 2>();
  for (int y = 0; y < kernel; ++y)
    for (int x = 0; x < kernel; ++x)
      k[y][x] = static_cast<float>((1 - std::abs(x / f - c)) * (1 - std::abs(y / f - c)));
  torch::Tensor& weight = up->weight;
  if (depthwise) {
    weight.copy_(kernel_2d.expand_as(weight));
  } else {
    // Channel i feeds channel i (the identity on channels, bilinear in space); CenterNet's
    // ResNet deconvs change the channel count, so other pairs start at small random values.
    nn::init::normal_(weight, 0.0, 0.001);
    const int64_t shared = std::min(in_channels, out_channels);
    for (int64_t i = 0; i < shared; ++i) weight[i][i].copy_(kernel_2d);
  }
  return up;
}

BasicBlockImpl::BasicBlockImpl(int in_channels, int out_channels, int stride) {
  conv1_ = register_module(
      "conv1",
      nn::Conv2d(
          nn::Conv2dOptions(in_channels, out_channels, 3).stride(stride).padding(1).bias(false)));
  bn1_ = register_module("bn1", nn::BatchNorm2d(out_channels));
  conv2_ = register_module(
      "conv2", nn::Conv2d(nn::Conv2dOptions(out_channels, out_channels, 3).padding(1).bias(false)));
  bn2_ = register_module("bn2", nn::BatchNorm2d(out_channels));
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  torch::Tensor y = torch::relu(bn1_->forward(conv1_->forward(x)));
  y = bn2_->forward(conv2_->forward(y));
  return torch::relu(y + (residual.defined() ? residual : x));
}

void init_conv_and_bn(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false)) {
    if (auto* conv = child->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
      if (conv->bias.defined()) nn::init::zeros_(conv->bias);
    } else if (auto* bn = child->as<nn::BatchNorm2d>()) {
      nn::init::ones_(bn->weight);
      nn::init::zeros_(bn->bias);
    }
  }
}

}  // namespace centermask::layers
