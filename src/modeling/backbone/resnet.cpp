// ResNet-18/34/50/101 with CenterNet's upsampling head (msra_resnet): the stride-32 output goes
// through three transposed convolutions (4×4, stride 2) with BN and ReLU, 256 → 128 → 64
// channels, to stride 4.

#include <stdexcept>

#include "modeling/backbone/backbones.h"
#include "modeling/backbone/layers.h"

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
    torch::Tensor y = expand_->forward(spatial_->forward(reduce_->forward(x)));
    return torch::relu(y + (residual.defined() ? residual : x));
  }

 private:
  nn::Sequential reduce_{nullptr}, spatial_{nullptr}, expand_{nullptr};
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
    torch::Tensor residual = shortcut_ ? shortcut_->forward(x) : x;
    return bottleneck_ ? bottleneck_->forward(x, residual) : basic_->forward(x, residual);
  }

 private:
  Bottleneck bottleneck_{nullptr};
  layers::BasicBlock basic_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(ResidualUnit);

class ResNetImpl : public BackboneImpl {
 public:
  ResNetImpl(bool bottleneck, std::vector<int> blocks_per_stage, int width, bool skip_connections,
             int output_channels)
      : output_channels_(output_channels) {
    stem_ = register_module("stem", layers::conv_bn_relu(3, width, 7, 2));
    int channels = width;
    const int planes[4] = {width, 2 * width, 4 * width, 8 * width};
    int stage_channels[4] = {0, 0, 0, 0};
    for (int stage = 0; stage < 4; ++stage) {
      nn::Sequential units;
      for (int b = 0; b < blocks_per_stage[static_cast<std::size_t>(stage)]; ++b) {
        const int stride = (b == 0 && stage > 0) ? 2 : 1;
        units->push_back(ResidualUnit(bottleneck, channels, planes[stage], stride));
        channels = bottleneck ? planes[stage] * BottleneckImpl::kExpansion : planes[stage];
      }
      stages_.push_back(register_module("layer" + std::to_string(stage + 1), units));
      stage_channels[stage] = channels;
    }
    const int up_channels[3] = {4 * width, 2 * width, output_channels};
    for (int i = 0; i < 3; ++i) {
      nn::Sequential up(layers::bilinear_upsampler(channels, up_channels[i], 2, false),
                        nn::BatchNorm2d(up_channels[i]), nn::ReLU(nn::ReLUOptions(true)));
      upsample_.push_back(register_module("deconv" + std::to_string(i + 1), up));
      channels = up_channels[i];
      // deconv1 (stride 16) meets layer3, deconv2 layer2, deconv3 layer1.
      if (skip_connections)
        skips_.push_back(register_module("skip" + std::to_string(i + 1),
                                         layers::conv_bn(stage_channels[2 - i], channels, 3)));
    }
    layers::init_conv_and_bn(*this);
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    torch::Tensor x = torch::max_pool2d(stem_->forward(images), 3, 2, 1);
    std::vector<torch::Tensor> stage_outputs;
    for (auto& stage : stages_) {
      x = stage->forward(x);
      if (!skips_.empty()) stage_outputs.push_back(x);
    }
    for (std::size_t i = 0; i < upsample_.size(); ++i) {
      x = upsample_[i]->forward(x);
      if (!skips_.empty()) x = x + skips_[i]->forward(stage_outputs[2 - i]);
    }
    return x;
  }
  ShapeSpec output_shape() const override { return {output_channels_, 4}; }

 private:
  int output_channels_ = 64;
  nn::Sequential stem_{nullptr};
  std::vector<nn::Sequential> stages_;
  std::vector<nn::Sequential> upsample_;
  std::vector<nn::Sequential> skips_;  // empty without skip connections
};

}  // namespace

std::shared_ptr<BackboneImpl> make_resnet(int depth, int width, bool skip_connections,
                                          int output_channels) {
  const int out = output_channels > 0 ? output_channels : width;
  switch (depth) {
    case 18:
      return std::make_shared<ResNetImpl>(false, std::vector<int>{2, 2, 2, 2}, width,
                                          skip_connections, out);
    case 34:
      return std::make_shared<ResNetImpl>(false, std::vector<int>{3, 4, 6, 3}, width,
                                          skip_connections, out);
    case 50:
      return std::make_shared<ResNetImpl>(true, std::vector<int>{3, 4, 6, 3}, width,
                                          skip_connections, out);
    case 101:
      return std::make_shared<ResNetImpl>(true, std::vector<int>{3, 4, 23, 3}, width,
                                          skip_connections, out);
    default:
      throw std::invalid_argument("ResNet depth must be 18, 34, 50 or 101");
  }
}

}  // namespace centermask
