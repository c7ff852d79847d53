#pragma once
// Mixed precision (autocast) hands the losses network outputs in bf16 or fp16. The losses work
// in float32: their logs, sums over many cells and sampling grids need more than bf16's 8
// significant bits. Each method's compute_losses widens its outputs with these first; the
// conversion is differentiable, so gradients flow back to the reduced-precision graph.
#include <torch/torch.h>

#include <vector>

namespace centermask {

/// bf16 or fp16: what autocast gives on the CPU or the GPU.
inline bool is_reduced_precision(torch::Dtype dtype) {
  return dtype == torch::kBFloat16 || dtype == torch::kHalf;
}

/// `t` in float32 when it is a reduced-precision float; otherwise `t` itself (undefined
/// tensors and integer or float64 tensors are left alone).
inline torch::Tensor widened_to_float32(const torch::Tensor& t) {
  if (!t.defined() || !is_reduced_precision(t.scalar_type())) return t;
  return t.to(torch::kFloat32);
}

/// Widens each tensor in place (per-level outputs).
inline void widen_to_float32(std::vector<torch::Tensor>& tensors) {
  for (torch::Tensor& t : tensors) t = widened_to_float32(t);
}

}  // namespace centermask
