#pragma once
// A 2-D affine map x' = a·x + b·y + c, y' = d·x + e·y + f. Transforms record the one that
// maps network-input pixels back to the original image, so predictions can be returned in
// the user's coordinates.

#include <array>

namespace centermask {

struct Point2 {
  double x = 0;
  double y = 0;
};

struct Affine2D {
  double a = 1, b = 0, c = 0;
  double d = 0, e = 1, f = 0;

  static Affine2D identity() { return {}; }
  static Affine2D scale_translate(double sx, double sy, double tx, double ty) {
    return {sx, 0, tx, 0, sy, ty};
  }

  Point2 apply(Point2 p) const { return {a * p.x + b * p.y + c, d * p.x + e * p.y + f}; }
  /// The map that applies `first`, then this one.
  Affine2D after(const Affine2D& first) const {
    return {a * first.a + b * first.d, a * first.b + b * first.e, a * first.c + b * first.f + c,
            d * first.a + e * first.d, d * first.b + e * first.e, d * first.c + e * first.f + f};
  }
  /// The inverse map; the matrix must be invertible (every transform here scales by > 0).
  Affine2D inverse() const {
    const double det = a * e - b * d;
    const double ia = e / det, ib = -b / det, id = -d / det, ie = a / det;
    return {ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)};
  }
  /// Row-major 2×3 coefficients, as cv::warpAffine takes them.
  std::array<double, 6> coefficients() const { return {a, b, c, d, e, f}; }
};

}  // namespace centermask
