// CenterMask inference (SPEC §1): peaks → boxes → assembled masks → instances in the
// original image's pixels.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "centermask/modeling/centermask.h"
#include "modeling/ops/mask_assembly.h"
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

namespace {

/// A rectangle given in output cells, mapped through the input (× stride) to the original
/// image and clipped to it: the bounding box of its four mapped corners.
BoxXYXY cells_to_original(double x0, double y0, double x1, double y1, int stride,
                          const ImageInfo& info) {
  double lo_x = 1e300, lo_y = 1e300, hi_x = -1e300, hi_y = -1e300;
  for (int corner = 0; corner < 4; ++corner) {
    const Point2 p = info.input_to_original.apply(
        {((corner & 1) ? x1 : x0) * stride, ((corner & 2) ? y1 : y0) * stride});
    lo_x = std::min(lo_x, p.x), hi_x = std::max(hi_x, p.x);
    lo_y = std::min(lo_y, p.y), hi_y = std::max(hi_y, p.y);
  }
  const auto clip = [](double v, int hi) {
    return static_cast<float>(std::clamp(v, 0.0, static_cast<double>(hi)));
  };
  return {clip(lo_x, info.original_width), clip(lo_y, info.original_height),
          clip(hi_x, info.original_width), clip(hi_y, info.original_height)};
}

/// The original-image pixels that a cell region's input pixels cover (rounded outward);
/// empty (width or height 0) when it falls outside the image.
cv::Rect original_rect(const CellRegion& region, int stride, const ImageInfo& info) {
  const BoxXYXY box = cells_to_original(region.x0, region.y0, region.x1, region.y1, stride, info);
  const int x0 = static_cast<int>(std::floor(box.x0)), y0 = static_cast<int>(std::floor(box.y0));
  const int x1 = static_cast<int>(std::ceil(box.x1)), y1 = static_cast<int>(std::ceil(box.y1));
  return {x0, y0, x1 - x0, y1 - y0};
}

/// Resamples an object's probability over its region cells onto original-image pixels and
/// thresholds it. Pixel (x, y) of the patch has its center at (left + x + 0.5, top + y + 0.5)
/// in the original; its input position divided by the stride is the region's cell coordinate,
/// where cell index j has its center at j + 0.5. One bilinear resampling does what "resize to
/// input resolution, then map back" does in two.
MaskPatch mask_in_original(const cv::Mat& probability, const CellRegion& region, int stride,
                           const ImageInfo& info, float threshold) {
  MaskPatch patch;
  const cv::Rect rect = original_rect(region, stride, info);
  patch.left = rect.x;
  patch.top = rect.y;
  if (rect.width == 0 || rect.height == 0) return patch;
  const Affine2D patch_to_original = Affine2D::scale_translate(1, 1, rect.x + 0.5, rect.y + 0.5);
  const Affine2D input_to_cell_index =
      Affine2D::scale_translate(1.0 / stride, 1.0 / stride, -0.5 - region.x0, -0.5 - region.y0);
  const Affine2D map = input_to_cell_index.after(info.original_to_input.after(patch_to_original));
  const auto m = map.coefficients();
  const cv::Mat matrix = (cv::Mat_<double>(2, 3) << m[0], m[1], m[2], m[3], m[4], m[5]);
  cv::Mat resampled;
  cv::warpAffine(probability, resampled, matrix, rect.size(),
                 cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  patch.width = rect.width;
  patch.height = rect.height;
  patch.pixels.resize(static_cast<std::size_t>(rect.width) * static_cast<std::size_t>(rect.height));
  for (int y = 0; y < rect.height; ++y) {
    const float* row = resampled.ptr<float>(y);
    for (int x = 0; x < rect.width; ++x)
      patch.pixels[static_cast<std::size_t>(y * rect.width + x)] = row[x] > threshold ? 1 : 0;
  }
  return patch;
}

/// The mean probability over the cells above the threshold: near 1 for a confident mask, near
/// the threshold for a hesitant one, 0 when no cell passes.
float mask_quality(const cv::Mat& probability, float threshold) {
  double sum = 0;
  std::int64_t kept = 0;
  for (int y = 0; y < probability.rows; ++y) {
    const float* row = probability.ptr<float>(y);
    for (int x = 0; x < probability.cols; ++x)
      if (row[x] > threshold) sum += row[x], ++kept;
  }
  return kept == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(kept));
}

}  // namespace

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
  if (!kept.empty()) {
    if (outputs.shape_hidden.defined() || outputs.given_shapes)
      assembly.shape_logits = local_shapes(outputs, assembly.image_index, kept_cells);
    assembly.saliency_logits = outputs.saliency_logits;
    assembly.map_height = map_h * static_cast<int>(mask_per_cell);
    assembly.map_width = map_w * static_cast<int>(mask_per_cell);
    torch::Tensor probability =
        assemble_masks(assembly).probability.to(torch::kCPU, torch::kFloat32);
    probability = probability.contiguous();
    prob_w = static_cast<int>(probability.size(2));
    all_probability = cv::Mat(static_cast<int>(probability.size(0)),
                              static_cast<int>(probability.size(1) * probability.size(2)), CV_32F,
                              probability.data_ptr<float>())
                          .clone();
  }

  std::vector<std::vector<Instance>> results(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const Kept& object = kept[i];
    const ImageInfo& info = infos[static_cast<std::size_t>(object.image)];
    const CellRegion& region = assembly.regions[i];
    Instance instance;
    instance.score = score_at[object.image][object.slot];
    instance.class_index = static_cast<std::int32_t>(assembly.saliency_class[i]);
    // Box: center ± size / 2 in cells → input pixels → original, clipped to the image.
    instance.box = cells_to_original(
        object.center_x - 0.5 * object.width, object.center_y - 0.5 * object.height,
        object.center_x + 0.5 * object.width, object.center_y + 0.5 * object.height, stride, info);
    // The object's probability over its region's cells (a view into the assembled block).
    const cv::Mat probability = all_probability.row(static_cast<int>(i))
                                    .reshape(1, static_cast<int>(all_probability.cols / prob_w))(
                                        cv::Rect(0, 0, region.width(), region.height()));
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
