// PolarMask's geometry checked by hand: the angle convention on a rectangle, the ±1..±3°
// fallback order, the mass centre, centerness, and the round trip mask → rays → filled
// polygon, near-exact for a disc and unable to keep a ring's hole (what the paper trades).

#include "centermask/modeling/methods/polarmask/polar_rays.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

namespace centermask {
namespace {

MaskPatch patch_of(const cv::Mat& image_mask) {
  MaskPatch patch;
  patch.width = image_mask.cols;
  patch.height = image_mask.rows;
  patch.pixels.assign(image_mask.datastart, image_mask.dataend);
  return patch;
}

double iou(const MaskPatch& a, const MaskPatch& b, int height, int width) {
  std::int64_t inter = 0, uni = 0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const bool pa = a.at_image(x, y) != 0, pb = b.at_image(x, y) != 0;
      inter += pa && pb;
      uni += pa || pb;
    }
  return uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

TEST(PolarRays, ADiscRoundTripsThroughItsRays) {
  cv::Mat mask = cv::Mat::zeros(100, 120, CV_8U);
  cv::circle(mask, {60, 50}, 20, cv::Scalar(1), cv::FILLED);
  const MaskPatch disc = patch_of(mask);
  const std::vector<cv::Point> contour = largest_contour(disc);
  ASSERT_FALSE(contour.empty());
  const cv::Point center = contour_mass_center(contour);
  EXPECT_NEAR(center.x, 60, 1);
  EXPECT_NEAR(center.y, 50, 1);
  const std::vector<float> rays = polar_ray_lengths(contour, 60, 50, 36);
  ASSERT_EQ(rays.size(), 36u);
  for (float d : rays) EXPECT_NEAR(d, 20, 1.5);
  EXPECT_GT(polar_centerness(rays), 0.95f);
  const MaskPatch filled = fill_polygon(polygon_from_rays(60, 50, rays), 100, 120);
  EXPECT_GT(iou(filled, disc, 100, 120), 0.93);
  // Off-centre, the rays are uneven and the centerness falls.
  EXPECT_LT(polar_centerness(polar_ray_lengths(contour, 72, 50, 36)), 0.6f);
}

TEST(PolarRays, ZeroDegreesPointsDownAndNinetyAlongX) {
  cv::Mat mask = cv::Mat::zeros(100, 100, CV_8U);
  cv::rectangle(mask, cv::Rect(10, 40, 61, 21), cv::Scalar(1), cv::FILLED);  // x 10..70, y 40..60
  const std::vector<cv::Point> contour = largest_contour(patch_of(mask));
  const std::vector<float> rays = polar_ray_lengths(contour, 40, 50, 36);
  EXPECT_NEAR(rays[0], 10, 0.01);   // 0°: +y, to y = 60
  EXPECT_NEAR(rays[9], 30, 0.01);   // 90°: +x, to x = 70
  EXPECT_NEAR(rays[18], 10, 0.01);  // 180°: −y, to y = 40
  EXPECT_NEAR(rays[27], 30, 0.01);  // 270°: −x, to x = 10
  // sqrt(min / max): min 10 (straight up or down), max below the corner's hypot(30, 10)
  // (no ray points exactly at a corner) and above the side's 30.
  EXPECT_GT(polar_centerness(rays), std::sqrt(10.0 / std::hypot(30.0, 10.0)));
  EXPECT_LT(polar_centerness(rays), std::sqrt(10.0 / 30.0));
  const std::vector<cv::Point2f> polygon = polygon_from_rays(40, 50, rays);
  EXPECT_NEAR(polygon[0].y, 60, 0.01);
  EXPECT_NEAR(polygon[9].x, 70, 0.01);
}

TEST(PolarRays, MissingAnglesFallBackInTheReferencesOrder) {
  // From the origin: two points straight down (0°), of which the farther counts, and points
  // at integer angles 7° and 11°.
  const std::vector<cv::Point> contour = {{0, 10}, {0, 4}, cv::Point(7, 50), cv::Point(10, 50)};
  // (7, 50) is at 7.97° → integer 7; (10, 50) at 11.3° → 11.
  const std::vector<float> rays = polar_ray_lengths(contour, 0, 0, 36);
  EXPECT_FLOAT_EQ(rays[0], 10);  // the farthest point at 0°
  // Ray 10°: no point at 10, +1 (11°) comes before −1 and −3 (7°).
  EXPECT_NEAR(rays[1], std::hypot(10.0, 50.0), 1e-4);
  EXPECT_FLOAT_EQ(rays[2], 1e-6f);  // 20°: nothing within ±3
  // Other ray counts divide 360; 7 does not.
  EXPECT_EQ(polar_ray_lengths(contour, 0, 0, 72).size(), 72u);
  EXPECT_EQ(polar_ray_lengths(contour, 0, 0, 18).size(), 18u);
  EXPECT_THROW(polar_ray_lengths(contour, 0, 0, 7), std::invalid_argument);
}

TEST(PolarRays, CenternessByHandAndEdgeCases) {
  EXPECT_FLOAT_EQ(polar_centerness({1, 4, 2}), 0.5f);
  EXPECT_FLOAT_EQ(polar_centerness({3, 3}), 1.0f);
  EXPECT_FLOAT_EQ(polar_centerness({}), 0.0f);
  EXPECT_TRUE(largest_contour(MaskPatch{}).empty());
  EXPECT_THROW(contour_mass_center({}), std::invalid_argument);
  // A line has no area: the mass centre is the points' mean.
  EXPECT_EQ(contour_mass_center({{0, 0}, {4, 0}, {8, 0}, {4, 0}}), cv::Point(4, 0));
}

TEST(PolarRays, AMaskFillingItsPatchStillHasAClosedContourInImagePixels) {
  MaskPatch full;
  full.left = 5;
  full.top = 7;
  full.width = 10;
  full.height = 10;
  full.pixels.assign(100, 1);
  const std::vector<cv::Point> contour = largest_contour(full);
  const cv::Rect bounds = cv::boundingRect(contour);
  EXPECT_EQ(bounds, cv::Rect(5, 7, 10, 10));
  // A polygon past the image edge is clipped into it.
  const MaskPatch clipped = fill_polygon({{-5, -5}, {30, -5}, {30, 30}, {-5, 30}}, 20, 25);
  EXPECT_EQ(clipped.left, 0);
  EXPECT_EQ(clipped.top, 0);
  EXPECT_EQ(clipped.width, 25);
  EXPECT_EQ(clipped.height, 20);
  EXPECT_EQ(clipped.area(), 500);
}

TEST(PolarRays, ARingsHoleIsLost) {
  cv::Mat mask = cv::Mat::zeros(80, 80, CV_8U);
  cv::circle(mask, {40, 40}, 25, cv::Scalar(1), cv::FILLED);
  cv::circle(mask, {40, 40}, 12, cv::Scalar(0), cv::FILLED);
  const MaskPatch ring = patch_of(mask);
  const std::vector<cv::Point> contour = largest_contour(ring);
  const std::vector<float> rays = polar_ray_lengths(contour, 40, 40, 36);
  for (float d : rays) EXPECT_NEAR(d, 25, 1.5);  // the outer boundary: the largest contour
  const MaskPatch filled = fill_polygon(polygon_from_rays(40, 40, rays), 80, 80);
  EXPECT_EQ(filled.at_image(40, 40), 1);  // the hole is filled
  const double hole = 12.0 * 12.0 / (25.0 * 25.0);
  EXPECT_NEAR(iou(filled, ring, 80, 80), 1 - hole, 0.05);
}

}  // namespace
}  // namespace centermask
