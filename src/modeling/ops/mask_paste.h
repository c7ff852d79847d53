#pragma once
// From an object's mask probability over mask-map cells (what assemble_masks gives) to its
// binary mask in original-image pixels: the last step of CenterMask's and CenterMask-FCOS's
// inference, shared so that both paste masks the same way.

#include <cstdint>
#include <opencv2/core.hpp>

#include "centermask/data/mask_cells.h"
#include "centermask/data/transforms.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// A rectangle given in map cells of `stride` input pixels, mapped through the input to the
/// original image and clipped to it: the bounding box of its four mapped corners. With
/// stride 1 it maps a box in input pixels.
BoxXYXY cells_to_original(double x0, double y0, double x1, double y1, int stride,
                          const ImageInfo& info);

/// Resamples an object's probability over its region's cells (region.height() ×
/// region.width(), CV_32F) onto original-image pixels and thresholds it (> threshold). Pixel
/// (x, y) of the patch has its center at (left + x + 0.5, top + y + 0.5) in the original; its
/// input position divided by the stride is the region's cell coordinate, where cell index j
/// has its center at j + 0.5. One bilinear resampling does what "resize to input resolution,
/// then map back" does in two.
MaskPatch mask_in_original(const cv::Mat& probability, const CellRegion& region, int stride,
                           const ImageInfo& info, float threshold);

/// Bilinear resampling with edges replicated, for a map without rotation or shear: output
/// pixel (x, y) samples `source` (CV_32F) at (x·scale_x + offset_x, y·scale_y + offset_y),
/// source pixel (i, j) sitting at integer coordinates, and is written as 1 where the value
/// is above `threshold`, else 0 (row-major, width × height). What cv::warpAffine with
/// WARP_INVERSE_MAP and BORDER_REPLICATE computes, in floating point instead of its 1/32-pixel
/// fixed point, and separably: each source row is resampled along x once, each output row is
/// a blend of two of those — the cost of pasting 100 large masks fell from most of
/// CenterMask's end-to-end time (see the README's speed section).
void resample_threshold_axis_aligned(const cv::Mat& source, double scale_x, double offset_x,
                                     double scale_y, double offset_y, int width, int height,
                                     float threshold, std::uint8_t* out);

/// The mean probability over the cells above the threshold (SOLOv2's "maskness"): near 1 for
/// a confident mask, near the threshold for a hesitant one, 0 when no cell passes.
float mask_quality(const cv::Mat& probability, float threshold);

}  // namespace centermask
