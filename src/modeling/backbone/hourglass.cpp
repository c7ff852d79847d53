// Hourglass-104 as CenterNet's large_hourglass builds it (itself CornerNet's): a 7×7 stem and a
// residual to stride 4 with 256 channels, then two stacked hourglass modules — each five
// levels deep (channels 256, 256, 384, 384, 384, 512; two residuals per level, four at the
// bottom; downsampling by a stride-2 residual, upsampling by nearest ×2 and a sum with the
// level's skip branch) followed by a 3×3 conv + BN + ReLU to 256 channels. Between the stacks
// the stem's features and the first stack's output are merged (1×1 conv + BN each, sum, ReLU,
// residual). Every stack's output is a feature map at stride 4: training supervises both
// (intermediate supervision), inference reads the last. Module names are CenterNet's (pre,
// kps, cnvs, inters, inters_, cnvs_), so its checkpoints' backbone tensors keep their names.
// Initialisation is PyTorch's default, as CenterNet leaves it.

#include <fmt/format.h>

#include <array>

#include "modeling/backbone/backbones.h"

namespace centermask {

namespace nn = torch::nn;

namespace {

/// CenterNet's `convolution`: k×k conv (no bias) + BN + ReLU.
class ConvolutionImpl : public nn::Module {
 public:
  ConvolutionImpl(int kernel, int in_channels, int out_channels, int stride = 1) {
    conv_ = register_module("conv", nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, kernel)
                                                   .stride(stride)
                                                   .padding((kernel - 1) / 2)
                                                   .bias(false)));
    bn_ = register_module("bn", nn::BatchNorm2d(out_channels));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return torch::relu(bn_->forward(conv_->forward(x)));
  }

 private:
  nn::Conv2d conv_{nullptr};
  nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(Convolution);

/// CenterNet's `residual`: two 3×3 conv + BN (the first strided), a 1×1 conv + BN projection
/// on the skip path when the shape changes, ReLU after the sum.
class ResidualImpl : public nn::Module {
 public:
  ResidualImpl(int in_channels, int out_channels, int stride = 1) {
    const auto conv3 = [](int in, int out, int s) {
      return nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(s).padding(1).bias(false));
    };
    conv1_ = register_module("conv1", conv3(in_channels, out_channels, stride));
    bn1_ = register_module("bn1", nn::BatchNorm2d(out_channels));
    conv2_ = register_module("conv2", conv3(out_channels, out_channels, 1));
    bn2_ = register_module("bn2", nn::BatchNorm2d(out_channels));
    skip_ = register_module("skip", nn::Sequential());
    if (stride != 1 || in_channels != out_channels) {
      skip_->push_back(
          nn::Conv2d(nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)));
      skip_->push_back(nn::BatchNorm2d(out_channels));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor y = torch::relu(bn1_->forward(conv1_->forward(x)));
    y = bn2_->forward(conv2_->forward(y));
    return torch::relu(y + (skip_->is_empty() ? x : skip_->forward(x)));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential skip_{nullptr};
};
TORCH_MODULE(Residual);

/// CenterNet's make_layer: residual(in → out), then residual(out → out) × (count − 1); the
/// first residual strided by `stride` (make_hg_layer).
nn::Sequential residuals(int in_channels, int out_channels, int count, int stride = 1) {
  nn::Sequential layers;
  layers->push_back(Residual(in_channels, out_channels, stride));
  for (int i = 1; i < count; ++i) layers->push_back(Residual(out_channels, out_channels));
  return layers;
}

/// CenterNet's make_layer_revr: residual(in → in) × (count − 1), then residual(in → out).
nn::Sequential residuals_reversed(int in_channels, int out_channels, int count) {
  nn::Sequential layers;
  for (int i = 1; i < count; ++i) layers->push_back(Residual(in_channels, in_channels));
  layers->push_back(Residual(in_channels, out_channels));
  return layers;
}

/// One hourglass level (CenterNet's kp_module): a skip branch at this resolution (up1) and a
/// branch down one stride (low1, the next level or the bottom's residuals, low3), brought back
/// up by nearest ×2 and added.
class HourglassLevelImpl : public nn::Module {
 public:
  HourglassLevelImpl(const std::vector<int>& dims, const std::vector<int>& counts) {
    const int here = dims[0], below = dims[1];
    up1_ = register_module("up1", residuals(here, here, counts[0]));
    low1_ = register_module("low1", residuals(here, below, counts[0], /*stride=*/2));
    if (dims.size() > 2)
      low2_level_ = register_module(
          "low2",
          std::make_shared<HourglassLevelImpl>(std::vector<int>(dims.begin() + 1, dims.end()),
                                               std::vector<int>(counts.begin() + 1, counts.end())));
    else
      low2_bottom_ = register_module("low2", residuals(below, below, counts[1]));
    low3_ = register_module("low3", residuals_reversed(below, here, counts[0]));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const torch::Tensor skip = up1_->forward(x);
    torch::Tensor low = low1_->forward(x);
    low = low2_level_ ? low2_level_->forward(low) : low2_bottom_->forward(low);
    low = low3_->forward(low);
    // nn.Upsample(scale_factor=2): nearest neighbour.
    return skip + torch::upsample_nearest2d(low, {low.size(2) * 2, low.size(3) * 2});
  }

 private:
  nn::Sequential up1_{nullptr}, low1_{nullptr}, low2_bottom_{nullptr}, low3_{nullptr};
  std::shared_ptr<HourglassLevelImpl> low2_level_;
};

class HourglassImpl : public BackboneImpl {
 public:
  HourglassImpl(int stacks, const std::vector<int>& dims, const std::vector<int>& counts,
                int stem_channels, int output_channels)
      : stacks_(stacks),
        output_channels_(output_channels),
        // Each level below stride 4 halves: inputs must be multiples of 4 · 2^levels.
        size_divisor_(4 << (dims.size() - 1)) {
    const int channels = dims[0];
    pre_ = register_module("pre", nn::Sequential(Convolution(7, 3, stem_channels, 2),
                                                 Residual(stem_channels, channels, 2)));
    kps_ = register_module("kps", nn::ModuleList());
    cnvs_ = register_module("cnvs", nn::ModuleList());
    inters_ = register_module("inters", nn::ModuleList());
    inter_projections_ = register_module("inters_", nn::ModuleList());
    output_projections_ = register_module("cnvs_", nn::ModuleList());
    const auto conv1x1_bn = [](int in, int out) {
      return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)),
                            nn::BatchNorm2d(out));
    };
    for (int s = 0; s < stacks; ++s) {
      kps_->push_back(std::make_shared<HourglassLevelImpl>(dims, counts));
      cnvs_->push_back(Convolution(3, channels, output_channels));
      if (s + 1 < stacks) {
        inters_->push_back(Residual(channels, channels));
        inter_projections_->push_back(conv1x1_bn(channels, channels));
        output_projections_->push_back(conv1x1_bn(output_channels, channels));
      }
    }
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    return forward_stacks(images).back();
  }

  std::vector<torch::Tensor> forward_stacks(const torch::Tensor& images) override {
    torch::Tensor inter = pre_->forward(images);
    std::vector<torch::Tensor> outputs;
    for (int s = 0; s < stacks_; ++s) {
      const torch::Tensor hourglass = kps_[s]->as<HourglassLevelImpl>()->forward(inter);
      outputs.push_back(cnvs_[s]->as<ConvolutionImpl>()->forward(hourglass));
      if (s + 1 < stacks_) {
        inter =
            torch::relu(inter_projections_[s]->as<nn::SequentialImpl>()->forward(inter) +
                        output_projections_[s]->as<nn::SequentialImpl>()->forward(outputs.back()));
        inter = inters_[s]->as<ResidualImpl>()->forward(inter);
      }
    }
    return outputs;
  }

  int num_stacks() const override { return stacks_; }
  ShapeSpec output_shape() const override { return {output_channels_, 4}; }
  int size_divisor() const override { return size_divisor_; }

 private:
  int stacks_;
  int output_channels_;
  int size_divisor_;
  nn::Sequential pre_{nullptr};
  nn::ModuleList kps_{nullptr}, cnvs_{nullptr}, inters_{nullptr};
  nn::ModuleList inter_projections_{nullptr}, output_projections_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_hourglass(int stacks, const std::vector<int>& dims,
                                             const std::vector<int>& counts, int stem_channels,
                                             int output_channels) {
  return std::make_shared<HourglassImpl>(stacks, dims, counts, stem_channels, output_channels);
}

std::shared_ptr<BackboneImpl> make_hourglass104() {
  // CenterNet's HourglassNet: n = 5, dims [256, 256, 384, 384, 384, 512], modules
  // [2, 2, 2, 2, 2, 4], two stacks, stem 128, cnv_dim 256.
  return make_hourglass(2, {256, 256, 384, 384, 384, 512}, {2, 2, 2, 2, 2, 4}, 128, 256);
}

}  // namespace centermask
