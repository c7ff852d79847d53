// CenterMask's decoding as tensor operations of fixed shapes, for exported graphs
// (`centermask export --postprocess on`). It computes what predict() (centermask_inference.cpp)
// keeps, with every step a whole-tensor operation that ONNX has: peaks by max-pool and TopK
// instead of the peak scan, each object's mask assembled over the whole mask map (masked to
// its block) instead of over its own block, and the mask resampled onto an M×M grid instead
// of pasted — the deploy side pastes it (include/centermask/deploy/paste_masks.h).

#include <limits>

#include "centermask/modeling/methods/centermask/centermask.h"

namespace centermask {

namespace {

namespace F = torch::nn::functional;

// box_cell_region (data/mask_cells.cpp) on tensors: the cells whose centers lie inside
// [center − extent/2, center + extent/2), never fewer than one (the cell holding the center).
std::pair<torch::Tensor, torch::Tensor> cell_range(const torch::Tensor& center,
                                                   const torch::Tensor& extent) {
  torch::Tensor first = torch::ceil(center - extent / 2 - 0.5);
  torch::Tensor end = torch::ceil(center + extent / 2 - 0.5);
  const torch::Tensor thin = end <= first;
  first = torch::where(thin, torch::floor(center), first);
  end = torch::where(thin, first + 1, end);
  return {first, end};
}

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

  // Regions on the mask map and the blocks computed of them (assemble_masks' clip_margin 1).
  const std::int64_t map_h = h * static_cast<std::int64_t>(mask_per_cell);
  const std::int64_t map_w = w * static_cast<std::int64_t>(mask_per_cell);
  const auto [region_x0, region_x1] = cell_range(center_x * mask_per_cell, width * mask_per_cell);
  const auto [region_y0, region_y1] = cell_range(center_y * mask_per_cell, height * mask_per_cell);
  const torch::Tensor block_x0 = torch::clamp(region_x0, -1, map_w + 1);
  const torch::Tensor block_y0 = torch::clamp(region_y0, -1, map_h + 1);
  const torch::Tensor block_x1 = torch::clamp_max(torch::maximum(region_x1, block_x0), map_w + 1);
  const torch::Tensor block_y1 = torch::clamp_max(torch::maximum(region_y1, block_y0), map_h + 1);

  // Every object's probability over the mask map and one cell around it (the margin a block
  // may reach): padded cell (i, j) is map cell (i − 1, j − 1).
  const std::int64_t padded_h = map_h + 2, padded_w = map_w + 2;
  const auto float_options = torch::TensorOptions().dtype(torch::kFloat32);
  const torch::Tensor map_column =
      (torch::arange(padded_w, float_options) - 1).view({1, 1, 1, padded_w});
  const torch::Tensor map_row =
      (torch::arange(padded_h, float_options) - 1).view({1, 1, padded_h, 1});
  const auto per_object = [&](const torch::Tensor& t) { return t.view({n, k, 1, 1}); };
  torch::Tensor probability;  // (N, K, Hp, Wp)
  if (shape_output_) {
    // The local shape at each peak: the 1×1 layer on the hidden vector there.
    const std::int64_t hidden = o.shape_hidden.size(1), s = options_.shape_size;
    const torch::Tensor vectors =
        gather_cells(o.shape_hidden.to(torch::kFloat32), cell).permute({0, 2, 1});  // (N, K, hid)
    const torch::Tensor shapes =
        torch::matmul(vectors, shape_output_->weight.view({s * s, hidden}).t()) +
        shape_output_->bias;
    // Resized to its region as assemble_masks does: cell c of a region w cells wide samples
    // the shape at 2(c + 0.5)/w − 1 in grid_sample's coordinates, borders clamped.
    const torch::Tensor region_w = per_object(region_x1 - region_x0);
    const torch::Tensor region_h = per_object(region_y1 - region_y0);
    const torch::Tensor gx = 2 * (map_column - per_object(region_x0) + 0.5) / region_w - 1;
    const torch::Tensor gy = 2 * (map_row - per_object(region_y0) + 0.5) / region_h - 1;
    const torch::Tensor grid =
        torch::stack({gx.expand({n, k, padded_h, padded_w}), gy.expand({n, k, padded_h, padded_w})},
                     4)
            .view({n * k, padded_h, padded_w, 2});
    const torch::Tensor local = F::grid_sample(shapes.view({n * k, 1, s, s}), grid,
                                               F::GridSampleFuncOptions()
                                                   .mode(torch::kBilinear)
                                                   .padding_mode(torch::kBorder)
                                                   .align_corners(false));
    probability = torch::sigmoid(local).view({n, k, padded_h, padded_w});
  }
  if (o.saliency_logits.defined()) {
    // Cells off the map read the nearest cell on it, as the clamped gather of assemble_masks.
    const torch::Tensor saliency =
        torch::sigmoid(F::pad(o.saliency_logits.to(torch::kFloat32),
                              F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)));
    torch::Tensor global = saliency;  // one plane for all classes
    if (saliency.size(1) > 1) {       // each object reads its class's plane
      global = saliency.reshape({n, saliency.size(1), -1})
                   .gather(1, class_id.unsqueeze(2).expand({n, k, padded_h * padded_w}))
                   .view({n, k, padded_h, padded_w});
    }
    probability =
        probability.defined() ? probability * global : global.expand({n, k, padded_h, padded_w});
  }

  // Mask quality (mask_quality): the mean probability over the block's cells above the
  // threshold.
  const torch::Tensor inside = (map_column >= per_object(block_x0)) &
                               (map_column < per_object(block_x1)) &
                               (map_row >= per_object(block_y0)) & (map_row < per_object(block_y1));
  const torch::Tensor above = (inside & (probability > options.mask_threshold)).to(torch::kFloat32);
  const torch::Tensor kept_cells = above.sum({2, 3});
  const torch::Tensor quality = (probability * above).sum({2, 3}) / torch::clamp_min(kept_cells, 1);
  torch::Tensor rescored = options.mask_quality_scoring ? score * quality : score;

  // The M×M grid over the block: grid cell i's center, (i + 0.5)/M of the way along, in the
  // block's cell coordinates, clamped into the block (mask_in_original's edge replication),
  // read bilinearly from the padded map (align_corners: coordinate j is cell j's center).
  const torch::Tensor step = (torch::arange(mask_size, float_options) + 0.5) / mask_size;
  const auto grid_axis = [&](const torch::Tensor& first, const torch::Tensor& end,
                             std::int64_t padded) {
    const torch::Tensor extent = (end - first).unsqueeze(2);  // (N, K, 1)
    const torch::Tensor at =
        torch::minimum(torch::clamp_min(step * extent - 0.5, 0), torch::clamp_min(extent - 1, 0));
    return 2 * (at + first.unsqueeze(2) + 1) / (padded - 1) - 1;  // (N, K, M)
  };
  const torch::Tensor grid_x = grid_axis(block_x0, block_x1, padded_w).unsqueeze(2);
  const torch::Tensor grid_y = grid_axis(block_y0, block_y1, padded_h).unsqueeze(3);
  const torch::Tensor mask_grid = torch::stack({grid_x.expand({n, k, mask_size, mask_size}),
                                                grid_y.expand({n, k, mask_size, mask_size})},
                                               4)
                                      .view({n * k, mask_size, mask_size, 2});
  torch::Tensor masks =
      F::grid_sample(probability.reshape({n * k, 1, padded_h, padded_w}), mask_grid,
                     F::GridSampleFuncOptions()
                         .mode(torch::kBilinear)
                         .padding_mode(torch::kBorder)
                         .align_corners(true))
          .view({n, k, mask_size, mask_size});
  const double mask_stride = options_.saliency_stride;
  torch::Tensor mask_boxes =
      torch::stack({block_x0, block_y0, block_x1, block_y1}, 2) * mask_stride;

  // Kept: the peaks at or above the score threshold (with a score: a map with fewer than K
  // peaks fills the rest with score 0), highest rescored first.
  const torch::Tensor valid = (score >= options.score_threshold) & (score > 0);
  const auto [sorted_score, order] =
      torch::where(valid, rescored, torch::full({}, -1.0f)).topk(k, 1);
  const auto reorder = [&](const torch::Tensor& t) {
    std::vector<std::int64_t> shape = t.sizes().vec();
    torch::Tensor rows = order;
    for (std::size_t d = 2; d < shape.size(); ++d) rows = rows.unsqueeze(-1);
    return t.gather(1, rows.expand(shape));
  };
  const torch::Tensor count = valid.sum(1);
  return {{"boxes", reorder(boxes)},           {"scores", torch::clamp_min(sorted_score, 0)},
          {"classes", reorder(class_id)},      {"masks", reorder(masks)},
          {"mask_boxes", reorder(mask_boxes)}, {"count", count}};
}

}  // namespace centermask
