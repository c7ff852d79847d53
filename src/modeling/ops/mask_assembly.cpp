#include "modeling/ops/mask_assembly.h"

#include <algorithm>
#include <stdexcept>

#include "centermask/modeling/precision.h"
#include "modeling/ops/host_tensors.h"

namespace centermask {

namespace F = torch::nn::functional;

AssembledMasks assemble_masks(const MaskAssemblyInput& input) {
  const bool has_shape = input.shape_logits.defined();
  const bool has_saliency = input.saliency_logits.defined();
  if (!has_shape && !has_saliency)
    throw std::invalid_argument("assemble_masks: neither local shapes nor saliency given");
  const auto m = static_cast<std::int64_t>(input.regions.size());
  if ((has_saliency && (input.image_index.size() != input.regions.size() ||
                        input.saliency_class.size() != input.regions.size())) ||
      (has_shape && input.shape_logits.size(0) != m))
    throw std::invalid_argument("assemble_masks: per-object inputs differ in length");
  const torch::Device device =
      has_shape ? input.shape_logits.device() : input.saliency_logits.device();
  // Reduced-precision logits (bf16 / fp16 inference) are widened: the sampling grid of a
  // 100-cell region needs more than bf16's 8 significant bits, or masks shift by cells.
  torch::Dtype dtype =
      has_shape ? input.shape_logits.scalar_type() : input.saliency_logits.scalar_type();
  if (is_reduced_precision(dtype)) dtype = torch::kFloat32;

  const int H = has_saliency ? static_cast<int>(input.saliency_logits.size(2)) : input.map_height;
  const int W = has_saliency ? static_cast<int>(input.saliency_logits.size(3)) : input.map_width;
  AssembledMasks out;
  out.computed = input.regions;
  if (input.clip_margin >= 0) {
    const int margin = input.clip_margin;
    // A region wholly off the map (a wild predicted offset) becomes empty: no cell of it can
    // reach the image.
    for (CellRegion& r : out.computed) {
      r.x0 = std::clamp(r.x0, -margin, W + margin);
      r.y0 = std::clamp(r.y0, -margin, H + margin);
      r.x1 = std::clamp(r.x1, r.x0, W + margin);
      r.y1 = std::clamp(r.y1, r.y0, H + margin);
    }
  }
  int max_h = 0, max_w = 0;
  // Per object: the computed block's first cell, the whole region's size, and the block's
  // offset into the region (where the shape is sampled).
  std::vector<std::int64_t> corners(static_cast<std::size_t>(m) * 6);
  for (std::size_t i = 0; i < input.regions.size(); ++i) {
    const CellRegion& r = input.regions[i];
    const CellRegion& c = out.computed[i];
    max_h = std::max(max_h, c.height());
    max_w = std::max(max_w, c.width());
    corners[i * 6 + 0] = c.x0;
    corners[i * 6 + 1] = c.y0;
    corners[i * 6 + 2] = r.width();
    corners[i * 6 + 3] = r.height();
    corners[i * 6 + 4] = c.x0 - r.x0;
    corners[i * 6 + 5] = c.y0 - r.y0;
  }
  if (m == 0) {
    out.probability = torch::zeros({0, 0, 0}, torch::TensorOptions(device).dtype(dtype));
    out.inside = torch::zeros({0, 0, 0}, torch::TensorOptions(device).dtype(torch::kBool));
    return out;
  }
  const torch::Tensor box = int64_tensor(corners, device).view({m, 6});
  const torch::Tensor x0 = box.select(1, 0).view({m, 1, 1}), y0 = box.select(1, 1).view({m, 1, 1});
  const torch::Tensor w = box.select(1, 2).view({m, 1, 1}), h = box.select(1, 3).view({m, 1, 1});
  const torch::Tensor skip_x = box.select(1, 4).view({m, 1, 1});
  const torch::Tensor skip_y = box.select(1, 5).view({m, 1, 1});
  const auto long_options = torch::TensorOptions(device).dtype(torch::kInt64);
  const torch::Tensor col = torch::arange(max_w, long_options).view({1, 1, max_w});
  const torch::Tensor row = torch::arange(max_h, long_options).view({1, max_h, 1});
  const torch::Tensor map_x = x0 + col, map_y = y0 + row;  // (M, 1, Wm), (M, Hm, 1)
  // The column and row within the whole region (the block may start inside it).
  const torch::Tensor region_col = skip_x + col, region_row = skip_y + row;
  out.inside =
      (region_col < w) & (region_row < h) & (map_x >= 0) & (map_x < W) & (map_y >= 0) & (map_y < H);

  torch::Tensor probability;
  if (has_shape) {
    // Bilinear resize of S×S to h×w as interpolate(align_corners=False): output cell c samples
    // input coordinate (c + 0.5)·S/w − 0.5, which in grid_sample's normalised coordinates
    // (align_corners=False) is 2(c + 0.5)/w − 1 whatever S is; border padding = the clamp.
    const auto float_options = torch::TensorOptions(device).dtype(dtype);
    const torch::Tensor gx =
        (2.0 * (region_col.to(dtype) + 0.5) / w.to(dtype) - 1.0).expand({m, max_h, max_w});
    const torch::Tensor gy =
        (2.0 * (region_row.to(dtype) + 0.5) / h.to(dtype) - 1.0).expand({m, max_h, max_w});
    const torch::Tensor grid = torch::stack({gx, gy}, 3).to(float_options);
    const torch::Tensor local = F::grid_sample(input.shape_logits.to(dtype).unsqueeze(1), grid,
                                               F::GridSampleFuncOptions()
                                                   .mode(torch::kBilinear)
                                                   .padding_mode(torch::kBorder)
                                                   .align_corners(false));
    probability = torch::sigmoid(local.squeeze(1));
  }
  if (has_saliency) {
    // The crop is whole cells, so it is a gather; outside the map the index is clamped (those
    // cells are marked outside and only keep the gather in range).
    const std::int64_t channels = input.saliency_logits.size(1);
    torch::Tensor channel = channels == 1 ? torch::zeros({m}, long_options)
                                          : int64_tensor(input.saliency_class, device);
    const torch::Tensor image = int64_tensor(input.image_index, device);
    const torch::Tensor plane = (image * channels + channel).view({m, 1, 1});
    const torch::Tensor index =
        (plane * H + map_y.clamp(0, H - 1)) * W + map_x.clamp(0, W - 1);  // (M, Hm, Wm)
    const torch::Tensor global = input.saliency_logits.reshape({-1})
                                     .index_select(0, index.reshape({-1}))
                                     .view({m, max_h, max_w})
                                     .to(dtype);
    probability =
        probability.defined() ? probability * torch::sigmoid(global) : torch::sigmoid(global);
  }
  out.probability = probability;
  return out;
}

}  // namespace centermask
