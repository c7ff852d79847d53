#include "support/model_fixtures.h"

#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace centermask::testing {

std::vector<Instance> synthetic_instances(const SyntheticImage& image) {
  std::vector<Instance> out;
  for (const SyntheticObject& object : image.objects) {
    const cv::Rect r = cv::boundingRect(object.visible_mask);
    if (r.area() == 0) continue;
    Instance instance;
    instance.class_index = object.class_index;
    instance.box = {static_cast<float>(r.x), static_cast<float>(r.y),
                    static_cast<float>(r.x + r.width), static_cast<float>(r.y + r.height)};
    instance.has_mask = true;
    instance.mask.left = r.x;
    instance.mask.top = r.y;
    instance.mask.width = r.width;
    instance.mask.height = r.height;
    for (int y = r.y; y < r.y + r.height; ++y)
      for (int x = r.x; x < r.x + r.width; ++x)
        instance.mask.pixels.push_back(object.visible_mask.at<std::uint8_t>(y, x) ? 1 : 0);
    out.push_back(std::move(instance));
  }
  return out;
}

Batch make_batch(const std::vector<cv::Mat>& images,
                 const std::vector<std::vector<Instance>>& instances, int num_classes,
                 bool class_union_masks) {
  if (images.empty() || images.size() != instances.size())
    throw std::invalid_argument("make_batch: one instance list per image, at least one image");
  Batch batch;
  batch.height = images.front().rows;
  batch.width = images.front().cols;
  const std::size_t plane = static_cast<std::size_t>(3 * batch.height * batch.width);
  batch.images.resize(images.size() * plane);
  TestTransformOptions test;
  test.input_height = batch.height;
  test.input_width = batch.width;
  CenterMaskTargetOptions target_options;
  target_options.num_classes = num_classes;
  target_options.class_union_masks = class_union_masks;
  std::vector<CenterMaskTargets> targets;
  for (std::size_t i = 0; i < images.size(); ++i) {
    TransformedSample sample = transform_for_test(images[i], test);
    write_network_input(sample, test.normalization, batch.images.data() + i * plane);
    sample.info.image_id = static_cast<std::int64_t>(i);
    batch.infos.push_back(sample.info);
    batch.instances.push_back(instances[i]);
    targets.push_back(
        encode_centermask_targets(instances[i], batch.height, batch.width, target_options));
  }
  collate_targets(targets, &batch);
  return batch;
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

}  // namespace centermask::testing
