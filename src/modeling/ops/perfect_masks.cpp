// Perfect local shapes and saliency; see perfect_masks.h.

#include "modeling/ops/perfect_masks.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

// The per-class union masks come from CenterMask's target encoder (CenterMask-FCOS shares it).
#include "centermask/modeling/methods/centermask/centermask_targets.h"

namespace centermask {

cv::Mat shape_from_mask(const MaskPatch& mask, const CellRegion& region, int mask_stride, int s) {
  const int left = region.x0 * mask_stride, top = region.y0 * mask_stride;
  const int width = region.width() * mask_stride, height = region.height() * mask_stride;
  cv::Mat pixels = cv::Mat::zeros(height, width, CV_32F);
  for (int y = 0; y < mask.height; ++y) {
    const int py = mask.top + y - top;
    if (py < 0 || py >= height) continue;
    for (int x = 0; x < mask.width; ++x) {
      const int px = mask.left + x - left;
      if (px < 0 || px >= width) continue;
      if (mask.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(mask.width) +
                      static_cast<std::size_t>(x)])
        pixels.at<float>(py, px) = 1.0f;
    }
  }
  cv::Mat shape;
  cv::resize(pixels, shape, cv::Size(s, s), 0, 0, cv::INTER_AREA);
  return shape;
}

std::vector<float> perfect_saliency(const std::vector<Instance>& instances, int input_height,
                                    int input_width, int mask_stride, int num_classes,
                                    bool class_specific, bool with_shape) {
  // The per-class union masks of the CenterMask encoder at the mask stride; class-agnostic
  // saliency is the union of every mask: encoded as one class.
  CenterMaskTargetOptions options;
  options.num_classes = class_specific ? num_classes : 1;
  options.stride = mask_stride;
  options.mask_stride = mask_stride;
  options.max_objects = std::max<int>(1, static_cast<int>(instances.size()));
  options.class_union_masks = true;
  std::vector<Instance> one_class;
  if (!class_specific) {
    one_class = instances;
    for (Instance& i : one_class) i.class_index = 0;
  }
  const CenterMaskTargets t = encode_centermask_targets(class_specific ? instances : one_class,
                                                        input_height, input_width, options);
  std::vector<float> saliency = t.class_masks;
  if (with_shape)
    for (float& v : saliency) v = v > 0 ? 1.0f : 0.0f;
  return saliency;
}

}  // namespace centermask
