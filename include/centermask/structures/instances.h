#pragma once
// Object instances as the stages after loading see them, ground truth and predictions alike:
// a box in corner form, a class, a score, and the mask as a bitmap patch over the box (a
// full-image bitmap per instance would cost H·W bytes each).

#include <cstdint>
#include <vector>

namespace centermask {

/// An axis-aligned box by its corners, in pixels (x1, y1 exclusive in the continuous sense:
/// a box covering pixels 0..9 is [0, 10)).
struct BoxXYXY {
  float x0 = 0;
  float y0 = 0;
  float x1 = 0;
  float y1 = 0;

  float width() const { return x1 - x0; }
  float height() const { return y1 - y0; }
  float center_x() const { return 0.5f * (x0 + x1); }
  float center_y() const { return 0.5f * (y0 + y1); }
};

/// A binary mask restricted to a rectangle of the image: pixel (x, y) of the image is
/// pixels[(y - top) * width + (x - left)] when inside the rectangle, background outside.
struct MaskPatch {
  std::int32_t left = 0;
  std::int32_t top = 0;
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::vector<std::uint8_t> pixels;  ///< row-major, 0 or 1

  bool empty() const { return pixels.empty(); }
  std::uint8_t at_image(std::int32_t x, std::int32_t y) const {
    if (x < left || y < top || x >= left + width || y >= top + height) return 0;
    return pixels[static_cast<std::size_t>(y - top) * static_cast<std::size_t>(width) +
                  static_cast<std::size_t>(x - left)];
  }
  std::int64_t area() const {
    std::int64_t n = 0;
    for (std::uint8_t p : pixels) n += p;
    return n;
  }
};

struct Instance {
  BoxXYXY box;
  std::int32_t class_index = -1;  ///< contiguous class (categories sorted by id)
  float score = 1.0f;             ///< 1 for ground truth
  bool has_mask = false;          ///< false for box-only annotations
  MaskPatch mask;                 ///< in the same pixel grid as `box`
};

}  // namespace centermask
