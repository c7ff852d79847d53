// Mask assembly in whole-tensor operations; see graph_masks.h.

#include "modeling/ops/graph_masks.h"

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

}  // namespace

GraphMasks assemble_masks_in_graph(const GraphMaskInput& input) {
  // Regions on the mask map and the blocks computed of them (assemble_masks' clip_margin 1).
  const std::int64_t n = input.center_x.size(0), k = input.center_x.size(1);
  const std::int64_t map_h = input.map_height, map_w = input.map_width;
  const int mask_size = input.mask_size;
  const auto [region_x0, region_x1] = cell_range(input.center_x, input.width);
  const auto [region_y0, region_y1] = cell_range(input.center_y, input.height);
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
  if (input.shape_logits.defined()) {
    const std::int64_t s = input.shape_logits.size(2);
    const torch::Tensor shapes = input.shape_logits.to(torch::kFloat32);
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
  if (input.saliency_logits.defined()) {
    // Cells off the map read the nearest cell on it, as the clamped gather of assemble_masks.
    const torch::Tensor saliency =
        torch::sigmoid(F::pad(input.saliency_logits.to(torch::kFloat32),
                              F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)));
    torch::Tensor global = saliency;  // one plane for all classes
    if (saliency.size(1) > 1) {       // each object reads its class's plane
      global = saliency.reshape({n, saliency.size(1), -1})
                   .gather(1, input.class_id.unsqueeze(2).expand({n, k, padded_h * padded_w}))
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
  const torch::Tensor above = (inside & (probability > input.mask_threshold)).to(torch::kFloat32);
  const torch::Tensor kept_cells = above.sum({2, 3});
  const torch::Tensor quality = (probability * above).sum({2, 3}) / torch::clamp_min(kept_cells, 1);

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
  const double mask_stride = input.mask_stride;
  torch::Tensor mask_boxes =
      torch::stack({block_x0, block_y0, block_x1, block_y1}, 2) * mask_stride;

  return {masks, mask_boxes, quality};
}

std::vector<std::pair<std::string, torch::Tensor>> ranked_mask_detections(
    const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& classes,
    const torch::Tensor& valid, const GraphMasks& masks, bool mask_quality_scoring) {
  const torch::Tensor rescored = mask_quality_scoring ? scores * masks.quality : scores;
  const auto [sorted_score, order] =
      torch::where(valid, rescored, torch::full({}, -1.0f)).topk(scores.size(1), 1);
  return {{"boxes", gather_rows(boxes, order)},
          {"scores", torch::clamp_min(sorted_score, 0)},
          {"classes", gather_rows(classes, order)},
          {"masks", gather_rows(masks.masks, order)},
          {"mask_boxes", gather_rows(masks.mask_boxes, order)},
          {"count", valid.sum(1)}};
}

torch::Tensor gather_rows(const torch::Tensor& t, const torch::Tensor& order) {
  std::vector<std::int64_t> shape = t.sizes().vec();
  shape[1] = order.size(1);
  torch::Tensor rows = order;
  for (std::size_t d = 2; d < shape.size(); ++d) rows = rows.unsqueeze(-1);
  return t.gather(1, rows.expand(shape));
}

}  // namespace centermask
