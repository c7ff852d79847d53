#pragma once
// Peak extraction for center heatmaps: a cell is a peak when it is the maximum of its 3×3
// neighbourhood (CenterNet's max-pool "NMS"), and the K highest peaks over all classes are
// kept per image. Works on logits: the sigmoid is monotonic, so it is applied to the K kept
// values only.

#include <torch/torch.h>

namespace centermask {

struct HeatmapPeaks {
  torch::Tensor logit;  ///< (N, K) descending
  torch::Tensor index;  ///< (N, K) int64 into the flattened (C, H, W) map
};

/// The fast path: a single pass per class plane on CPU tensors (float32), candidates checked
/// against the current K-th best before their neighbourhood. Falls back to
/// top_k_peaks_reference for other devices and types. K = min(k, C·H·W).
HeatmapPeaks top_k_peaks(const torch::Tensor& logits, int k);

/// The same with tensor operations (max-pool, compare, top-k): the reference, and the path on
/// GPUs. Equal values may come out in a different order.
HeatmapPeaks top_k_peaks_reference(const torch::Tensor& logits, int k);

}  // namespace centermask
