#pragma once
// Loss terms shared by the dense detectors.

#include <torch/torch.h>

namespace centermask {

/// CenterNet's penalty-reduced focal loss (α = 2, β = 4) on sigmoid(logits) clamped to
/// [1e-4, 1 − 1e-4]: positives (target exactly 1) (1−p)^α·log p, negatives
/// (1−y)^β·p^α·log(1−p); summed, negated and divided by the number of positives (by 1 when
/// there are none, leaving the negative term). On the CPU one fused pass computes the value
/// and the gradient (elsewhere, and for the tests, the op-by-op reference below).
torch::Tensor focal_heatmap_loss(const torch::Tensor& logits, const torch::Tensor& target);
/// The same written op by op with autograd: the reference the fused kernel is tested against.
torch::Tensor focal_heatmap_loss_reference(const torch::Tensor& logits,
                                           const torch::Tensor& target);

/// L1 between dense predictions (N, 2, H, W) read at (N, K) cells and (N, K, 2) targets,
/// weighted by (N, K) `valid`, summed over both coordinates and divided by max(num_objects, 1).
torch::Tensor center_l1_loss(const torch::Tensor& prediction, const torch::Tensor& cell,
                             const torch::Tensor& target, const torch::Tensor& valid,
                             std::int64_t num_objects);

/// L1 between dense predictions (N, 2, H, W) and dense targets (N, 2, H, W), weighted per cell
/// by (N, H, W) `weight` (each object's weights summing to 1), summed and divided by
/// max(num_objects, 1): center_l1_loss's scale, spread over each object's cells.
torch::Tensor dense_l1_loss(const torch::Tensor& prediction, const torch::Tensor& target,
                            const torch::Tensor& weight, std::int64_t num_objects);

/// TTFNet's box loss: 1 − GIoU between the box predicted at each cell and its object's box,
/// weighted per cell by (N, H, W) `weight` (each object's weights summing to 1), summed and
/// divided by max(num_objects, 1). Boxes come as (N, 2, H, W) offsets from the cell to the
/// center and (N, 2, H, W) sizes, in cells; predicted sizes below 0 count as 0. Scale-free,
/// unlike the L1 on sizes, so small objects weigh as much as large ones.
torch::Tensor dense_giou_loss(const torch::Tensor& offset, const torch::Tensor& size,
                              const torch::Tensor& target_offset, const torch::Tensor& target_size,
                              const torch::Tensor& weight, std::int64_t num_objects);
/// The same, one cell at a time in plain loops: the reference the tensor version is tested
/// against.
double dense_giou_loss_reference(const torch::Tensor& offset, const torch::Tensor& size,
                                 const torch::Tensor& target_offset,
                                 const torch::Tensor& target_size, const torch::Tensor& weight,
                                 std::int64_t num_objects);

/// Mean over objects of the Dice loss 1 − 2·Σ p·t / (Σ p² + Σ t²) over each object's `inside`
/// pixels (M, H, W), between probabilities and soft targets; 0 when M = 0; an object whose
/// sums are 0 contributes 0. Weighted by (M) `object_weight` like mean_object_bce. Dice scores
/// the overlap of the whole mask, what mask IoU measures, where BCE scores each pixel alone.
torch::Tensor mean_object_dice(const torch::Tensor& probability, const torch::Tensor& target,
                               const torch::Tensor& inside,
                               const torch::Tensor& object_weight = {});

/// Mean over objects of the mean binary cross-entropy over each object's `inside` pixels,
/// between probabilities (M, H, W) and soft targets (M, H, W); 0 when M = 0. With (M)
/// `object_weight` the mean over objects is weighted by it.
torch::Tensor mean_object_bce(const torch::Tensor& probability, const torch::Tensor& target,
                              const torch::Tensor& inside, const torch::Tensor& object_weight = {});

/// RetinaNet's sigmoid focal loss, FCOS's classification loss: logits (M, C) and labels (M,
/// int64: the class index, or −1 for background). Per element, with p = sigmoid(logit):
/// −α (1 − p)^γ log p for the labelled class, −(1 − α) p^γ log(1 − p) for every other; the
/// sum over all elements (the caller divides by the number of positives, as FCOS).
torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                 double alpha = 0.25, double gamma = 2.0);

/// How ltrb_iou_loss scores one pair of boxes.
enum class IouLossKind {
  kLogIou,  ///< −log IoU (UnitBox; FCOS's "iou")
  kGiou,    ///< 1 − GIoU (FCOS's "giou")
};

/// FCOS's box loss between predicted and target distances (M, 4) from a location to the
/// box's left, top, right and bottom sides (both ≥ 0 for a box around the location),
/// weighted by (M) `weight` (FCOS: the centerness targets) and divided by its sum (by 1 when
/// the sum is 0). Predicted distances below 0 count as 0.
torch::Tensor ltrb_iou_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                            const torch::Tensor& weight, IouLossKind kind);

/// PolarMask's polar IoU loss between predicted and target ray lengths (M, n) from each
/// location: log(Σ_k max(d_k, d*_k) / Σ_k min(d_k, d*_k)) per location (the polygons' IoU
/// approximated ray by ray), weighted by (M) `weight` (PolarMask: the polar centerness
/// targets) and divided by its sum (by 1 when the sum is 0). Lengths must be > 0 (the head's
/// exp makes them so).
torch::Tensor polar_iou_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                             const torch::Tensor& weight);

}  // namespace centermask
