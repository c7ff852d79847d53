#pragma once
// Modulated deformable convolution (DCNv2, Zhu et al. 2019), as CenterNet's DLA-34 uses it in
// its up path: each of a k×k kernel's taps samples the input at its regular place plus a learned
// offset (bilinear, zero outside the image), scaled by a learned modulation in [0, 1].
//
// Layout (DCNv2's and torchvision's deform_conv2d's): for deformable group g and tap
// t = i·kw + j, offset channel 2·(g·kh·kw + t) holds the tap's row shift and the next one its
// column shift; mask channel g·kh·kw + t its modulation. The input's channels are split into
// `deformable_groups` consecutive blocks, each with its own offsets and masks.
//
// Three implementations of the same sums:
// - modulated_deform_conv2d: the op. On the CPU (float / double) a kernel of ours: bilinear
//   sampling into columns (C·kh·kw rows × output positions), then one GEMM per group; backward
//   for input, offset, mask, weight and bias; parallel over rows and output positions. On other
//   devices the sampling runs as LibTorch's grid_sample (see modulated_deform_conv2d_sampled),
//   whose CUDA kernels and autograd LibTorch provides.
// - modulated_deform_conv2d_sampled: the columns from grid_sample, differentiable by autograd.
// - modulated_deform_conv2d_reference: the definition, one output element at a time in double,
//   no columns: what the tests hold the others to.

#include <torch/torch.h>

namespace centermask {

struct DeformConvGeometry {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dilation_h = 1, dilation_w = 1;
  /// Ordinary convolution groups: input and output channels split in this many blocks.
  int groups = 1;
  /// Input channel blocks with their own offsets and masks.
  int deformable_groups = 1;
};

/// input (N, C, H, W); offset (N, 2·dg·kh·kw, Ho, Wo); mask (N, dg·kh·kw, Ho, Wo), usually a
/// sigmoid; weight (Cout, C / groups, kh, kw); bias (Cout) or undefined. Returns (N, Cout, Ho,
/// Wo) with Ho = (H + 2·pad_h − dilation_h·(kh − 1) − 1) / stride_h + 1 (and Wo alike).
/// Differentiable in all five tensors. Half-precision inputs (autocast) are computed in float;
/// the result is float then (double when any input is double). Throws std::invalid_argument
/// naming the tensor and the shape expected when shapes disagree.
torch::Tensor modulated_deform_conv2d(const torch::Tensor& input, const torch::Tensor& offset,
                                      const torch::Tensor& mask, const torch::Tensor& weight,
                                      const torch::Tensor& bias,
                                      const DeformConvGeometry& geometry);

/// The same result with the sampling done by grid_sample (any device, any floating dtype,
/// differentiable through LibTorch's autograd).
torch::Tensor modulated_deform_conv2d_sampled(
    const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& mask,
    const torch::Tensor& weight, const torch::Tensor& bias, const DeformConvGeometry& geometry);

/// The definition, computed element by element in double on the CPU (forward only; small
/// shapes). Returns a double tensor.
torch::Tensor modulated_deform_conv2d_reference(
    const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& mask,
    const torch::Tensor& weight, const torch::Tensor& bias, const DeformConvGeometry& geometry);

/// DCNv2's `DCN` layer, as CenterNet builds it: a k×k modulated deformable convolution (with
/// bias) whose offsets and masks come from an ordinary k×k convolution of the same input
/// (`conv_offset_mask`, 3·dg·k·k outputs: row shifts and column shifts concatenated, then the
/// masks' logits), initialised to zero — an untrained layer is the plain convolution with every
/// tap weighted 0.5. Parameter names are DCNv2's (weight, bias, conv_offset_mask.*), so
/// CenterNet's checkpoints load.
class ModulatedDeformConv2dImpl : public torch::nn::Module {
 public:
  ModulatedDeformConv2dImpl(int in_channels, int out_channels, int kernel, int stride = 1,
                            int padding = -1, int dilation = 1, int deformable_groups = 1);
  torch::Tensor forward(const torch::Tensor& x);
  /// DCNv2's initialisation (also after a backbone's own initialisation pass).
  void reset_parameters();

  const DeformConvGeometry& geometry() const { return geometry_; }
  torch::Tensor weight, bias;
  torch::nn::Conv2d conv_offset_mask{nullptr};

 private:
  DeformConvGeometry geometry_;
};
TORCH_MODULE(ModulatedDeformConv2d);

}  // namespace centermask
