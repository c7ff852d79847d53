// CenterMask inference (SPEC §1): peaks → boxes → assembled masks → instances in the
// original image's pixels.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "modeling/ops/mask_assembly.h"
#include "modeling/ops/mask_paste.h"
#include "modeling/ops/peaks.h"

namespace centermask {

CenterMaskPeaks CenterMaskImpl::find_peaks(const CenterMaskOutputs& outputs, int top_k) const {
  torch::NoGradGuard no_grad;
  const torch::Tensor& logits = outputs.heatmap_logits;
  const std::int64_t n = logits.size(0), h = logits.size(2), w = logits.size(3);
  const HeatmapPeaks peaks = top_k_peaks(logits, top_k);
  const torch::Tensor index = peaks.index;
  const std::int64_t k = index.size(1);
  CenterMaskPeaks out;
  out.score = torch::sigmoid(peaks.logit);  // exactly 0 where fewer than K peaks exist
  out.class_id = torch::div(index, h * w, "floor");
  out.cell = index - out.class_id * (h * w);
  const torch::Tensor gather_index = out.cell.unsqueeze(1).expand({n, 2, k});
  out.offset = outputs.offset.reshape({n, 2, h * w}).gather(2, gather_index).permute({0, 2, 1});
  out.size = outputs.size.reshape({n, 2, h * w}).gather(2, gather_index).permute({0, 2, 1});
  return out;
}

std::vector<std::vector<Instance>> CenterMaskImpl::predict(
    const CenterMaskOutputs& outputs, const std::vector<ImageInfo>& infos,
    const CenterMaskInferenceOptions& options) const {
  torch::NoGradGuard no_grad;
  const std::int64_t n = outputs.heatmap_logits.size(0);
  const int map_h = static_cast<int>(outputs.heatmap_logits.size(2));
  const int map_w = static_cast<int>(outputs.heatmap_logits.size(3));
  if (static_cast<std::int64_t>(infos.size()) != n)
    throw std::invalid_argument(
        fmt::format("CenterMask predict: {} image infos for a batch of {}", infos.size(), n));
  if (options.top_k < 1) throw std::invalid_argument("CenterMask predict: top_k must be ≥ 1");
  const int stride = feature_shape().stride_px;
  // Masks are assembled on the mask map (the saliency resolution), `mask_per_cell` of its
  // cells per output cell along each side.
  const int mask_stride = options_.saliency_stride;
  const float mask_per_cell = static_cast<float>(stride / mask_stride);

  auto decode_stage = std::make_unique<ScopedStage>("decode");
  const CenterMaskPeaks peaks = find_peaks(outputs, options.top_k);
  const torch::Tensor score = peaks.score.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor class_id = peaks.class_id.to(torch::kCPU).contiguous();
  const torch::Tensor cell = peaks.cell.to(torch::kCPU).contiguous();
  const torch::Tensor offset = peaks.offset.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor size = peaks.size.to(torch::kCPU, torch::kFloat32).contiguous();
  const std::int64_t k = score.size(1);
  const auto score_at = score.accessor<float, 2>();
  const auto class_at = class_id.accessor<std::int64_t, 2>();
  const auto cell_at = cell.accessor<std::int64_t, 2>();
  const auto offset_at = offset.accessor<float, 3>();
  const auto size_at = size.accessor<float, 3>();
  decode_stage.reset();
  const ScopedStage assembly_stage("assembly");

  // The kept peaks, their boxes in cells and their regions (the same box_cell_region as the
  // training targets use for ground-truth boxes).
  struct Kept {
    std::int64_t image;
    std::int64_t slot;
    float center_x, center_y, width, height;
  };
  std::vector<Kept> kept;
  MaskAssemblyInput assembly;
  std::vector<std::int64_t> kept_cells;
  for (std::int64_t b = 0; b < n; ++b) {
    for (std::int64_t j = 0; j < k; ++j) {
      // Sorted; a score of 0 marks "no more peaks" on maps with fewer than K of them.
      if (score_at[b][j] < options.score_threshold || score_at[b][j] <= 0) break;
      const std::int64_t c = cell_at[b][j];
      Kept object{b,
                  j,
                  static_cast<float>(c % map_w) + offset_at[b][j][0],
                  static_cast<float>(c / map_w) + offset_at[b][j][1],
                  std::max(0.0f, size_at[b][j][0]),
                  std::max(0.0f, size_at[b][j][1])};
      kept.push_back(object);
      kept_cells.push_back(c);
      assembly.regions.push_back(
          box_cell_region(object.center_x * mask_per_cell, object.center_y * mask_per_cell,
                          object.width * mask_per_cell, object.height * mask_per_cell));
      assembly.image_index.push_back(b);
      assembly.saliency_class.push_back(class_at[b][j]);
    }
  }

  cv::Mat all_probability;  // (M, Hm·Wm) on the host
  int prob_w = 0;
  std::vector<CellRegion> computed_regions;  // the cells each object's probability covers
  if (!kept.empty()) {
    if (outputs.shape_hidden.defined() || outputs.given_shapes)
      assembly.shape_logits = local_shapes(outputs, assembly.image_index, kept_cells);
    assembly.saliency_logits = outputs.saliency_logits;
    assembly.map_height = map_h * static_cast<int>(mask_per_cell);
    assembly.map_width = map_w * static_cast<int>(mask_per_cell);
    assembly.clip_margin = 1;
    AssembledMasks assembled = assemble_masks(assembly);
    computed_regions = std::move(assembled.computed);
    torch::Tensor probability = assembled.probability.to(torch::kCPU, torch::kFloat32);
    probability = probability.contiguous();
    prob_w = static_cast<int>(probability.size(2));
    if (probability.numel() > 0)
      all_probability = cv::Mat(static_cast<int>(probability.size(0)),
                                static_cast<int>(probability.size(1) * probability.size(2)), CV_32F,
                                probability.data_ptr<float>())
                            .clone();
  }

  std::vector<std::vector<Instance>> results(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const Kept& object = kept[i];
    const ImageInfo& info = infos[static_cast<std::size_t>(object.image)];
    const CellRegion& region = computed_regions[i];
    Instance instance;
    instance.score = score_at[object.image][object.slot];
    instance.class_index = static_cast<std::int32_t>(assembly.saliency_class[i]);
    // Box: center ± size / 2 in cells → input pixels → original, clipped to the image.
    instance.box = cells_to_original(
        object.center_x - 0.5 * object.width, object.center_y - 0.5 * object.height,
        object.center_x + 0.5 * object.width, object.center_y + 0.5 * object.height, stride, info);
    // The object's probability over its region's cells (a view into the assembled block);
    // empty for a region wholly off the map.
    const cv::Mat probability =
        region.width() > 0 && region.height() > 0
            ? all_probability.row(static_cast<int>(i))
                  .reshape(1, static_cast<int>(all_probability.cols / prob_w))(
                      cv::Rect(0, 0, region.width(), region.height()))
            : cv::Mat(region.height(), region.width(), CV_32F);
    if (options.mask_quality_scoring)
      instance.score *= mask_quality(probability, options.mask_threshold);
    instance.has_mask = true;
    instance.mask =
        mask_in_original(probability, region, mask_stride, info, options.mask_threshold);
    results[static_cast<std::size_t>(object.image)].push_back(std::move(instance));
  }
  // Rescored detections are no longer in peak order: restore "highest score first".
  if (options.mask_quality_scoring)
    for (std::vector<Instance>& image : results)
      std::stable_sort(image.begin(), image.end(),
                       [](const Instance& a, const Instance& b) { return a.score > b.score; });
  return results;
}

}  // namespace centermask
