#pragma once
// Building blocks shared by the backbones.

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

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

/// Whether `module` runs as at inference — eval mode (BatchNorm uses its running statistics)
/// and no autograd — where a BatchNorm folded into the convolution before it gives the same
/// outputs (up to rounding) in one op instead of two. Training, and eval with gradients on,
/// run the layers as they are: that is also the reference the folded path is tested against.
bool runs_folded(const torch::nn::Module& module);

/// A convolution with a BatchNorm (and an optional ReLU) folded into its weight and bias, for
/// inference; refolded whenever a source parameter or statistic changed (moved, loaded,
/// trained: its storage or version counter differs), so a cached fold is never stale.
class FoldedConvBn {
 public:
  /// conv + bn (+ relu): at inference one convolution (with ReLU in place) on folded weights,
  /// otherwise the layers themselves.
  torch::Tensor forward(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& bn,
                        const torch::Tensor& x, bool relu);
  /// A conv_bn / conv_bn_relu block (Sequential of Conv2d, BatchNorm2d[, ReLU]).
  torch::Tensor forward(torch::nn::Sequential& block, const torch::Tensor& x);

 private:
  std::vector<std::pair<const void*, std::int64_t>> source_stamp_;
  torch::Tensor weight_, bias_;
  // For input in oneDNN's layout (see to_onednn_layout): the folded weight reordered once
  // into the layout oneDNN's convolution wants, and the bias as a oneDNN tensor.
  torch::Tensor onednn_weight_, onednn_bias_;
};

/// At inference on the CPU in fp32, the ResNet trunk keeps its activations in oneDNN's own
/// (blocked) layout from the first convolution to each stage's output: no reorder before and
/// after every convolution, and the folded weights reordered once. The input converted when
/// that applies (x unchanged otherwise: training, autograd, autocast, GPU, no oneDNN).
torch::Tensor to_onednn_layout(const torch::nn::Module& module, const torch::Tensor& x);
/// x back in the dense (strided) layout, where every op runs.
torch::Tensor to_dense_layout(const torch::Tensor& x);

/// CenterNet's upsampling stage — ConvTranspose2d (kernel 4, stride 2, padding 1) + BN +
/// ReLU — at inference as one 3×3 convolution with 4× the output channels followed by a ×2
/// pixel shuffle: the same sums (each output phase (a, b) of the transposed convolution sees
/// a 3×3 input window through 2×2 of its 4×4 taps), in a form oneDNN runs fast, in fp32 and
/// in bf16 (where the transposed convolution has no fast kernel). Other transposed
/// convolutions run as they are.
class FoldedUpsampling {
 public:
  /// block: Sequential of ConvTranspose2d, BatchNorm2d, ReLU.
  torch::Tensor forward(torch::nn::Sequential& block, const torch::Tensor& x);

 private:
  std::vector<std::pair<const void*, std::int64_t>> source_stamp_;
  torch::Tensor weight_, bias_;
};

/// Sibling convolutions over one input — CenterNet's heads each start with a 3×3 conv on the
/// same features — as one convolution at inference: their weights stacked along the outputs,
/// one im2col instead of one per head, the result split back per convolution (views).
/// Refolded when a source changes, like FoldedConvBn.
class FusedSiblingConvs {
 public:
  /// Each convolution's output on `x` (ReLU'd in place with `relu`). The convolutions must
  /// share input channels, kernel, stride, padding and dilation, with groups 1; otherwise
  /// (and outside inference) they run one by one.
  std::vector<torch::Tensor> forward(const std::vector<torch::nn::Conv2dImpl*>& convs,
                                     const torch::Tensor& x, bool relu);

 private:
  std::vector<std::pair<const void*, std::int64_t>> source_stamp_;
  torch::Tensor weight_, bias_;
  std::vector<std::int64_t> split_sizes_;
};

/// The 3×3 convolution weight (out·4, in, 3, 3) that, followed by pixel_shuffle(2), computes
/// ConvTranspose2d(kernel 4, stride 2, padding 1) with `transposed_weight` (in, out, 4, 4).
torch::Tensor transposed_conv_as_conv_weight(const torch::Tensor& transposed_weight);

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
  FoldedConvBn folded1_, folded2_;
};
TORCH_MODULE(BasicBlock);

/// He et al.'s weight initialisation for convolutions and BN at (1, 0), as torchvision's
/// ResNet: every model here trains from scratch unless weights are loaded.
void init_conv_and_bn(torch::nn::Module& module);

}  // namespace centermask::layers
