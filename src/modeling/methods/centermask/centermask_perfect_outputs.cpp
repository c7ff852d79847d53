// The outputs of a perfect CenterMask network for given ground truth: what the upper bound
// decodes through the real inference path to measure the representation's ceiling.

#include <algorithm>
#include <cmath>

#include "centermask/modeling/methods/centermask/centermask.h"
#include "modeling/ops/perfect_masks.h"

namespace centermask {

namespace {

// Logits of probabilities clamped to [1e-4, 1 − 1e-4]: sigmoid gives them back to 1e-4.
torch::Tensor clamped_logit(const torch::Tensor& probability) {
  return torch::logit(probability.clamp(1e-4, 1 - 1e-4));
}

}  // namespace

CenterMaskOutputs CenterMaskImpl::perfect_outputs(
    const std::vector<std::vector<Instance>>& instances, int input_height, int input_width) const {
  const int stride = feature_shape().stride_px;
  const std::int64_t n = static_cast<std::int64_t>(instances.size());
  const std::int64_t c = options_.num_classes;
  const std::int64_t h = input_height / stride, w = input_width / stride;
  CenterMaskTargetOptions target_options = this->target_options(/*max_objects=*/4096);
  target_options.dense_box = false;
  target_options.class_union_masks = false;
  const int s = options_.shape_size;

  std::vector<float> heat(static_cast<std::size_t>(n * c * h * w));
  std::vector<float> offset(static_cast<std::size_t>(n * 2 * h * w), 0.0f);
  std::vector<float> size(static_cast<std::size_t>(n * 2 * h * w), 0.0f);
  std::vector<float> saliency;
  std::int64_t saliency_channels = 0, mask_h = 0, mask_w = 0;
  auto given = std::make_shared<CenterMaskOutputs::GivenShapes>();
  std::vector<float> shapes;
  for (std::int64_t b = 0; b < n; ++b) {
    const std::vector<Instance>& image = instances[static_cast<std::size_t>(b)];
    const CenterMaskTargets t =
        encode_centermask_targets(image, input_height, input_width, target_options);
    const std::size_t cells = static_cast<std::size_t>(h * w);
    std::copy(t.heatmap.begin(), t.heatmap.end(),
              heat.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(b * c) * cells));
    for (int k = 0; k < t.num_objects; ++k) {
      const auto slot = static_cast<std::size_t>(k);
      const std::size_t cell = static_cast<std::size_t>(t.center_index[slot]);
      for (std::size_t axis = 0; axis < 2; ++axis) {
        const std::size_t at = (static_cast<std::size_t>(b) * 2 + axis) * cells + cell;
        offset[at] = t.offset[2 * slot + axis];
        size[at] = t.size[2 * slot + axis];
      }
      if (!options_.has_shape_head() || !t.has_mask[slot]) continue;
      const Instance& source = image[static_cast<std::size_t>(t.source_index[slot])];
      const cv::Mat shape = shape_from_mask(source.mask, t.mask_region[slot], t.mask_stride, s);
      given->image.push_back(b);
      given->cell.push_back(t.center_index[slot]);
      shapes.insert(shapes.end(), shape.begin<float>(), shape.end<float>());
    }
    if (options_.has_saliency_head()) {
      mask_h = t.mask_height, mask_w = t.mask_width;
      saliency_channels = options_.class_specific_saliency ? c : 1;
      const std::vector<float> map = perfect_saliency(
          image, input_height, input_width, options_.saliency_stride, static_cast<int>(c),
          options_.class_specific_saliency, options_.has_shape_head());
      saliency.insert(saliency.end(), map.begin(), map.end());
    }
  }

  const auto as_tensor = [](std::vector<float>& values, torch::IntArrayRef shape) {
    return torch::from_blob(values.data(), shape, torch::kFloat32).clone();
  };
  CenterMaskOutputs out;
  out.heatmap_logits = clamped_logit(as_tensor(heat, {n, c, h, w}));
  out.offset = as_tensor(offset, {n, 2, h, w});
  out.size = as_tensor(size, {n, 2, h, w});
  if (options_.has_saliency_head())
    out.saliency_logits =
        clamped_logit(as_tensor(saliency, {n, saliency_channels, mask_h, mask_w}));
  if (options_.has_shape_head()) {
    const auto m = static_cast<std::int64_t>(given->image.size());
    given->logits = m == 0 ? torch::zeros({0, s, s}) : clamped_logit(as_tensor(shapes, {m, s, s}));
    out.given_shapes = given;
  }
  return out;
}

}  // namespace centermask
