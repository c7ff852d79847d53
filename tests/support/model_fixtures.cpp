#include "support/model_fixtures.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

namespace centermask::testing {

Batch make_batch(const std::vector<cv::Mat>& images,
                 const std::vector<std::vector<Instance>>& instances, int num_classes,
                 bool class_union_masks) {
  CenterMaskTargetOptions options;
  options.num_classes = num_classes;
  options.class_union_masks = class_union_masks;
  return make_training_batch(images, instances, CenterMaskTargetEncoder(options));
}

Instance ellipse_instance(int class_index, cv::Rect box, int height, int width) {
  cv::Mat mask = cv::Mat::zeros(height, width, CV_8U);
  cv::ellipse(mask,
              cv::RotatedRect(cv::Point2f(box.x + box.width / 2.0f, box.y + box.height / 2.0f),
                              cv::Size2f(box.width, box.height), 0),
              cv::Scalar(1), cv::FILLED);
  SyntheticImage image;
  image.objects.push_back({class_index, mask, mask});
  Instance instance = synthetic_image_instances(image).front();
  return instance;
}

cv::Mat noise_image(int height, int width, int seed) {
  cv::Mat image(height, width, CV_8UC3);
  cv::theRNG().state = static_cast<std::uint64_t>(seed);
  cv::randu(image, 0, 255);
  return image;
}

double mask_iou(const MaskPatch& a, const MaskPatch& b) {
  const int x0 = std::min(a.left, b.left), y0 = std::min(a.top, b.top);
  const int x1 = std::max(a.left + a.width, b.left + b.width);
  const int y1 = std::max(a.top + a.height, b.top + b.height);
  std::int64_t inter = 0, uni = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const bool pa = a.at_image(x, y), pb = b.at_image(x, y);
      inter += pa && pb;
      uni += pa || pb;
    }
  return uni == 0 ? 0.0 : static_cast<double>(inter) / static_cast<double>(uni);
}

ImageInfo identity_info(int height, int width) {
  ImageInfo info;
  info.original_height = info.input_height = height;
  info.original_width = info.input_width = width;
  return info;
}

std::vector<double> best_mask_iou_per_object(const std::vector<Instance>& detected,
                                             const std::vector<Instance>& truth) {
  std::vector<double> best;
  for (const Instance& object : truth) {
    best.push_back(0);
    for (const Instance& d : detected)
      if (d.class_index == object.class_index)
        best.back() = std::max(best.back(), mask_iou(d.mask, object.mask));
  }
  return best;
}

}  // namespace centermask::testing
