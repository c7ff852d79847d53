// Polygon rasterisation as pycocotools' rleFrPoly: the outline is upsampled 5x, walked edge by
// edge along each edge's major axis, and every crossing of a pixel column's center becomes a
// run boundary. Ground-truth areas and IoUs agree with the reference only if this agrees
// bit for bit, so the integer and rounding steps below are deliberate.

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "centermask/structures/rle.h"

namespace centermask {
namespace {

// Beyond this the upsampled outline would not fit in int arithmetic (and no image is this big).
constexpr double kMaxPolygonCoordinate = 1.0e6;

}  // namespace

Rle rle_from_polygon(Span<double> xy, int height, int width) {
  if (xy.size() % 2 != 0) {
    throw std::invalid_argument("polygon has an odd number of coordinates (" +
                                std::to_string(xy.size()) + ")");
  }
  const std::size_t k = xy.size() / 2;
  if (k < 3) {
    throw std::invalid_argument("polygon has " + std::to_string(k) + " points, at least 3 needed");
  }
  for (double v : xy) {
    if (!std::isfinite(v) || std::fabs(v) > kMaxPolygonCoordinate) {
      throw std::invalid_argument("polygon coordinate " + std::to_string(v) +
                                  " is not finite or out of range");
    }
  }
  if (height <= 0 || width <= 0) return rle_empty(std::max(height, 0), std::max(width, 0));
  if (static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width) > kMaxMaskPixels) {
    throw std::invalid_argument("mask size exceeds COCO's 32-bit run lengths");
  }

  constexpr double kScale = 5;
  std::vector<int> x(k + 1), y(k + 1);
  for (std::size_t j = 0; j < k; ++j) x[j] = static_cast<int>(kScale * xy[j * 2] + .5);
  for (std::size_t j = 0; j < k; ++j) y[j] = static_cast<int>(kScale * xy[j * 2 + 1] + .5);
  x[k] = x[0];
  y[k] = y[0];

  // Dense points along the whole boundary, walked without being stored: each point is
  // compared with the one before it (across edges too) for a crossing of a pixel column's
  // center, which is all that is kept, downsampled to pixel units.
  std::size_t num_dense = 0;
  for (std::size_t j = 0; j < k; ++j) {
    num_dense +=
        static_cast<std::size_t>(std::max(std::abs(x[j] - x[j + 1]), std::abs(y[j] - y[j + 1]))) +
        1;
  }
  std::vector<std::uint32_t> starts;
  starts.reserve(num_dense / static_cast<std::size_t>(kScale) + k + 2);
  bool have_previous = false;
  int u_previous = 0, v_previous = 0;
  auto visit = [&](int u, int v) {
    // (m + .5) / 5 - .5 is a whole number exactly when m - 2 is a multiple of 5: tested in
    // integers first, so that four points in five skip the floating-point steps.
    const int m = u < u_previous ? u : u - 1;
    if (have_previous && u != u_previous && (m - 2) % 5 == 0) {
      double xd = static_cast<double>(m);
      xd = (xd + .5) / kScale - .5;
      if (std::floor(xd) == xd && xd >= 0 && xd <= width - 1) {
        double yd = static_cast<double>(v < v_previous ? v : v_previous);
        yd = (yd + .5) / kScale - .5;
        if (yd < 0) {
          yd = 0;
        } else if (yd > height) {
          yd = height;
        }
        yd = std::ceil(yd);
        starts.push_back(
            static_cast<std::uint32_t>(static_cast<int>(xd) * height + static_cast<int>(yd)));
      }
    }
    have_previous = true;
    u_previous = u;
    v_previous = v;
  };
  for (std::size_t j = 0; j < k; ++j) {
    int xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    const double s =
        dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
    if (dx >= dy) {
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        visit(t + xs, static_cast<int>(ys + s * t + .5));
      }
    } else {
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        visit(static_cast<int>(xs + s * t + .5), t + ys);
      }
    }
  }
  starts.push_back(static_cast<std::uint32_t>(static_cast<std::uint64_t>(height) * width));

  // Sorted crossing positions become run lengths; zero-length runs fold into their neighbour.
  std::sort(starts.begin(), starts.end());
  std::uint32_t previous = 0;
  for (std::uint32_t& a : starts) {
    std::uint32_t t = a;
    a -= previous;
    previous = t;
  }
  Rle rle;
  rle.height = height;
  rle.width = width;
  std::size_t j = 0;
  rle.counts.push_back(starts[j++]);
  while (j < starts.size()) {
    if (starts[j] > 0) {
      rle.counts.push_back(starts[j++]);
    } else {
      ++j;
      if (j < starts.size()) rle.counts.back() += starts[j++];
    }
  }
  return rle;
}

Rle rle_from_polygons(const std::vector<Span<double>>& polygons, int height, int width) {
  if (polygons.empty()) return rle_empty(height, width);
  std::vector<Rle> parts;
  parts.reserve(polygons.size());
  for (const Span<double>& polygon : polygons)
    parts.push_back(rle_from_polygon(polygon, height, width));
  return rle_merge(parts, /*intersect=*/false);
}

Rle rle_from_box(const BoxXYWH& box, int height, int width) {
  const double xs = box.x, xe = box.x + box.width;
  const double ys = box.y, ye = box.y + box.height;
  const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
  return rle_from_polygon(Span<double>(xy, 8), height, width);
}

}  // namespace centermask
