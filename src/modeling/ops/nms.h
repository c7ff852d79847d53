#pragma once
// Greedy box non-maximum suppression (FCOS's and PolarMask's post-processing): highest score
// first, every later box whose IoU with a kept one exceeds the threshold is dropped. Boxes are
// (x0, y0, x1, y1) in continuous coordinates (area = width × height, no "+1" as in the
// legacy maskrcnn-benchmark kernels). Equal scores keep the lower index first.

#include <cstdint>
#include <vector>

#include "centermask/structures/instances.h"

namespace centermask {

/// Indices of the kept boxes, highest score first. `class_id` (optional, same length) makes
/// it class-wise: boxes of different classes never suppress each other.
std::vector<std::int64_t> box_nms(const std::vector<BoxXYXY>& boxes,
                                  const std::vector<float>& scores, double iou_threshold,
                                  const std::vector<std::int64_t>& class_id = {});

/// The definition, step by step: repeatedly take the highest-scoring remaining box and drop
/// the remaining boxes that overlap it too much; every IoU computed afresh. The reference
/// box_nms is tested against.
std::vector<std::int64_t> box_nms_reference(const std::vector<BoxXYXY>& boxes,
                                            const std::vector<float>& scores, double iou_threshold,
                                            const std::vector<std::int64_t>& class_id = {});

/// Intersection over union of two boxes; 0 when either is empty.
double box_iou(const BoxXYXY& a, const BoxXYXY& b);

}  // namespace centermask
