#pragma once
// Copies of host vectors as tensors on a device: the per-object indices the decoding and
// the mask loss compute on the host (regions come from box_cell_region there).

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace centermask {

/// A 1-D int64 copy of `values` on `device`.
inline torch::Tensor int64_tensor(const std::vector<std::int64_t>& values,
                                  const torch::Device& device) {
  return torch::from_blob(const_cast<std::int64_t*>(values.data()),
                          {static_cast<std::int64_t>(values.size())}, torch::kInt64)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace centermask
