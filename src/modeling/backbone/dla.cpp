// DLA-34 (Yu et al., "Deep Layer Aggregation") as CenterNet's pose_dla_dcn builds it: a base of
// levels [1, 1, 1, 2, 2, 1] with channels [16, 32, 64, 128, 256, 512] (BasicBlocks, Tree/Root
// aggregation), then DLAUp and IDAUp back to stride 4 with 64 channels. The up path's
// projection and node convolutions are CenterNet's DeformConv — a 3×3 modulated deformable
// convolution (DCNv2) + BN + ReLU — in `dla34`, and a plain 3×3 conv + BN + ReLU in
// `dla34_plain`.

#include <array>

#include "centermask/modeling/deform_conv.h"
#include "modeling/backbone/backbones.h"
#include "modeling/backbone/layers.h"

namespace centermask {

namespace nn = torch::nn;

namespace {

/// Aggregates its children by concatenation, a 1×1 conv, BN and ReLU (DLA-34 has no root
/// residual).
class RootImpl : public nn::Module {
 public:
  RootImpl(int in_channels, int out_channels) {
    conv_bn_ = register_module("conv_bn", layers::conv_bn(in_channels, out_channels, 1));
  }
  torch::Tensor forward(const std::vector<torch::Tensor>& children) {
    return torch::relu(conv_bn_->forward(torch::cat(children, 1)));
  }

 private:
  nn::Sequential conv_bn_{nullptr};
};
TORCH_MODULE(Root);

/// DLA's hierarchical aggregation tree (pose_dla_dcn.Tree with root_kernel_size 1, no
/// dilation, no root residual).
class TreeImpl : public nn::Module {
 public:
  TreeImpl(int levels, int in_channels, int out_channels, int stride, bool level_root,
           int root_dim = 0)
      : levels_(levels), level_root_(level_root), stride_(stride) {
    if (root_dim == 0) root_dim = 2 * out_channels;
    if (level_root) root_dim += in_channels;
    if (levels == 1) {
      block1_ = register_module("tree1", layers::BasicBlock(in_channels, out_channels, stride));
      block2_ = register_module("tree2", layers::BasicBlock(out_channels, out_channels, 1));
      root_ = register_module("root", Root(root_dim, out_channels));
    } else {
      tree1_ = register_module("tree1", std::make_shared<TreeImpl>(levels - 1, in_channels,
                                                                   out_channels, stride, false));
      tree2_ = register_module(
          "tree2", std::make_shared<TreeImpl>(levels - 1, out_channels, out_channels, 1, false,
                                              root_dim + out_channels));
    }
    // A nested tree's children compute their own residuals, so only a leaf needs the projection.
    if (levels == 1 && in_channels != out_channels)
      project_ = register_module("project", layers::conv_bn(in_channels, out_channels, 1));
  }

  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor> children = {}) {
    torch::Tensor bottom = stride_ > 1 ? torch::max_pool2d(x, stride_, stride_) : x;
    if (level_root_) children.push_back(bottom);
    if (levels_ == 1) {
      torch::Tensor residual = project_ ? project_->forward(bottom) : bottom;
      torch::Tensor x1 = block1_->forward(x, residual);
      torch::Tensor x2 = block2_->forward(x1);
      std::vector<torch::Tensor> inputs{x2, x1};
      inputs.insert(inputs.end(), children.begin(), children.end());
      return root_->forward(inputs);
    }
    torch::Tensor x1 = tree1_->forward(x);
    children.push_back(x1);
    return tree2_->forward(x1, std::move(children));
  }

 private:
  int levels_;
  bool level_root_;
  int stride_;
  layers::BasicBlock block1_{nullptr}, block2_{nullptr};
  Root root_{nullptr};
  std::shared_ptr<TreeImpl> tree1_, tree2_;
  nn::Sequential project_{nullptr};
};

/// CenterNet's DeformConv: a 3×3 modulated deformable convolution (with bias) + BN + ReLU,
/// under CenterNet's names (conv.*, actf.0.*) so that its checkpoints load.
class DeformConvBlockImpl : public nn::Module {
 public:
  DeformConvBlockImpl(int in_channels, int out_channels) {
    conv_ = register_module("conv", ModulatedDeformConv2d(in_channels, out_channels, 3));
    activation_ = register_module(
        "actf", nn::Sequential(nn::BatchNorm2d(out_channels), nn::ReLU(nn::ReLUOptions(true))));
  }
  torch::Tensor forward(const torch::Tensor& x) { return activation_->forward(conv_->forward(x)); }
  /// DCNv2's initialisation, after the backbone's pass over its Conv2d modules (which would
  /// otherwise give the offsets random weights).
  void reset_deformable() { conv_->reset_parameters(); }

 private:
  ModulatedDeformConv2d conv_{nullptr};
  nn::Sequential activation_{nullptr};
};
TORCH_MODULE(DeformConvBlock);

/// A 3×3 conv + BN + ReLU of the up path: deformable (DeformConvBlock) or plain.
class UpPathConv {
 public:
  UpPathConv(nn::Module& owner, const std::string& name, int in_channels, int out_channels,
             bool deformable) {
    if (deformable)
      deformable_ = owner.register_module(name, DeformConvBlock(in_channels, out_channels));
    else
      plain_ = owner.register_module(name, layers::conv_bn_relu(in_channels, out_channels, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return deformable_ ? deformable_->forward(x) : plain_->forward(x);
  }

 private:
  DeformConvBlock deformable_{nullptr};
  nn::Sequential plain_{nullptr};
};

/// Iterative deep aggregation upward: brings layers[start+1 .. end) to layers[start]'s
/// resolution one by one (project to `out_channels`, bilinear-initialised depthwise upsample,
/// add the previous layer, 3×3 conv node), in place.
class IdaUpImpl : public nn::Module {
 public:
  IdaUpImpl(int out_channels, const std::vector<int>& channels, const std::vector<int>& up_factors,
            bool deformable) {
    for (std::size_t i = 1; i < channels.size(); ++i) {
      const std::string n = std::to_string(i);
      project_.emplace_back(*this, "proj_" + n, channels[i], out_channels, deformable);
      upsample_.push_back(register_module(
          "up_" + n, layers::bilinear_upsampler(out_channels, out_channels, up_factors[i],
                                                /*depthwise=*/true)));
      node_.emplace_back(*this, "node_" + n, out_channels, out_channels, deformable);
    }
  }
  void forward(std::vector<torch::Tensor>& layers, std::size_t start, std::size_t end) {
    for (std::size_t i = start + 1; i < end; ++i) {
      const std::size_t j = i - start - 1;
      torch::Tensor up = upsample_[j]->forward(project_[j].forward(layers[i]));
      layers[i] = node_[j].forward(up + layers[i - 1]);
    }
  }

 private:
  std::vector<UpPathConv> project_, node_;
  std::vector<nn::ConvTranspose2d> upsample_;
};
TORCH_MODULE(IdaUp);

class Dla34Impl : public BackboneImpl {
 public:
  explicit Dla34Impl(bool deformable) {
    const std::array<int, 6> ch{16, 32, 64, 128, 256, 512};
    base_ = register_module("base_layer", layers::conv_bn_relu(3, ch[0], 7));
    level0_ = register_module("level0", layers::conv_bn_relu(ch[0], ch[0], 3));
    level1_ = register_module("level1", layers::conv_bn_relu(ch[0], ch[1], 3, 2));
    levels_.push_back(
        register_module("level2", std::make_shared<TreeImpl>(1, ch[1], ch[2], 2, false)));
    levels_.push_back(
        register_module("level3", std::make_shared<TreeImpl>(2, ch[2], ch[3], 2, true)));
    levels_.push_back(
        register_module("level4", std::make_shared<TreeImpl>(2, ch[3], ch[4], 2, true)));
    levels_.push_back(
        register_module("level5", std::make_shared<TreeImpl>(1, ch[4], ch[5], 2, true)));

    // DLAUp over levels 2..5 (channels 64..512, scales 1, 2, 4, 8), as pose_dla_dcn.DLAUp.
    std::vector<int> channels{ch[2], ch[3], ch[4], ch[5]};
    std::vector<int> in_channels = channels;
    std::vector<int> scales{1, 2, 4, 8};
    const int n = static_cast<int>(channels.size());
    for (int i = 0; i < n - 1; ++i) {
      const int j = n - i - 2;
      std::vector<int> ins(in_channels.begin() + j, in_channels.end());
      std::vector<int> ups;
      for (int s = j; s < n; ++s)
        ups.push_back(scales[static_cast<std::size_t>(s)] / scales[static_cast<std::size_t>(j)]);
      dla_up_.push_back(
          register_module("dla_up_ida_" + std::to_string(i),
                          IdaUp(channels[static_cast<std::size_t>(j)], ins, ups, deformable)));
      for (int s = j + 1; s < n; ++s) {
        scales[static_cast<std::size_t>(s)] = scales[static_cast<std::size_t>(j)];
        in_channels[static_cast<std::size_t>(s)] = channels[static_cast<std::size_t>(j)];
      }
    }
    // IDAUp over DLAUp's outputs at strides 4, 8, 16 down to stride 4.
    ida_up_ = register_module("ida_up", IdaUp(ch[2], std::vector<int>{ch[2], ch[3], ch[4]},
                                              std::vector<int>{1, 2, 4}, deformable));
    layers::init_conv_and_bn(*this);
    for (auto& child : modules(/*include_self=*/false))
      if (auto* block = child->as<DeformConvBlockImpl>()) block->reset_deformable();
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    // Levels 0..5 at strides 1..32; only levels 2..5 feed the up path.
    torch::Tensor x = level1_->forward(level0_->forward(base_->forward(images)));
    std::vector<torch::Tensor> features;
    for (auto& level : levels_) {
      x = level->forward(x);
      features.push_back(x);
    }
    // DLAUp: each step aggregates the deepest levels into the next shallower one; outputs are
    // collected shallowest first (strides 4, 8, 16, 32).
    std::vector<torch::Tensor> up_outputs{features.back()};
    for (std::size_t i = 0; i + 1 < features.size(); ++i) {
      dla_up_[i]->forward(features, features.size() - i - 2, features.size());
      up_outputs.insert(up_outputs.begin(), features.back());
    }
    std::vector<torch::Tensor> pyramid(up_outputs.begin(), up_outputs.begin() + 3);
    ida_up_->forward(pyramid, 0, pyramid.size());
    return pyramid.back();
  }
  ShapeSpec output_shape() const override { return {64, 4}; }

 private:
  nn::Sequential base_{nullptr}, level0_{nullptr}, level1_{nullptr};
  std::vector<std::shared_ptr<TreeImpl>> levels_;
  std::vector<IdaUp> dla_up_;
  IdaUp ida_up_{nullptr};
};

}  // namespace

std::shared_ptr<BackboneImpl> make_dla34(bool deformable) {
  return std::make_shared<Dla34Impl>(deformable);
}

}  // namespace centermask
