// Pasting assembled masks into original-image pixels; see mask_paste.h.

#include "modeling/ops/mask_paste.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace centermask {

namespace {

/// The original-image pixels that a cell region's input pixels cover (rounded outward);
/// empty (width or height 0) when it falls outside the image.
cv::Rect original_rect(const CellRegion& region, int stride, const ImageInfo& info) {
  const BoxXYXY box = cells_to_original(region.x0, region.y0, region.x1, region.y1, stride, info);
  const int x0 = static_cast<int>(std::floor(box.x0)), y0 = static_cast<int>(std::floor(box.y0));
  const int x1 = static_cast<int>(std::ceil(box.x1)), y1 = static_cast<int>(std::ceil(box.y1));
  return {x0, y0, x1 - x0, y1 - y0};
}

}  // namespace

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
  patch.width = rect.width;
  patch.height = rect.height;
  patch.pixels.resize(static_cast<std::size_t>(rect.width) * static_cast<std::size_t>(rect.height));
  if (m[1] == 0 && m[3] == 0) {  // test transforms scale and translate: the separable path
    resample_threshold_axis_aligned(probability, m[0], m[2], m[4], m[5], rect.width, rect.height,
                                    threshold, patch.pixels.data());
    return patch;
  }
  const cv::Mat matrix = (cv::Mat_<double>(2, 3) << m[0], m[1], m[2], m[3], m[4], m[5]);
  cv::Mat resampled;
  cv::warpAffine(probability, resampled, matrix, rect.size(),
                 cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
  for (int y = 0; y < rect.height; ++y) {
    const float* row = resampled.ptr<float>(y);
    for (int x = 0; x < rect.width; ++x)
      patch.pixels[static_cast<std::size_t>(y * rect.width + x)] = row[x] > threshold ? 1 : 0;
  }
  return patch;
}

namespace {

// Per output index along one axis: the two source indices and the second one's weight, with
// the coordinate clamped into the source (= edge replication for bilinear sampling).
struct Taps {
  std::vector<int> first, second;
  std::vector<float> weight;
};

Taps bilinear_taps(int outputs, double scale, double offset, int source_size) {
  Taps taps;
  taps.first.resize(static_cast<std::size_t>(outputs));
  taps.second.resize(static_cast<std::size_t>(outputs));
  taps.weight.resize(static_cast<std::size_t>(outputs));
  const double last = static_cast<double>(source_size - 1);
  for (int i = 0; i < outputs; ++i) {
    const double s = std::clamp(i * scale + offset, 0.0, last);
    const int lo = std::min(static_cast<int>(s), source_size - 1);
    const auto k = static_cast<std::size_t>(i);
    taps.first[k] = lo;
    taps.second[k] = std::min(lo + 1, source_size - 1);
    taps.weight[k] = static_cast<float>(s - lo);
  }
  return taps;
}

}  // namespace

void resample_threshold_axis_aligned(const cv::Mat& source, double scale_x, double offset_x,
                                     double scale_y, double offset_y, int width, int height,
                                     float threshold, std::uint8_t* out) {
  CV_Assert(source.type() == CV_32F && !source.empty());
  if (width <= 0 || height <= 0) return;
  const Taps columns = bilinear_taps(width, scale_x, offset_x, source.cols);
  const Taps rows = bilinear_taps(height, scale_y, offset_y, source.rows);
  // Only the source rows some output row reads are resampled along x.
  const int first_row = *std::min_element(rows.first.begin(), rows.first.end());
  const int last_row = *std::max_element(rows.second.begin(), rows.second.end());
  const auto w = static_cast<std::size_t>(width);
  std::vector<float> along_x(static_cast<std::size_t>(last_row - first_row + 1) * w);
  for (int r = first_row; r <= last_row; ++r) {
    const float* src = source.ptr<float>(r);
    float* dst = along_x.data() + static_cast<std::size_t>(r - first_row) * w;
    for (std::size_t x = 0; x < w; ++x) {
      const float a = src[columns.first[x]], b = src[columns.second[x]];
      dst[x] = a + (b - a) * columns.weight[x];
    }
  }
  for (std::size_t y = 0; y < static_cast<std::size_t>(height); ++y) {
    const float* top = along_x.data() + static_cast<std::size_t>(rows.first[y] - first_row) * w;
    const float* bottom = along_x.data() + static_cast<std::size_t>(rows.second[y] - first_row) * w;
    const float t = rows.weight[y];
    std::uint8_t* row = out + y * w;
    for (std::size_t x = 0; x < w; ++x)
      row[x] = top[x] + (bottom[x] - top[x]) * t > threshold ? 1 : 0;
  }
}

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

}  // namespace centermask
