// ResNet-18/34/50/101 with CenterNet's upsampling head (msra_resnet): the stride-32 output goes
// through three transposed convolutions (4×4, stride 2) with BN and ReLU, 256 → 128 → 64
// channels, to stride 4.

#include <stdexcept>

#include "modeling/backbone/backbones.h"
#include "modeling/backbone/layers.h"
#include "modeling/backbone/resnet_stages.h"

namespace centermask {

namespace nn = torch::nn;

namespace {

/// 1×1 reduce, 3×3 (stride here, as torchvision's v1.5 and CenterNet), 1×1 expand ×4.
class BottleneckImpl : public nn::Module {
 public:
  static constexpr int kExpansion = 4;
  BottleneckImpl(int in_channels, int planes, int stride) {
    reduce_ = register_module("reduce", layers::conv_bn_relu(in_channels, planes, 1));
    spatial_ = register_module("spatial", layers::conv_bn_relu(planes, planes, 3, stride));
    expand_ = register_module("expand", layers::conv_bn(planes, planes * kExpansion, 1));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual) {
    torch::Tensor y = folded_expand_.forward(
        expand_, folded_spatial_.forward(spatial_, folded_reduce_.forward(reduce_, x)));
    return torch::relu(y + (residual.defined() ? residual : x));
  }

 private:
  nn::Sequential reduce_{nullptr}, spatial_{nullptr}, expand_{nullptr};
  layers::FoldedConvBn folded_reduce_, folded_spatial_, folded_expand_;
};
TORCH_MODULE(Bottleneck);

/// One residual block of either kind with its optional projection of the shortcut.
class ResidualUnitImpl : public nn::Module {
 public:
  ResidualUnitImpl(bool bottleneck, int in_channels, int planes, int stride) {
    const int out_channels = bottleneck ? planes * BottleneckImpl::kExpansion : planes;
    if (bottleneck)
      bottleneck_ = register_module("block", Bottleneck(in_channels, planes, stride));
    else
      basic_ = register_module("block", layers::BasicBlock(in_channels, planes, stride));
    if (stride != 1 || in_channels != out_channels)
      shortcut_ =
          register_module("shortcut", layers::conv_bn(in_channels, out_channels, 1, stride));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor residual = shortcut_ ? folded_shortcut_.forward(shortcut_, x) : x;
    return bottleneck_ ? bottleneck_->forward(x, residual) : basic_->forward(x, residual);
  }

 private:
  Bottleneck bottleneck_{nullptr};
  layers::BasicBlock basic_{nullptr};
  nn::Sequential shortcut_{nullptr};
  layers::FoldedConvBn folded_shortcut_;
};
TORCH_MODULE(ResidualUnit);

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(int depth, int width, bool skip_connections, int output_channels)
      : output_channels_(output_channels) {
    trunk_ = register_resnet_stages(*this, depth, width);
    int channels = trunk_.stage_channels[3];
    const int up_channels[3] = {4 * width, 2 * width, output_channels};
    for (int i = 0; i < 3; ++i) {
      nn::Sequential up(layers::bilinear_upsampler(channels, up_channels[i], 2, false),
                        nn::BatchNorm2d(up_channels[i]), nn::ReLU(nn::ReLUOptions(true)));
      upsample_.push_back(register_module("deconv" + std::to_string(i + 1), up));
      channels = up_channels[i];
      // deconv1 (stride 16) meets layer3, deconv2 layer2, deconv3 layer1.
      if (skip_connections)
        skips_.push_back(
            register_module("skip" + std::to_string(i + 1),
                            layers::conv_bn(trunk_.stage_channels[2 - i], channels, 3)));
    }
    layers::init_conv_and_bn(*this);
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    const std::vector<torch::Tensor> stage_outputs = trunk_.forward(images);
    torch::Tensor x = stage_outputs[3];
    for (std::size_t i = 0; i < upsample_.size(); ++i) {
      x = folded_upsample_[i].forward(upsample_[i], x);
      if (!skips_.empty()) x = x + folded_skips_[i].forward(skips_[i], stage_outputs[2 - i]);
    }
    return x;
  }
  ShapeSpec output_shape() const override { return {output_channels_, 4}; }

 private:
  int output_channels_ = 64;
  ResNetStages trunk_;
  std::vector<nn::Sequential> upsample_;
  std::vector<nn::Sequential> skips_;  // empty without skip connections
  // Their inference forms (layers.h): the same outputs, fewer and faster ops.
  layers::FoldedUpsampling folded_upsample_[3];
  layers::FoldedConvBn folded_skips_[3];
};

}  // namespace

ResNetStages register_resnet_stages(nn::Module& owner, int depth, int width) {
  bool bottleneck = false;
  std::vector<int> blocks_per_stage;
  switch (depth) {
    case 18:
      blocks_per_stage = {2, 2, 2, 2};
      break;
    case 34:
      blocks_per_stage = {3, 4, 6, 3};
      break;
    case 50:
      blocks_per_stage = {3, 4, 6, 3}, bottleneck = true;
      break;
    case 101:
      blocks_per_stage = {3, 4, 23, 3}, bottleneck = true;
      break;
    default:
      throw std::invalid_argument("ResNet depth must be 18, 34, 50 or 101");
  }
  ResNetStages trunk;
  trunk.stem = owner.register_module("stem", layers::conv_bn_relu(3, width, 7, 2));
  int channels = width;
  const int planes[4] = {width, 2 * width, 4 * width, 8 * width};
  for (int stage = 0; stage < 4; ++stage) {
    nn::Sequential units;
    for (int b = 0; b < blocks_per_stage[static_cast<std::size_t>(stage)]; ++b) {
      const int stride = (b == 0 && stage > 0) ? 2 : 1;
      units->push_back(ResidualUnit(bottleneck, channels, planes[stage], stride));
      channels = bottleneck ? planes[stage] * BottleneckImpl::kExpansion : planes[stage];
    }
    trunk.stages.push_back(owner.register_module("layer" + std::to_string(stage + 1), units));
    trunk.stage_channels[stage] = channels;
  }
  return trunk;
}

std::vector<torch::Tensor> ResNetStages::forward(const torch::Tensor& images) {
  // At inference the stages run in oneDNN's layout (layers.h); their outputs leave it.
  torch::Tensor x = layers::to_onednn_layout(*stem, images);
  x = torch::max_pool2d(folded_stem.forward(stem, x), 3, 2, 1);
  std::vector<torch::Tensor> outputs;
  for (nn::Sequential& stage : stages) {
    x = stage->forward(x);
    outputs.push_back(layers::to_dense_layout(x));
  }
  return outputs;
}

std::shared_ptr<BackboneImpl> make_resnet(int depth, int width, bool skip_connections,
                                          int output_channels) {
  return std::make_shared<ResNetImpl>(depth, width, skip_connections,
                                      output_channels > 0 ? output_channels : width);
}

}  // namespace centermask
