#include "modeling/backbone/layers.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <atomic>
#include <cmath>

#include "centermask/modeling/inference_form.h"

namespace centermask {

namespace {
std::atomic<bool> folding_enabled{true};
}

void set_inference_folding(bool enabled) { folding_enabled = enabled; }
bool inference_folding() { return folding_enabled; }

}  // namespace centermask

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

bool runs_folded(const nn::Module& module) {
  return inference_folding() && !module.is_training() && !torch::GradMode::is_enabled();
}

namespace {

using Stamp = std::vector<std::pair<const void*, std::int64_t>>;

// Where each source tensor lives and how often it was written in place.
Stamp stamp_of(const std::vector<torch::Tensor>& sources) {
  Stamp stamp;
  for (const torch::Tensor& t : sources)
    stamp.emplace_back(t.defined() ? t.data_ptr() : nullptr, t.defined() ? t._version() : -1);
  return stamp;
}

// BatchNorm at inference as y = x·scale + shift per channel.
std::pair<torch::Tensor, torch::Tensor> batch_norm_affine(const nn::BatchNorm2dImpl& bn) {
  const torch::Tensor scale = bn.weight * torch::rsqrt(bn.running_var + bn.options.eps());
  return {scale, bn.bias - bn.running_mean * scale};
}

}  // namespace

torch::Tensor FoldedConvBn::forward(nn::Conv2dImpl& conv, nn::BatchNorm2dImpl& bn,
                                    const torch::Tensor& x, bool relu) {
  if (!runs_folded(conv) || !bn.options.track_running_stats() ||
      !c10::get_if<torch::enumtype::kZeros>(&conv.options.padding_mode())) {
    torch::Tensor y = bn.forward(conv.forward(x));
    return relu ? torch::relu_(y) : y;
  }
  Stamp stamp =
      stamp_of({conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var});
  if (stamp != source_stamp_ || !weight_.defined()) {
    const auto [scale, shift] = batch_norm_affine(bn);
    weight_ = conv.weight * scale.view({-1, 1, 1, 1});
    bias_ = conv.bias.defined() ? conv.bias * scale + shift : shift;
    onednn_weight_ = onednn_bias_ = torch::Tensor();
    source_stamp_ = std::move(stamp);
  }
  const auto& o = conv.options;
  if (x.is_mkldnn()) {
    const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (padding == nullptr) return forward(conv, bn, x.to_dense(), relu);  // "same" / "valid"
    if (!onednn_weight_.defined()) {                                       // reset by every refold
      onednn_weight_ = torch::mkldnn_reorder_conv2d_weight(weight_.to_mkldnn(), **padding,
                                                           *o.stride(), *o.dilation(), o.groups());
      onednn_bias_ = bias_.to_mkldnn();
    }
    torch::Tensor y = torch::mkldnn_convolution(x, onednn_weight_, onednn_bias_, **padding,
                                                *o.stride(), *o.dilation(), o.groups());
    return relu ? torch::relu_(y) : y;
  }
  torch::Tensor y = nn::functional::conv2d(x, weight_,
                                           nn::functional::Conv2dFuncOptions()
                                               .bias(bias_)
                                               .stride(o.stride())
                                               .padding(o.padding())
                                               .dilation(o.dilation())
                                               .groups(o.groups()));
  return relu ? torch::relu_(y) : y;
}

torch::Tensor FoldedConvBn::forward(nn::Sequential& block, const torch::Tensor& x) {
  auto* conv = block->size() >= 2 ? block[0]->as<nn::Conv2d>() : nullptr;
  auto* bn = block->size() >= 2 ? block[1]->as<nn::BatchNorm2d>() : nullptr;
  const bool relu = block->size() == 3 && block[2]->as<nn::ReLU>() != nullptr;
  if (conv == nullptr || bn == nullptr || (block->size() == 3 && !relu) || block->size() > 3)
    return block->forward(x);  // not a conv_bn block: run it as it is
  return forward(*conv, *bn, x, relu);
}

std::vector<torch::Tensor> FusedSiblingConvs::forward(const std::vector<nn::Conv2dImpl*>& convs,
                                                      const torch::Tensor& x, bool relu) {
  const auto run_apart = [&] {
    std::vector<torch::Tensor> outputs;
    for (nn::Conv2dImpl* conv : convs) {
      torch::Tensor y = conv->forward(x);
      outputs.push_back(relu ? torch::relu_(y) : y);
    }
    return outputs;
  };
  if (convs.empty()) return {};
  const auto& first = convs.front()->options;
  const auto* first_padding = c10::get_if<torch::ExpandingArray<2>>(&first.padding());
  bool fusable = runs_folded(*convs.front()) && first_padding != nullptr;
  for (nn::Conv2dImpl* conv : convs) {
    const auto& o = conv->options;
    const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    fusable = fusable && padding != nullptr && **padding == **first_padding && o.groups() == 1 &&
              o.in_channels() == first.in_channels() && *o.kernel_size() == *first.kernel_size() &&
              *o.stride() == *first.stride() && *o.dilation() == *first.dilation() &&
              c10::get_if<torch::enumtype::kZeros>(&o.padding_mode()) != nullptr;
  }
  if (!fusable) return run_apart();
  std::vector<torch::Tensor> sources;
  for (nn::Conv2dImpl* conv : convs) {
    sources.push_back(conv->weight);
    sources.push_back(conv->bias);
  }
  Stamp stamp = stamp_of(sources);
  if (stamp != source_stamp_ || !weight_.defined()) {
    std::vector<torch::Tensor> weights, biases;
    split_sizes_.clear();
    for (nn::Conv2dImpl* conv : convs) {
      weights.push_back(conv->weight);
      biases.push_back(conv->bias.defined()
                           ? conv->bias
                           : torch::zeros({conv->weight.size(0)}, conv->weight.options()));
      split_sizes_.push_back(conv->weight.size(0));
    }
    weight_ = torch::cat(weights, 0);
    bias_ = torch::cat(biases, 0);
    source_stamp_ = std::move(stamp);
  }
  torch::Tensor y = nn::functional::conv2d(x, weight_,
                                           nn::functional::Conv2dFuncOptions()
                                               .bias(bias_)
                                               .stride(first.stride())
                                               .padding(first.padding())
                                               .dilation(first.dilation()));
  if (relu) torch::relu_(y);
  return y.split_with_sizes(split_sizes_, 1);
}

torch::Tensor to_onednn_layout(const nn::Module& module, const torch::Tensor& x) {
  // Not while tracing for an export: the graph is of dense tensors, which every runtime has.
  if (!runs_folded(module) || !torch::hasMKLDNN() || !x.device().is_cpu() ||
      x.scalar_type() != torch::kFloat32 || x.is_mkldnn() || at::autocast::is_cpu_enabled() ||
      torch::jit::tracer::isTracing())
    return x;
  return x.to_mkldnn();
}

torch::Tensor to_dense_layout(const torch::Tensor& x) { return x.is_mkldnn() ? x.to_dense() : x; }

torch::Tensor transposed_conv_as_conv_weight(const torch::Tensor& transposed_weight) {
  // Output row 2i + a of the transposed convolution (stride 2, padding 1) sums input row
  // i + dy through kernel row a + 1 − 2·dy, for dy ∈ {−1, 0, 1} where that row is in 0…3;
  // the same along columns. Channel o·4 + a·2 + b of the 3×3 convolution computes phase
  // (a, b) of output channel o, which pixel_shuffle(2) puts at (2i + a, 2j + b).
  const std::int64_t in = transposed_weight.size(0), out = transposed_weight.size(1);
  torch::Tensor weight = torch::zeros({out, 2, 2, in, 3, 3}, transposed_weight.options());
  const torch::Tensor by_output = transposed_weight.permute({1, 0, 2, 3});  // (out, in, 4, 4)
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int ky = a + 1 - 2 * dy, kx = b + 1 - 2 * dx;
          if (ky < 0 || ky > 3 || kx < 0 || kx > 3) continue;
          weight.select(1, a).select(1, b).select(2, dy + 1).select(2, dx + 1).copy_(
              by_output.select(2, ky).select(2, kx));
        }
  return weight.reshape({out * 4, in, 3, 3});
}

torch::Tensor FoldedUpsampling::forward(nn::Sequential& block, const torch::Tensor& x) {
  auto* deconv = block->size() == 3 ? block[0]->as<nn::ConvTranspose2d>() : nullptr;
  auto* bn = block->size() == 3 ? block[1]->as<nn::BatchNorm2d>() : nullptr;
  const bool relu = block->size() == 3 && block[2]->as<nn::ReLU>() != nullptr;
  if (deconv == nullptr || bn == nullptr || !relu || !runs_folded(*block) ||
      !bn->options.track_running_stats())
    return block->forward(x);
  const auto& o = deconv->options;
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
  const bool foldable = padding != nullptr && (*padding)->at(0) == 1 && (*padding)->at(1) == 1 &&
                        o.kernel_size()->at(0) == 4 && o.kernel_size()->at(1) == 4 &&
                        o.stride()->at(0) == 2 && o.stride()->at(1) == 2 &&
                        o.output_padding()->at(0) == 0 && o.output_padding()->at(1) == 0 &&
                        o.dilation()->at(0) == 1 && o.dilation()->at(1) == 1 && o.groups() == 1;
  if (!foldable) return block->forward(x);
  Stamp stamp = stamp_of(
      {deconv->weight, deconv->bias, bn->weight, bn->bias, bn->running_mean, bn->running_var});
  if (stamp != source_stamp_ || !weight_.defined()) {
    const auto [scale, shift] = batch_norm_affine(*bn);
    // Each output channel o is 4 channels of the 3×3 convolution (its 4 phases).
    weight_ = transposed_conv_as_conv_weight(deconv->weight) *
              scale.repeat_interleave(4).view({-1, 1, 1, 1});
    const torch::Tensor bias = deconv->bias.defined() ? deconv->bias * scale + shift : shift;
    bias_ = bias.repeat_interleave(4);
    source_stamp_ = std::move(stamp);
  }
  torch::Tensor y = torch::pixel_shuffle(torch::conv2d(x, weight_, bias_, 1, 1), 2);
  return torch::relu_(y);
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
  const torch::Tensor y = folded1_.forward(*conv1_, *bn1_, x, /*relu=*/true);
  torch::Tensor out = folded2_.forward(*conv2_, *bn2_, y, /*relu=*/false);
  const torch::Tensor& shortcut = residual.defined() ? residual : x;
  // In place only without autograd (inference), where nothing keeps `out` for a backward.
  return runs_folded(*this) ? torch::relu_(out.add_(shortcut)) : torch::relu(out + shortcut);
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
