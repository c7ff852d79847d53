#include "modeling/layers/losses.h"

namespace centermask {

namespace F = torch::nn::functional;

torch::Tensor focal_heatmap_loss(const torch::Tensor& logits, const torch::Tensor& target) {
  const torch::Tensor p = torch::sigmoid(logits).clamp(1e-4, 1 - 1e-4);
  const torch::Tensor positive = target.eq(1).to(p.scalar_type());
  const torch::Tensor negative = 1 - positive;
  const torch::Tensor positive_loss = (torch::log(p) * (1 - p).pow(2) * positive).sum();
  const torch::Tensor negative_loss =
      (torch::log(1 - p) * p.pow(2) * (1 - target).pow(4) * negative).sum();
  return -(positive_loss + negative_loss) / positive.sum().clamp_min(1);
}

torch::Tensor center_l1_loss(const torch::Tensor& prediction, const torch::Tensor& cell,
                             const torch::Tensor& target, const torch::Tensor& valid,
                             std::int64_t num_objects) {
  const std::int64_t n = prediction.size(0);
  const torch::Tensor flat = prediction.reshape({n, 2, -1});
  const torch::Tensor index = cell.unsqueeze(1).expand({n, 2, cell.size(1)});
  const torch::Tensor at_cells = flat.gather(2, index).permute({0, 2, 1});  // (N, K, 2)
  const torch::Tensor l1 = (at_cells - target).abs() * valid.unsqueeze(2);
  return l1.sum() / static_cast<double>(std::max<std::int64_t>(num_objects, 1));
}

torch::Tensor mean_object_bce(const torch::Tensor& probability, const torch::Tensor& target,
                              const torch::Tensor& inside) {
  if (probability.size(0) == 0) return probability.new_zeros({});
  // BCE on probabilities (a product of sigmoids has no logit form); torch clamps log at −100.
  const torch::Tensor weight = inside.to(probability.scalar_type());
  const torch::Tensor bce = F::binary_cross_entropy(
      probability, target, F::BinaryCrossEntropyFuncOptions().reduction(torch::kNone));
  return ((bce * weight).sum({1, 2}) / weight.sum({1, 2}).clamp_min(1)).mean();
}

}  // namespace centermask
