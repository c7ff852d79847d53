// Greedy box NMS; see nms.h.

#include "modeling/ops/nms.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "centermask/structures/box.h"

namespace centermask {

namespace {

void check_lengths(const std::vector<BoxXYXY>& boxes, const std::vector<float>& scores,
                   const std::vector<std::int64_t>& class_id) {
  if (scores.size() != boxes.size() || (!class_id.empty() && class_id.size() != boxes.size()))
    throw std::invalid_argument(
        fmt::format("box_nms: {} boxes, {} scores and {} class ids (they must match; class ids "
                    "may be empty)",
                    boxes.size(), scores.size(), class_id.size()));
}

double area(const BoxXYXY& b) {
  return std::max(0.0, static_cast<double>(b.x1) - b.x0) *
         std::max(0.0, static_cast<double>(b.y1) - b.y0);
}

}  // namespace

double box_iou(const BoxXYXY& a, const BoxXYXY& b) {
  // The evaluator's (COCO's) box IoU, without the crowd rule.
  return box_iou(BoxXYWH{a.x0, a.y0, a.width(), a.height()},
                 BoxXYWH{b.x0, b.y0, b.width(), b.height()}, false);
}

std::vector<std::int64_t> box_nms(const std::vector<BoxXYXY>& boxes,
                                  const std::vector<float>& scores, double iou_threshold,
                                  const std::vector<std::int64_t>& class_id) {
  check_lengths(boxes, scores, class_id);
  const std::size_t n = boxes.size();
  // One sort, areas computed once, a suppressed flag per box; each kept box only looks at the
  // boxes after it in score order.
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
  });
  std::vector<double> areas(n);
  for (std::size_t i = 0; i < n; ++i) areas[i] = area(boxes[i]);
  std::vector<char> suppressed(n, 0);
  std::vector<std::int64_t> kept;
  for (std::size_t oi = 0; oi < n; ++oi) {
    const auto i = static_cast<std::size_t>(order[oi]);
    if (suppressed[i]) continue;
    kept.push_back(static_cast<std::int64_t>(i));
    const BoxXYXY& a = boxes[i];
    for (std::size_t oj = oi + 1; oj < n; ++oj) {
      const auto j = static_cast<std::size_t>(order[oj]);
      if (suppressed[j] || (!class_id.empty() && class_id[j] != class_id[i])) continue;
      const BoxXYXY& b = boxes[j];
      const double w = std::min<double>(a.x1, b.x1) - std::max<double>(a.x0, b.x0);
      const double h = std::min<double>(a.y1, b.y1) - std::max<double>(a.y0, b.y0);
      if (w <= 0 || h <= 0) continue;
      const double inter = w * h;
      const double uni = areas[i] + areas[j] - inter;
      if (uni > 0 && inter / uni > iou_threshold) suppressed[j] = 1;
    }
  }
  return kept;
}

std::vector<std::int64_t> box_nms_reference(const std::vector<BoxXYXY>& boxes,
                                            const std::vector<float>& scores, double iou_threshold,
                                            const std::vector<std::int64_t>& class_id) {
  check_lengths(boxes, scores, class_id);
  std::vector<std::int64_t> remaining(boxes.size());
  std::iota(remaining.begin(), remaining.end(), 0);
  std::vector<std::int64_t> kept;
  while (!remaining.empty()) {
    // The best remaining box (the lowest index among equal scores).
    std::size_t best = 0;
    for (std::size_t r = 1; r < remaining.size(); ++r)
      if (scores[static_cast<std::size_t>(remaining[r])] >
          scores[static_cast<std::size_t>(remaining[best])])
        best = r;
    const std::int64_t top = remaining[best];
    kept.push_back(top);
    std::vector<std::int64_t> next;
    for (std::size_t r = 0; r < remaining.size(); ++r) {
      if (r == best) continue;
      const std::int64_t j = remaining[r];
      const bool same_class = class_id.empty() || class_id[static_cast<std::size_t>(j)] ==
                                                      class_id[static_cast<std::size_t>(top)];
      if (same_class && box_iou(boxes[static_cast<std::size_t>(top)],
                                boxes[static_cast<std::size_t>(j)]) > iou_threshold)
        continue;
      next.push_back(j);
    }
    remaining = std::move(next);
  }
  return kept;
}

}  // namespace centermask
