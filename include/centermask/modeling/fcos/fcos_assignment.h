#pragma once
// FCOS's assignment of ground-truth boxes to feature locations (Tian et al. 2019; SPEC §3–4),
// shared by PolarMask and CenterMask-FCOS. A location of a level with stride s sits at
// (x·s + ⌊s/2⌋, y·s + ⌊s/2⌋) in input pixels. It is positive for a box when
//   - it lies inside the box — with center sampling, inside the box's central region of
//     radius r·s around the box center (clipped to the box);
//   - the largest of its distances to the box's sides, max(l, t, r, b), lies within the
//     level's size range [min_size, max_size] (FCOS's object sizes of interest);
// and when several boxes qualify, the one with the smallest area wins. Each positive gets its
// box's class, the distances (l, t, r, b) in pixels and the centerness target
// √(min(l, r) / max(l, r) · min(t, b) / max(t, b)).

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

#include "centermask/structures/instances.h"

namespace centermask {

struct FcosLevel {
  int stride_px = 8;
  int height = 0;  ///< locations along each side
  int width = 0;
  float min_size = 0;  ///< the level's range of max(l, t, r, b), in input pixels
  float max_size = std::numeric_limits<float>::infinity();
};

/// FCOS's five levels P3–P7 for an input of height × width (sides ⌈side / stride⌉) with its
/// size ranges [0, 64], [64, 128], [128, 256], [256, 512], [512, ∞).
std::vector<FcosLevel> fcos_levels(int input_height, int input_width);

struct FcosAssignOptions {
  /// r of center sampling (FCOS's improvement, PolarMask's 1.5); 0 = anywhere inside the box.
  double center_sampling_radius = 1.5;
};

/// Per location, levels concatenated finest first, row-major within a level.
struct FcosTargets {
  std::vector<std::int64_t> level_begin;  ///< first location of each level, then the total
  std::vector<std::int64_t> object;       ///< index of the assigned box, −1 = background
  std::vector<std::int64_t> label;        ///< its class index, −1 = background
  std::vector<float> ltrb;                ///< 4 per location, pixels; 0 for background
  std::vector<float> centerness;          ///< 0 for background
  std::int64_t num_positive = 0;

  std::int64_t num_locations() const { return level_begin.empty() ? 0 : level_begin.back(); }
};

/// `sampling_centers` (optional, one (x, y) per box) moves each box's center-sampling region
/// from the box center to that point (PolarMask's mass centers), still clipped to the box.
/// std::invalid_argument when boxes, classes or centers differ in length or a level is
/// malformed.
FcosTargets assign_fcos_targets(const std::vector<FcosLevel>& levels,
                                const std::vector<BoxXYXY>& boxes,
                                const std::vector<std::int32_t>& classes,
                                const FcosAssignOptions& options = {},
                                const std::vector<std::array<float, 2>>& sampling_centers = {});

/// √(min(l, r) / max(l, r) · min(t, b) / max(t, b)); 0 when a distance is not positive.
float fcos_centerness(float left, float top, float right, float bottom);

}  // namespace centermask
