// FCOS's target assignment; see fcos_assignment.h.

#include "centermask/modeling/fcos/fcos_assignment.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace centermask {

std::vector<FcosLevel> fcos_levels(int input_height, int input_width) {
  const float inf = std::numeric_limits<float>::infinity();
  const float bounds[6] = {0, 64, 128, 256, 512, inf};
  std::vector<FcosLevel> levels;
  for (int i = 0; i < 5; ++i) {
    const int stride = 8 << i;
    levels.push_back({stride, (input_height + stride - 1) / stride,
                      (input_width + stride - 1) / stride, bounds[i], bounds[i + 1]});
  }
  return levels;
}

float fcos_centerness(float left, float top, float right, float bottom) {
  if (left <= 0 || top <= 0 || right <= 0 || bottom <= 0) return 0.0f;
  return std::sqrt((std::min(left, right) / std::max(left, right)) *
                   (std::min(top, bottom) / std::max(top, bottom)));
}

FcosTargets assign_fcos_targets(const std::vector<FcosLevel>& levels,
                                const std::vector<BoxXYXY>& boxes,
                                const std::vector<std::int32_t>& classes,
                                const FcosAssignOptions& options,
                                const std::vector<std::array<float, 2>>& sampling_centers) {
  if (boxes.size() != classes.size())
    throw std::invalid_argument(
        fmt::format("FCOS assignment: {} boxes but {} classes", boxes.size(), classes.size()));
  if (!sampling_centers.empty() && sampling_centers.size() != boxes.size())
    throw std::invalid_argument(fmt::format("FCOS assignment: {} boxes but {} sampling centers",
                                            boxes.size(), sampling_centers.size()));
  if (options.center_sampling_radius < 0)
    throw std::invalid_argument(
        fmt::format("FCOS assignment: center_sampling_radius must be ≥ 0, got {}",
                    options.center_sampling_radius));
  FcosTargets t;
  std::int64_t total = 0;
  for (const FcosLevel& level : levels) {
    if (level.stride_px < 1 || level.height < 0 || level.width < 0 ||
        !(level.min_size <= level.max_size))
      throw std::invalid_argument(fmt::format(
          "FCOS assignment: malformed level (stride {}, {}x{} locations, sizes [{}, {}])",
          level.stride_px, level.height, level.width, level.min_size, level.max_size));
    t.level_begin.push_back(total);
    total += static_cast<std::int64_t>(level.height) * level.width;
  }
  t.level_begin.push_back(total);
  const auto n = static_cast<std::size_t>(total);
  t.object.assign(n, -1);
  t.label.assign(n, -1);
  t.ltrb.assign(4 * n, 0.0f);
  t.centerness.assign(n, 0.0f);

  for (std::size_t li = 0; li < levels.size(); ++li) {
    const FcosLevel& level = levels[li];
    const float radius_px = static_cast<float>(options.center_sampling_radius) * level.stride_px;
    for (int y = 0; y < level.height; ++y) {
      for (int x = 0; x < level.width; ++x) {
        const float px = static_cast<float>(x * level.stride_px + level.stride_px / 2);
        const float py = static_cast<float>(y * level.stride_px + level.stride_px / 2);
        double best_area = std::numeric_limits<double>::infinity();
        std::int64_t best = -1;
        float best_ltrb[4] = {0, 0, 0, 0};
        for (std::size_t g = 0; g < boxes.size(); ++g) {
          const BoxXYXY& box = boxes[g];
          const float l = px - box.x0, t_ = py - box.y0, r = box.x1 - px, b = box.y1 - py;
          if (std::min({l, t_, r, b}) <= 0) continue;  // outside the box
          if (options.center_sampling_radius > 0) {
            // The central region: radius_px around the center, clipped to the box.
            const float cx = sampling_centers.empty() ? box.center_x() : sampling_centers[g][0];
            const float cy = sampling_centers.empty() ? box.center_y() : sampling_centers[g][1];
            const float x0 = std::max(box.x0, cx - radius_px),
                        x1 = std::min(box.x1, cx + radius_px);
            const float y0 = std::max(box.y0, cy - radius_px),
                        y1 = std::min(box.y1, cy + radius_px);
            if (std::min({px - x0, py - y0, x1 - px, y1 - py}) <= 0) continue;
          }
          const float reach = std::max({l, t_, r, b});
          if (reach < level.min_size || reach > level.max_size) continue;
          const double area = static_cast<double>(box.width()) * box.height();
          if (area < best_area) {  // ties: the first box
            best_area = area;
            best = static_cast<std::int64_t>(g);
            best_ltrb[0] = l, best_ltrb[1] = t_, best_ltrb[2] = r, best_ltrb[3] = b;
          }
        }
        if (best < 0) continue;
        const auto i = static_cast<std::size_t>(t.level_begin[li] + y * level.width + x);
        t.object[i] = best;
        t.label[i] = classes[static_cast<std::size_t>(best)];
        std::copy(best_ltrb, best_ltrb + 4, t.ltrb.begin() + static_cast<std::ptrdiff_t>(4 * i));
        t.centerness[i] = fcos_centerness(best_ltrb[0], best_ltrb[1], best_ltrb[2], best_ltrb[3]);
        ++t.num_positive;
      }
    }
  }
  return t;
}

}  // namespace centermask
