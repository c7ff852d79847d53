#pragma once
// Naive reference operations on plain bitmaps, to test the RLE code against (ncnn style:
// a simple implementation beside the optimised one, compared on odd shapes).

#include <cstdint>
#include <random>
#include <vector>

#include "centermask/structures/box.h"

namespace centermask::testing {

struct Bitmap {
  int height = 0;
  int width = 0;
  std::vector<std::uint8_t> pixels;  // row-major, 0/1

  std::uint8_t at(int y, int x) const { return pixels[static_cast<std::size_t>(y) * width + x]; }
  std::uint8_t& at(int y, int x) { return pixels[static_cast<std::size_t>(y) * width + x]; }
};

/// Random blobs: `fill` is the foreground probability, `runs` makes pixels copy their
/// neighbour above with that probability (longer runs, like real masks).
inline Bitmap random_bitmap(int height, int width, std::mt19937& rng, double fill = 0.3,
                            double runs = 0.8) {
  Bitmap b{height, width, std::vector<std::uint8_t>(static_cast<std::size_t>(height) * width)};
  std::bernoulli_distribution on(fill), keep(runs);
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < height; ++y) {
      b.at(y, x) = (y > 0 && keep(rng)) ? b.at(y - 1, x) : static_cast<std::uint8_t>(on(rng));
    }
  }
  return b;
}

inline std::uint64_t naive_area(const Bitmap& b) {
  std::uint64_t n = 0;
  for (std::uint8_t p : b.pixels) n += p;
  return n;
}

inline BoxXYWH naive_bbox(const Bitmap& b) {
  int x0 = b.width, y0 = b.height, x1 = -1, y1 = -1;
  for (int y = 0; y < b.height; ++y) {
    for (int x = 0; x < b.width; ++x) {
      if (!b.at(y, x)) continue;
      x0 = std::min(x0, x);
      y0 = std::min(y0, y);
      x1 = std::max(x1, x);
      y1 = std::max(y1, y);
    }
  }
  if (x1 < 0) return {};
  return {static_cast<double>(x0), static_cast<double>(y0), static_cast<double>(x1 - x0 + 1),
          static_cast<double>(y1 - y0 + 1)};
}

}  // namespace centermask::testing
