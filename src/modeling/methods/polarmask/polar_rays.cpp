#include "centermask/modeling/methods/polarmask/polar_rays.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace centermask {

std::vector<cv::Point> largest_contour(const MaskPatch& mask) {
  if (mask.empty() || mask.area() == 0) return {};
  // A one-pixel border of background so that contours touching the patch edge close.
  cv::Mat padded = cv::Mat::zeros(mask.height + 2, mask.width + 2, CV_8U);
  for (int y = 0; y < mask.height; ++y)
    for (int x = 0; x < mask.width; ++x)
      padded.at<std::uint8_t>(y + 1, x + 1) =
          mask.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(mask.width) +
                      static_cast<std::size_t>(x)];
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(padded, contours, cv::RETR_TREE, cv::CHAIN_APPROX_NONE);
  if (contours.empty()) return {};
  std::size_t best = 0;
  double best_area = -1;
  for (std::size_t i = 0; i < contours.size(); ++i) {
    const double area = cv::contourArea(contours[i]);
    if (area > best_area) best_area = area, best = i;
  }
  std::vector<cv::Point> contour = contours[best];
  for (cv::Point& p : contour) p += cv::Point(mask.left - 1, mask.top - 1);
  return contour;
}

cv::Point contour_mass_center(const std::vector<cv::Point>& contour) {
  if (contour.empty()) throw std::invalid_argument("contour_mass_center: empty contour");
  double twice_area = 0, cx = 0, cy = 0;
  for (std::size_t i = 0; i < contour.size(); ++i) {
    const cv::Point& a = contour[i];
    const cv::Point& b = contour[(i + 1) % contour.size()];
    const double cross = static_cast<double>(a.x) * b.y - static_cast<double>(b.x) * a.y;
    twice_area += cross;
    cx += (a.x + b.x) * cross;
    cy += (a.y + b.y) * cross;
  }
  if (twice_area == 0) {
    double sx = 0, sy = 0;
    for (const cv::Point& p : contour) sx += p.x, sy += p.y;
    const auto n = static_cast<double>(contour.size());
    return {static_cast<int>(sx / n), static_cast<int>(sy / n)};
  }
  return {static_cast<int>(cx / (3 * twice_area)), static_cast<int>(cy / (3 * twice_area))};
}

std::vector<float> polar_ray_lengths(const std::vector<cv::Point>& contour, float x, float y,
                                     int num_rays) {
  if (num_rays <= 0 || 360 % num_rays != 0)
    throw std::invalid_argument("polar_ray_lengths: the number of rays must divide 360");
  // The farthest contour point at each integer angle.
  std::vector<double> farthest(360, -1.0);
  for (const cv::Point& p : contour) {
    const double dx = p.x - static_cast<double>(x), dy = p.y - static_cast<double>(y);
    double angle = std::atan2(dx, dy) * 180.0 / M_PI;
    if (angle < 0) angle += 360;
    const int degree = std::min(359, static_cast<int>(angle));
    farthest[static_cast<std::size_t>(degree)] =
        std::max(farthest[static_cast<std::size_t>(degree)], std::sqrt(dx * dx + dy * dy));
  }
  std::vector<float> rays(static_cast<std::size_t>(num_rays), 1e-6f);
  const int step = 360 / num_rays;
  for (int k = 0; k < num_rays; ++k) {
    const int angle = k * step;
    for (int delta : {0, 1, -1, 2, -2, 3, -3}) {
      const int a = angle + delta;
      if (a < 0 || a >= 360 || farthest[static_cast<std::size_t>(a)] < 0) continue;
      rays[static_cast<std::size_t>(k)] = static_cast<float>(farthest[static_cast<std::size_t>(a)]);
      break;
    }
  }
  return rays;
}

float polar_centerness(const std::vector<float>& rays) {
  if (rays.empty()) return 0;
  const auto [lo, hi] = std::minmax_element(rays.begin(), rays.end());
  if (*hi <= 0) return 0;
  return std::sqrt(*lo / *hi);
}

std::vector<cv::Point2f> polygon_from_rays(float x, float y, const std::vector<float>& rays) {
  std::vector<cv::Point2f> polygon;
  const double step = 2 * M_PI / static_cast<double>(rays.size());
  for (std::size_t k = 0; k < rays.size(); ++k) {
    const double theta = step * static_cast<double>(k);
    polygon.emplace_back(static_cast<float>(x + rays[k] * std::sin(theta)),
                         static_cast<float>(y + rays[k] * std::cos(theta)));
  }
  return polygon;
}

MaskPatch fill_polygon(const std::vector<cv::Point2f>& polygon, int image_height, int image_width) {
  MaskPatch patch;
  if (polygon.empty() || image_height <= 0 || image_width <= 0) return patch;
  std::vector<cv::Point> vertices;
  int x0 = image_width, y0 = image_height, x1 = -1, y1 = -1;
  for (const cv::Point2f& p : polygon) {
    const cv::Point v(std::clamp(static_cast<int>(p.x), 0, image_width - 1),
                      std::clamp(static_cast<int>(p.y), 0, image_height - 1));
    vertices.push_back(v);
    x0 = std::min(x0, v.x), y0 = std::min(y0, v.y);
    x1 = std::max(x1, v.x), y1 = std::max(y1, v.y);
  }
  patch.left = x0;
  patch.top = y0;
  patch.width = x1 - x0 + 1;
  patch.height = y1 - y0 + 1;
  cv::Mat canvas = cv::Mat::zeros(patch.height, patch.width, CV_8U);
  for (cv::Point& v : vertices) v -= cv::Point(x0, y0);
  cv::fillPoly(canvas, std::vector<std::vector<cv::Point>>{vertices}, cv::Scalar(1));
  patch.pixels.assign(canvas.datastart, canvas.dataend);
  return patch;
}

}  // namespace centermask
