// Pasting masks into original pixels: the separable resampling equals a per-pixel bilinear
// reference (in double precision) on odd sizes, up- and downscaling, with edges replicated,
// and agrees with OpenCV's warpAffine (fixed point) on nearly every pixel.

#include "modeling/ops/mask_paste.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>
#include <vector>

namespace centermask {
namespace {

cv::Mat random_probability(int rows, int cols, unsigned seed) {
  cv::Mat m(rows, cols, CV_32F);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x) m.at<float>(y, x) = u(rng);
  return m;
}

// Bilinear at (sx, sy) with the coordinate clamped into the source: the textbook formula.
double reference_sample(const cv::Mat& src, double sx, double sy) {
  sx = std::clamp(sx, 0.0, src.cols - 1.0);
  sy = std::clamp(sy, 0.0, src.rows - 1.0);
  const int x0 = static_cast<int>(std::floor(sx)), y0 = static_cast<int>(std::floor(sy));
  const int x1 = std::min(x0 + 1, src.cols - 1), y1 = std::min(y0 + 1, src.rows - 1);
  const double fx = sx - x0, fy = sy - y0;
  const auto v = [&](int y, int x) { return static_cast<double>(src.at<float>(y, x)); };
  return (1 - fy) * ((1 - fx) * v(y0, x0) + fx * v(y0, x1)) +
         fy * ((1 - fx) * v(y1, x0) + fx * v(y1, x1));
}

struct Case {
  int src_rows, src_cols, width, height;
  double scale_x, offset_x, scale_y, offset_y;
};

const Case kCases[] = {
    {7, 5, 23, 17, 0.25, -0.6, 0.3, -0.4},  // upscaling, starting before the first cell
    {13, 11, 5, 6, 2.1, 0.3, 1.7, -1.0},    // downscaling
    {1, 1, 9, 4, 0.2, -0.5, 0.2, -0.5},     // a single cell
    {6, 9, 40, 31, 0.125, 3.2, 0.2, 1.1},   // running off the far edges
};

TEST(MaskPaste, SeparableResamplingEqualsThePerPixelReference) {
  for (const Case& c : kCases) {
    const cv::Mat src = random_probability(c.src_rows, c.src_cols, 7);
    std::vector<std::uint8_t> got(static_cast<std::size_t>(c.width * c.height));
    const float threshold = 0.45f;
    resample_threshold_axis_aligned(src, c.scale_x, c.offset_x, c.scale_y, c.offset_y, c.width,
                                    c.height, threshold, got.data());
    for (int y = 0; y < c.height; ++y)
      for (int x = 0; x < c.width; ++x) {
        const double value =
            reference_sample(src, x * c.scale_x + c.offset_x, y * c.scale_y + c.offset_y);
        if (std::abs(value - threshold) < 1e-5) continue;  // float rounding may go either way
        EXPECT_EQ(got[static_cast<std::size_t>(y * c.width + x)], value > threshold ? 1 : 0)
            << c.src_rows << "x" << c.src_cols << " → " << c.height << "x" << c.width << " at ("
            << x << ", " << y << ")";
      }
  }
}

TEST(MaskPaste, SeparableResamplingAgreesWithWarpAffine) {
  std::size_t differ = 0, total = 0;
  for (const Case& c : kCases) {
    const cv::Mat src = random_probability(c.src_rows, c.src_cols, 8);
    std::vector<std::uint8_t> got(static_cast<std::size_t>(c.width * c.height));
    resample_threshold_axis_aligned(src, c.scale_x, c.offset_x, c.scale_y, c.offset_y, c.width,
                                    c.height, 0.5f, got.data());
    const cv::Mat matrix =
        (cv::Mat_<double>(2, 3) << c.scale_x, 0, c.offset_x, 0, c.scale_y, c.offset_y);
    cv::Mat warped;
    cv::warpAffine(src, warped, matrix, cv::Size(c.width, c.height),
                   cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
    for (int y = 0; y < c.height; ++y)
      for (int x = 0; x < c.width; ++x, ++total)
        differ += got[static_cast<std::size_t>(y * c.width + x)] !=
                  (warped.at<float>(y, x) > 0.5f ? 1 : 0);
  }
  // warpAffine rounds coordinates to 1/32 pixel: only pixels right at the threshold flip.
  EXPECT_LT(static_cast<double>(differ), 0.02 * static_cast<double>(total))
      << differ << " of " << total;
}

TEST(MaskPaste, MaskInOriginalOfALetterboxedImageCoversTheObject) {
  // A 200×100 original letterboxed into a 128×128 input (scale 0.64, padded top and bottom):
  // a region of stride-4 cells whose probability is 1 everywhere pastes as a full rectangle
  // over the original pixels the region covers.
  ImageInfo info;
  info.original_width = 200;
  info.original_height = 100;
  info.input_width = 128;
  info.input_height = 128;
  info.input_to_original = Affine2D::scale_translate(1 / 0.64, 1 / 0.64, 0, -32 / 0.64);
  info.original_to_input = Affine2D::scale_translate(0.64, 0.64, 0, 32);
  const CellRegion region{4, 12, 12, 20};  // input pixels x 16–48, y 48–80
  const cv::Mat ones(region.height(), region.width(), CV_32F, cv::Scalar(1.0f));
  const MaskPatch patch = mask_in_original(ones, region, 4, info, 0.5f);
  EXPECT_EQ(patch.left, 25);
  EXPECT_EQ(patch.top, 25);
  EXPECT_EQ(patch.width, 50);
  EXPECT_EQ(patch.height, 50);
  EXPECT_EQ(patch.area(), 50 * 50);
}

}  // namespace
}  // namespace centermask
