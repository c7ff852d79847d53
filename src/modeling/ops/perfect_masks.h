#pragma once
// The mask factors a perfect network would predict for ground truth: what CenterMask's and
// CenterMask-FCOS's upper bounds decode through their real inference paths.

#include <opencv2/core.hpp>
#include <vector>

#include "centermask/data/mask_cells.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// The object's mask over the input pixels of a mask-cell region, area-resampled to S × S:
/// the local shape a perfect network would predict (what the bilinear resize back to the
/// region can at best reproduce). Pixels of the region outside the mask patch are 0. CV_32F.
cv::Mat shape_from_mask(const MaskPatch& mask, const CellRegion& region, int mask_stride, int s);

/// A perfect saliency map for one image of input_height × input_width at `mask_stride`
/// ((channels, input_height / mask_stride, input_width / mask_stride), row-major): one
/// channel per class (class_specific) or one for all. With a shape head (with_shape) it only
/// has to keep the shape inside the masks' support (the shape carries the edge): 1 there,
/// 0 elsewhere; alone it is the masks' coverage of each cell.
std::vector<float> perfect_saliency(const std::vector<Instance>& instances, int input_height,
                                    int input_width, int mask_stride, int num_classes,
                                    bool class_specific, bool with_shape);

}  // namespace centermask
