// CenterMask's decoding as tensor operations of fixed shapes, for exported graphs
// (`centermask export --postprocess on`). It computes what predict() (centermask_inference.cpp)
// keeps, with every step a whole-tensor operation that ONNX has: peaks by max-pool and TopK
// instead of the peak scan, and the masks of modeling/ops/graph_masks.h — the deploy side
// pastes them (include/centermask/deploy/exported_detections.h).

#include <limits>

#include "centermask/modeling/methods/centermask/centermask.h"
#include "modeling/ops/graph_masks.h"

namespace centermask {

namespace {

// Gathers per-object rows of `map` (N, C, H·W) at `cell` (N, K): (N, C, K).
torch::Tensor gather_cells(const torch::Tensor& map, const torch::Tensor& cell) {
  const std::int64_t n = map.size(0), c = map.size(1), k = cell.size(1);
  return map.reshape({n, c, -1}).gather(2, cell.unsqueeze(1).expand({n, c, k}));
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> CenterMaskImpl::decoded_outputs(
    const MethodOutputs& method_outputs, const PredictOptions& options, int mask_size) const {
  const CenterMaskOutputs& o =
      method_cast<CenterMaskMethodOutputs>(method_outputs, "CenterMask").outputs;
  const torch::Tensor logits = o.heatmap_logits.to(torch::kFloat32);
  const std::int64_t n = logits.size(0), classes = logits.size(1);
  const std::int64_t h = logits.size(2), w = logits.size(3);
  const std::int64_t k = std::min<std::int64_t>(options.top_k, classes * h * w);
  const double stride = feature_shape().stride_px;
  const double mask_per_cell = stride / options_.saliency_stride;

  // Peaks: a cell equal to its 3×3 maximum (top_k_peaks_reference), the K best over classes.
  const torch::Tensor pooled = torch::max_pool2d(logits, 3, 1, 1);
  const torch::Tensor not_a_peak = torch::full({}, -std::numeric_limits<float>::infinity());
  const torch::Tensor peaks = torch::where(logits == pooled, logits, not_a_peak);
  auto [peak_logit, index] = peaks.reshape({n, -1}).topk(k, 1);
  const torch::Tensor score = torch::sigmoid(peak_logit);  // 0 where fewer than K peaks
  const torch::Tensor class_id = torch::div(index, h * w, "floor");
  const torch::Tensor cell = index - class_id * (h * w);
  const torch::Tensor row = torch::div(cell, w, "floor");
  const torch::Tensor column = cell - row * w;

  const torch::Tensor offset = gather_cells(o.offset.to(torch::kFloat32), cell);  // (N, 2, K)
  const torch::Tensor size = torch::relu(gather_cells(o.size.to(torch::kFloat32), cell));
  const torch::Tensor center_x = column.to(torch::kFloat32) + offset.select(1, 0);
  const torch::Tensor center_y = row.to(torch::kFloat32) + offset.select(1, 1);
  const torch::Tensor width = size.select(1, 0), height = size.select(1, 1);
  torch::Tensor boxes =
      torch::stack({(center_x - 0.5 * width) * stride, (center_y - 0.5 * height) * stride,
                    (center_x + 0.5 * width) * stride, (center_y + 0.5 * height) * stride},
                   2);  // (N, K, 4)

  GraphMaskInput masks_input;
  masks_input.center_x = center_x * mask_per_cell;
  masks_input.center_y = center_y * mask_per_cell;
  masks_input.width = width * mask_per_cell;
  masks_input.height = height * mask_per_cell;
  if (shape_output_) {
    // The local shape at each peak: the 1×1 layer on the hidden vector there.
    const std::int64_t hidden = o.shape_hidden.size(1), s = options_.shape_size;
    const torch::Tensor vectors =
        gather_cells(o.shape_hidden.to(torch::kFloat32), cell).permute({0, 2, 1});  // (N, K, hid)
    masks_input.shape_logits =
        (torch::matmul(vectors, shape_output_->weight.view({s * s, hidden}).t()) +
         shape_output_->bias)
            .view({n, k, s, s});
  }
  masks_input.saliency_logits = o.saliency_logits;
  masks_input.class_id = class_id;
  masks_input.map_height = h * static_cast<std::int64_t>(mask_per_cell);
  masks_input.map_width = w * static_cast<std::int64_t>(mask_per_cell);
  masks_input.mask_threshold = options.mask_threshold;
  masks_input.mask_size = mask_size;
  masks_input.mask_stride = options_.saliency_stride;
  const GraphMasks masks = assemble_masks_in_graph(masks_input);

  // Kept: the peaks at or above the score threshold (with a score: a map with fewer than K
  // peaks fills the rest with score 0).
  const torch::Tensor valid = (score >= options.score_threshold) & (score > 0);
  return ranked_mask_detections(boxes, score, class_id, valid, masks, options.mask_quality_scoring);
}

}  // namespace centermask
