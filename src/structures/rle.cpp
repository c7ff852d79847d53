// RLE operations. The loops mirror pycocotools' maskApi.c step for step where the exact
// output matters (merge, bbox, IoU), because tie-breaking details there change COCO metrics.

#include "centermask/structures/rle.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace centermask {
namespace {

void check_size(int height, int width) {
  if (height < 0 || width < 0) throw std::invalid_argument("mask size must not be negative");
  if (static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width) > kMaxMaskPixels) {
    throw std::invalid_argument("mask of " + std::to_string(height) + "x" + std::to_string(width) +
                                " pixels exceeds COCO's 32-bit run lengths");
  }
}

void check_same_size(const Rle& a, const Rle& b) {
  if (a.height != b.height || a.width != b.width) {
    throw std::invalid_argument("masks differ in size: " + std::to_string(a.height) + "x" +
                                std::to_string(a.width) + " vs " + std::to_string(b.height) + "x" +
                                std::to_string(b.width));
  }
}

}  // namespace

double box_iou(const BoxXYWH& dt, const BoxXYWH& gt, bool gt_is_crowd) {
  double w = std::min(dt.x + dt.width, gt.x + gt.width) - std::max(dt.x, gt.x);
  if (w <= 0) return 0;
  double h = std::min(dt.y + dt.height, gt.y + gt.height) - std::max(dt.y, gt.y);
  if (h <= 0) return 0;
  double inter = w * h;
  double dt_area = dt.width * dt.height;
  double uni = gt_is_crowd ? dt_area : dt_area + gt.width * gt.height - inter;
  return inter / uni;
}

Rle rle_empty(int height, int width) {
  check_size(height, width);
  Rle rle;
  rle.height = height;
  rle.width = width;
  rle.counts.push_back(static_cast<std::uint32_t>(rle.num_pixels()));
  return rle;
}

namespace {

// Runs of a mask visited in column-major order; `pixel(x, y)` says whether a pixel is set.
template <typename PixelFn>
Rle encode_columns(int height, int width, const PixelFn& pixel) {
  check_size(height, width);
  Rle rle;
  rle.height = height;
  rle.width = width;
  bool previous = false;
  std::uint32_t run = 0;
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) {
      const bool v = pixel(x, y);
      if (v != previous) {
        rle.counts.push_back(run);
        run = 0;
        previous = v;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

}  // namespace

Rle rle_encode(const std::uint8_t* bitmap, int height, int width, std::size_t row_stride) {
  return encode_columns(height, width, [&](int x, int y) {
    return bitmap[static_cast<std::size_t>(y) * row_stride + static_cast<std::size_t>(x)] != 0;
  });
}

Rle rle_encode_column_major(const std::uint8_t* bitmap, int height, int width) {
  return encode_columns(height, width, [&](int x, int y) {
    return bitmap[static_cast<std::size_t>(x) * static_cast<std::size_t>(height) +
                  static_cast<std::size_t>(y)] != 0;
  });
}

void rle_decode(const Rle& rle, std::uint8_t* bitmap, std::size_t row_stride) {
  const std::uint64_t h = static_cast<std::uint64_t>(rle.height);
  for (std::uint64_t y = 0; y < h; ++y) {
    std::memset(bitmap + y * row_stride, 0, static_cast<std::size_t>(rle.width));
  }
  if (h == 0) return;
  std::uint64_t position = 0;
  const std::uint64_t total = rle.num_pixels();
  for (std::size_t j = 0; j < rle.counts.size(); ++j) {
    std::uint64_t run = std::min<std::uint64_t>(rle.counts[j], total - position);
    if (j % 2 == 1) {
      std::uint64_t p = position;
      std::uint64_t left = run;
      while (left > 0) {
        std::uint64_t y = p % h;
        std::uint64_t x = p / h;
        std::uint64_t n = std::min(left, h - y);
        for (std::uint64_t k = 0; k < n; ++k) bitmap[(y + k) * row_stride + x] = 1;
        p += n;
        left -= n;
      }
    }
    position += run;
  }
}

std::uint64_t rle_area(const Rle& rle) {
  std::uint64_t area = 0;
  for (std::size_t j = 1; j < rle.counts.size(); j += 2) area += rle.counts[j];
  return area;
}

BoxXYWH rle_bbox(const Rle& rle) {
  const std::uint32_t h = static_cast<std::uint32_t>(rle.height);
  const std::uint32_t w = static_cast<std::uint32_t>(rle.width);
  // A trailing zero run never extends the box, so only complete (zero, one) pairs count.
  const std::size_t m = (rle.counts.size() / 2) * 2;
  if (m == 0 || h == 0 || w == 0) return {};
  std::uint32_t xs = w, ys = h, xe = 0, ye = 0, xp = 0, cc = 0;
  for (std::size_t j = 0; j < m; ++j) {
    cc += rle.counts[j];
    std::uint32_t t = cc - static_cast<std::uint32_t>(j % 2);
    std::uint32_t y = t % h;
    std::uint32_t x = (t - y) / h;
    if (j % 2 == 0) {
      xp = x;
    } else if (xp < x) {
      // The run wraps into a later column, so it covers the full height in between.
      ys = 0;
      ye = h - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
          static_cast<double>(ye - ys + 1)};
}

Rle rle_merge(Span<Rle> masks, bool intersect) {
  if (masks.empty()) return {};
  for (const Rle& m : masks) check_same_size(masks[0], m);
  if (masks.size() == 1 || masks[0].num_pixels() == 0) return masks[0];
  std::vector<std::uint32_t> accumulated = masks[0].counts;
  std::vector<std::uint32_t> merged;
  for (std::size_t i = 1; i < masks.size(); ++i) {
    const std::vector<std::uint32_t>& a = accumulated;
    const std::vector<std::uint32_t>& b = masks[i].counts;
    merged.clear();
    std::uint32_t ca = a[0], cb = b[0];
    bool v = false, va = false, vb = false;
    std::size_t ia = 1, ib = 1;
    std::uint32_t cc = 0;
    std::uint32_t ct = 1;
    while (ct > 0) {
      std::uint32_t c = std::min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && ia < a.size()) {
        ca = a[ia++];
        va = !va;
      }
      ct += ca;
      cb -= c;
      if (!cb && ib < b.size()) {
        cb = b[ib++];
        vb = !vb;
      }
      ct += cb;
      bool vp = v;
      v = intersect ? (va && vb) : (va || vb);
      if (v != vp || ct == 0) {
        merged.push_back(cc);
        cc = 0;
      }
    }
    accumulated.swap(merged);
  }
  Rle out;
  out.height = masks[0].height;
  out.width = masks[0].width;
  out.counts = std::move(accumulated);
  return out;
}

namespace {

// First and last foreground pixel in column-major order; empty when there is none.
struct ForegroundSpan {
  std::uint64_t first = 1;
  std::uint64_t last = 0;
  bool empty() const { return first > last; }
};

ForegroundSpan foreground_span(const Rle& rle) {
  ForegroundSpan span;
  std::uint64_t position = 0;
  for (std::size_t j = 0; j < rle.counts.size(); ++j) {
    const std::uint32_t run = rle.counts[j];
    if (j % 2 == 1 && run > 0) {
      if (span.empty()) span.first = position;
      span.last = position + run - 1;
    }
    position += run;
  }
  return span;
}

// Masks whose foreground lies in disjoint column ranges cannot intersect: a cheap exact
// shortcut (pycocotools takes the same one with full boxes).
bool columns_disjoint(const ForegroundSpan& a, const ForegroundSpan& b, std::uint64_t height) {
  if (a.empty() || b.empty() || height == 0) return true;
  return a.last / height < b.first / height || b.last / height < a.first / height;
}

// Intersection and union of two masks of equal size, walking both run lists once.
double rle_iou_exact(const Rle& dt, const Rle& gt, bool gt_is_crowd) {
  if (dt.counts.empty() || gt.counts.empty()) return 0;
  std::uint32_t ca = dt.counts[0], cb = gt.counts[0];
  const std::size_t ka = dt.counts.size(), kb = gt.counts.size();
  bool va = false, vb = false;
  std::size_t a = 1, b = 1;
  std::uint64_t inter = 0, uni = 0;
  std::uint32_t ct = 1;
  while (ct > 0) {
    std::uint32_t c = std::min(ca, cb);
    if (va || vb) {
      uni += c;
      if (va && vb) inter += c;
    }
    ct = 0;
    ca -= c;
    if (!ca && a < ka) {
      ca = dt.counts[a++];
      va = !va;
    }
    ct += ca;
    cb -= c;
    if (!cb && b < kb) {
      cb = gt.counts[b++];
      vb = !vb;
    }
    ct += cb;
  }
  if (inter == 0) return 0;
  if (gt_is_crowd) uni = rle_area(dt);
  return static_cast<double>(inter) / static_cast<double>(uni);
}

}  // namespace

double rle_iou(const Rle& dt, const Rle& gt, bool gt_is_crowd) {
  check_same_size(dt, gt);
  if (columns_disjoint(foreground_span(dt), foreground_span(gt),
                       static_cast<std::uint64_t>(dt.height)))
    return 0;
  return rle_iou_exact(dt, gt, gt_is_crowd);
}

namespace {

// A mask's foreground as [start, end) runs of pixel positions (column-major), one pair after
// another, with its area and extent: built once per mask of an IoU matrix, so that each pair
// walks only foreground runs, half the steps of the run-length merge in rle_iou_exact.
struct ForegroundRuns {
  std::vector<std::uint32_t> bounds;  // start0, end0, start1, end1, ...
  std::uint64_t area = 0;
  ForegroundSpan span;
};

void foreground_runs(const Rle& rle, ForegroundRuns& out) {
  out.bounds.clear();
  out.area = 0;
  std::uint64_t position = 0;
  for (std::size_t j = 0; j < rle.counts.size(); ++j) {
    const std::uint32_t run = rle.counts[j];
    if (j % 2 == 1 && run > 0) {
      out.bounds.push_back(static_cast<std::uint32_t>(position));
      out.bounds.push_back(static_cast<std::uint32_t>(position + run));  // <= h * w < 2^32
      out.area += run;
    }
    position += run;
  }
  out.span = ForegroundSpan{};
  if (!out.bounds.empty()) {
    out.span.first = out.bounds.front();
    out.span.last = out.bounds.back() - std::uint64_t{1};
  }
}

std::uint64_t intersection_area(const ForegroundRuns& a, const ForegroundRuns& b) {
  const std::uint32_t* x = a.bounds.data();
  const std::uint32_t* y = b.bounds.data();
  const std::uint32_t* const x_end = x + a.bounds.size();
  const std::uint32_t* const y_end = y + b.bounds.size();
  std::uint64_t inter = 0;
  while (x != x_end && y != y_end) {
    const std::uint32_t lo = std::max(x[0], y[0]), hi = std::min(x[1], y[1]);
    if (hi > lo) inter += hi - lo;
    if (x[1] < y[1]) {
      x += 2;
    } else {
      y += 2;
    }
  }
  return inter;
}

}  // namespace

std::vector<double> rle_iou_matrix(Span<Rle> dts, Span<Rle> gts, Span<std::uint8_t> gt_is_crowd) {
  if (gt_is_crowd.size() != gts.size()) {
    throw std::invalid_argument("rle_iou_matrix: one crowd flag per ground truth is needed");
  }
  // Each worker's runs keep their storage from call to call (the evaluation calls this for
  // every image and category).
  thread_local std::vector<ForegroundRuns> dt_runs, gt_runs;
  if (dt_runs.size() < dts.size()) dt_runs.resize(dts.size());
  if (gt_runs.size() < gts.size()) gt_runs.resize(gts.size());
  for (std::size_t d = 0; d < dts.size(); ++d) foreground_runs(dts[d], dt_runs[d]);
  for (std::size_t g = 0; g < gts.size(); ++g) foreground_runs(gts[g], gt_runs[g]);
  std::vector<double> ious(dts.size() * gts.size(), 0.0);
  for (std::size_t d = 0; d < dts.size(); ++d) {
    for (std::size_t g = 0; g < gts.size(); ++g) {
      check_same_size(dts[d], gts[g]);
      const ForegroundRuns& dt = dt_runs[d];
      const ForegroundRuns& gt = gt_runs[g];
      if (columns_disjoint(dt.span, gt.span, static_cast<std::uint64_t>(dts[d].height))) continue;
      const std::uint64_t inter = intersection_area(dt, gt);
      if (inter == 0) continue;
      // As rle_iou_exact: the union is what either covers, or the detection alone against a
      // crowd region.
      const std::uint64_t uni = gt_is_crowd[g] ? dt.area : dt.area + gt.area - inter;
      ious[d * gts.size() + g] = static_cast<double>(inter) / static_cast<double>(uni);
    }
  }
  return ious;
}

}  // namespace centermask
