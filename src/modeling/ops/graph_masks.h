#pragma once
// Mask assembly (assemble_masks, mask_assembly.h) as whole-tensor operations of fixed shapes,
// for the decoding of exported graphs (MetaArchitectureImpl::decoded_outputs): each object's
// probability computed over the whole mask map (masked to its block) instead of over its own
// block, its mask quality, and the probability resampled onto an M×M grid over its block —
// what the deploy side pastes (include/centermask/deploy/exported_detections.h).

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace centermask {

struct GraphMaskInput {
  /// (N, K) each object's box in mask cells: center and size (size ≥ 0).
  torch::Tensor center_x, center_y, width, height;
  /// (N, K, S, S) local shape logits; undefined = saliency only.
  torch::Tensor shape_logits;
  /// (N, 1 or C, Hm, Wm) saliency logits; undefined = shape only.
  torch::Tensor saliency_logits;
  torch::Tensor class_id;  ///< (N, K) int64: the saliency plane when class-specific
  std::int64_t map_height = 0, map_width = 0;  ///< Hm, Wm
  float mask_threshold = 0.4f;
  int mask_size = 56;      ///< M
  double mask_stride = 4;  ///< input pixels per mask cell
};

struct GraphMasks {
  torch::Tensor masks;       ///< (N, K, M, M) probabilities
  torch::Tensor mask_boxes;  ///< (N, K, 4) the block's cells in input pixels
  torch::Tensor quality;     ///< (N, K) mask_quality over the block
};

/// The same cells, probabilities and quality as assemble_masks with clip_margin 1 and
/// mask_quality; the M×M grid's cell i centered (i + 0.5)/M across the block, read bilinearly
/// with the block's edges replicated (mask_in_original's sampling).
GraphMasks assemble_masks_in_graph(const GraphMaskInput& input);

/// A masked method's exported outputs (decoded_outputs): boxes, scores, classes, masks,
/// mask_boxes and count, the `valid` detections first, highest score first — the score times
/// its mask's quality with `mask_quality_scoring` (predict's rescoring and re-sort).
std::vector<std::pair<std::string, torch::Tensor>> ranked_mask_detections(
    const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& classes,
    const torch::Tensor& valid, const GraphMasks& masks, bool mask_quality_scoring);

/// Rows of `t` (N, K, ...) in the order `order` (N, K') gives.
torch::Tensor gather_rows(const torch::Tensor& t, const torch::Tensor& order);

}  // namespace centermask
