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
constexpr double kScale = 5;  // pycocotools upsamples the outline 5x

// What both walks share: the checks, the upsampled vertices, and turning the crossings into
// run lengths.
struct UpsampledPolygon {
  std::vector<int> x, y;  // k + 1 vertices, the last equal to the first
  bool empty_mask = false;
};

UpsampledPolygon upsample_polygon(Span<double> xy, int height, int width) {
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
  UpsampledPolygon polygon;
  if (height <= 0 || width <= 0) {
    polygon.empty_mask = true;
    return polygon;
  }
  if (static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width) > kMaxMaskPixels) {
    throw std::invalid_argument("mask size exceeds COCO's 32-bit run lengths");
  }
  polygon.x.resize(k + 1);
  polygon.y.resize(k + 1);
  for (std::size_t j = 0; j < k; ++j) polygon.x[j] = static_cast<int>(kScale * xy[j * 2] + .5);
  for (std::size_t j = 0; j < k; ++j) polygon.y[j] = static_cast<int>(kScale * xy[j * 2 + 1] + .5);
  polygon.x[k] = polygon.x[0];
  polygon.y[k] = polygon.y[0];
  return polygon;
}

// Collects the crossings of pixel columns' centers between consecutive points of the dense
// outline, downsampled to pixel units, as pycocotools does.
class CrossingCollector {
 public:
  CrossingCollector(int height, int width, std::size_t expected) : height_(height), width_(width) {
    starts_.reserve(expected);
    columns_.reserve(expected);
  }

  // The pair of consecutive dense points whose columns differ, `m` the lower column.
  void crossing(int m, int v_a, int v_b) {
    // (m + .5) / 5 - .5 is a whole number exactly when m - 2 is a multiple of 5: tested in
    // integers first, so that four points in five skip the floating-point steps.
    if ((m - 2) % 5 != 0) return;
    double xd = static_cast<double>(m);
    xd = (xd + .5) / kScale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > width_ - 1) return;
    double yd = static_cast<double>(v_a < v_b ? v_a : v_b);
    yd = (yd + .5) / kScale - .5;
    if (yd < 0) {
      yd = 0;
    } else if (yd > height_) {
      yd = height_;
    }
    yd = std::ceil(yd);
    starts_.push_back(
        static_cast<std::uint32_t>(static_cast<int>(xd) * height_ + static_cast<int>(yd)));
    columns_.push_back(static_cast<std::uint32_t>(xd));
  }

  // The next dense point of the walk: a crossing with the one before it where the column
  // changes (from one point to the next the column moves by at most one).
  void visit(int u, int v) {
    if (have_previous_ && u != u_previous_) crossing(u < u_previous_ ? u : u - 1, v, v_previous_);
    have_previous_ = true;
    u_previous_ = u;
    v_previous_ = v;
  }
  // Sets the previous point without looking for a crossing (the walk skipped to it).
  void jump_to(int u, int v) {
    have_previous_ = true;
    u_previous_ = u;
    v_previous_ = v;
  }

  // The crossings in order: std::sort, the reference.
  Rle finish_with_sort() {
    std::sort(starts_.begin(), starts_.end());
    return finish_sorted();
  }

  // The crossings in order, by a counting sort on their columns and an insertion sort for
  // the rows within each column: a closed outline crosses every column center between its
  // extremes, so there are about as many crossings as columns, a few per column, and this
  // costs about one step per crossing where std::sort took 40 % of the rasterisation.
  Rle finish_with_column_sort() {
    if (!starts_.empty()) {
      const auto [lowest, highest] = std::minmax_element(columns_.begin(), columns_.end());
      const std::uint32_t first_column = *lowest;
      bucket_ends_.assign(*highest - first_column + 2, 0);
      for (std::uint32_t column : columns_) ++bucket_ends_[column - first_column + 1];
      for (std::size_t c = 1; c < bucket_ends_.size(); ++c) bucket_ends_[c] += bucket_ends_[c - 1];
      sorted_.resize(starts_.size());
      for (std::size_t i = 0; i < starts_.size(); ++i)
        sorted_[bucket_ends_[columns_[i] - first_column]++] = starts_[i];
      for (std::size_t i = 1; i < sorted_.size(); ++i) {  // only rows within a column move
        const std::uint32_t value = sorted_[i];
        std::size_t j = i;
        for (; j > 0 && sorted_[j - 1] > value; --j) sorted_[j] = sorted_[j - 1];
        sorted_[j] = value;
      }
      starts_.swap(sorted_);
    }
    return finish_sorted();
  }

 private:
  // Sorted crossing positions become run lengths; zero-length runs fold into their neighbour.
  Rle finish_sorted() {
    // The end of the mask: no crossing lies beyond it.
    starts_.push_back(static_cast<std::uint32_t>(static_cast<std::uint64_t>(height_) * width_));
    std::uint32_t previous = 0;
    for (std::uint32_t& a : starts_) {
      std::uint32_t t = a;
      a -= previous;
      previous = t;
    }
    Rle rle;
    rle.height = height_;
    rle.width = width_;
    rle.counts.reserve(starts_.size());
    std::size_t j = 0;
    rle.counts.push_back(starts_[j++]);
    while (j < starts_.size()) {
      if (starts_[j] > 0) {
        rle.counts.push_back(starts_[j++]);
      } else {
        ++j;
        if (j < starts_.size()) rle.counts.back() += starts_[j++];
      }
    }
    return rle;
  }

  int height_, width_;
  std::vector<std::uint32_t> starts_, columns_, sorted_, bucket_ends_;
  bool have_previous_ = false;
  int u_previous_ = 0, v_previous_ = 0;
};

// One edge's end points in walking order, as pycocotools orders them: along the major axis,
// from the lower end (flip says the walk runs from the edge's end back to its start, so that
// the dense points still go from the edge's start to its end).
struct Edge {
  int xs, xe, ys, ye, dx, dy;
  bool flip;
  double s;  // the slope along the major axis
  Edge(int x0, int x1, int y0, int y1) : xs(x0), xe(x1), ys(y0), ye(y1) {
    dx = std::abs(xe - xs);
    dy = std::abs(ys - ye);
    flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    s = dx >= dy ? static_cast<double>(ye - ys) / dx : static_cast<double>(xe - xs) / dy;
  }
  // The dense point at step t along the major axis (pycocotools' rounding, bit for bit). A
  // zero-length edge has no slope (0 / 0): its one point is its vertex.
  int minor_x(int t) const { return static_cast<int>(xs + s * t + .5); }
  int minor_y(int t) const { return dx == 0 ? ys : static_cast<int>(ys + s * t + .5); }
};

std::size_t dense_length(const UpsampledPolygon& p) {
  std::size_t n = 0;
  for (std::size_t j = 0; j + 1 < p.x.size(); ++j) {
    n += static_cast<std::size_t>(
             std::max(std::abs(p.x[j] - p.x[j + 1]), std::abs(p.y[j] - p.y[j + 1]))) +
         1;
  }
  return n;
}

// A y-major edge, every dense point in walking order: the column moves at a few of them only,
// and where it does depends on the rounding, so both walks visit them all.
void walk_y_major_edge(const Edge& e, CrossingCollector& collector) {
  for (int d = 0; d <= e.dy; ++d) {
    const int t = e.flip ? e.dy - d : d;
    collector.visit(e.minor_x(t), t + e.ys);
  }
}

// Walks every edge of the outline: x-major edges by `walk_x_major`, y-major ones point by point.
template <typename WalkXMajor>
CrossingCollector walk_edges(const UpsampledPolygon& p, int height, int width,
                             const WalkXMajor& walk_x_major) {
  CrossingCollector collector(height, width, dense_length(p) / static_cast<std::size_t>(kScale));
  for (std::size_t j = 0; j + 1 < p.x.size(); ++j) {
    const Edge e(p.x[j], p.x[j + 1], p.y[j], p.y[j + 1]);
    if (e.dx >= e.dy) {
      walk_x_major(e, collector);
    } else {
      walk_y_major_edge(e, collector);
    }
  }
  return collector;
}

}  // namespace

Rle rle_from_polygon_reference(Span<double> xy, int height, int width) {
  const UpsampledPolygon p = upsample_polygon(xy, height, width);
  if (p.empty_mask) return rle_empty(std::max(height, 0), std::max(width, 0));
  // Every dense point of the outline, in order, each compared with the one before it.
  return walk_edges(p, height, width,
                    [](const Edge& e, CrossingCollector& collector) {
                      for (int d = 0; d <= e.dx; ++d) {
                        const int t = e.flip ? e.dx - d : d;
                        collector.visit(t + e.xs, e.minor_y(t));
                      }
                    })
      .finish_with_sort();
}

Rle rle_from_polygon(Span<double> xy, int height, int width) {
  const UpsampledPolygon p = upsample_polygon(xy, height, width);
  if (p.empty_mask) return rle_empty(std::max(height, 0), std::max(width, 0));
  return walk_edges(p, height, width,
                    [](const Edge& e, CrossingCollector& collector) {
                      // Along x the column moves by one at every point, and only a pair whose
                      // lower column m has m - 2 a multiple of 5 can cross a column's center:
                      // those pairs alone are computed, one in five. The pair of dense steps
                      // {tm, tm + 1} has lower column xs + tm whichever way the walk runs. The
                      // edge's first point is still compared with the previous edge's last
                      // (their columns can differ after rounding), and its last point is the
                      // next edge's previous one.
                      collector.visit(e.xs + (e.flip ? e.dx : 0), e.minor_y(e.flip ? e.dx : 0));
                      for (int tm = ((2 - e.xs) % 5 + 5) % 5; tm < e.dx; tm += 5)
                        collector.crossing(e.xs + tm, e.minor_y(tm), e.minor_y(tm + 1));
                      collector.jump_to(e.xs + (e.flip ? 0 : e.dx), e.minor_y(e.flip ? 0 : e.dx));
                    })
      .finish_with_column_sort();
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
