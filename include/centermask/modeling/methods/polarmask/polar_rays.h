#pragma once
// PolarMask's representation of a mask (Xie et al., CVPR 2020; SPEC §4, SPEC-FACTS §5): from a
// point, n rays at equal angles to the object's contour; the mask is the polygon of their
// ends. These are the pure geometric pieces its target encoder, its decoder and the polar
// upper bound share. Angles follow the reference code: θ = atan2(dx, dy) in degrees, so 0°
// points along +y (down the image) and 90° along +x; ray k is at k · 360 / n degrees.
#include <opencv2/core.hpp>
#include <vector>

#include "centermask/structures/instances.h"

namespace centermask {

/// The mask's largest contour by area (OpenCV's findContours, every boundary point kept), in
/// image pixels; empty for an empty mask.
std::vector<cv::Point> largest_contour(const MaskPatch& mask);

/// PolarMask's "mass centre" of a contour: the shoelace centroid of the polygon, truncated to
/// whole pixels as the reference does; the mean of the points when the polygon has no area.
cv::Point contour_mass_center(const std::vector<cv::Point>& contour);

/// The n ray lengths from (x, y) to the contour. Each contour point has an integer angle
/// (θ truncated); ray k's length is the largest distance among the points at exactly its
/// angle, else at angle +1, −1, +2, −2, +3, −3 (in that order, no wrap at 0°), else 1e-6.
/// num_rays must divide 360 (std::invalid_argument otherwise).
std::vector<float> polar_ray_lengths(const std::vector<cv::Point>& contour, float x, float y,
                                     int num_rays);

/// The polar centerness of a set of rays: sqrt(min / max) (1 for a point equidistant from
/// the whole contour, towards 0 near the boundary); 0 for no rays or max 0.
float polar_centerness(const std::vector<float>& rays);

/// The polygon the rays describe: vertex k = (x + d_k sin θ_k, y + d_k cos θ_k).
std::vector<cv::Point2f> polygon_from_rays(float x, float y, const std::vector<float>& rays);

/// A polygon filled into a mask patch of an image_height × image_width image (the patch
/// covers the polygon's bounding box clipped to the image); vertices truncated to whole
/// pixels and drawn with OpenCV's fillPoly, as the reference rasterises its 36-gons.
MaskPatch fill_polygon(const std::vector<cv::Point2f>& polygon, int image_height, int image_width);

}  // namespace centermask
