#include "centermask/modeling/methods/centermask/centermask_training_targets.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "centermask/modeling/meta_arch.h"

namespace centermask {

namespace {

torch::Tensor to_tensor(const std::vector<float>& values, torch::IntArrayRef shape,
                        const torch::Device& device) {
  return torch::from_blob(const_cast<float*>(values.data()), shape, torch::kFloat32)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

torch::Tensor to_tensor(const std::vector<std::int64_t>& values, torch::IntArrayRef shape,
                        const torch::Device& device) {
  return torch::from_blob(const_cast<std::int64_t*>(values.data()), shape, torch::kInt64)
      .to(device, /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

Batch make_training_batch(const std::vector<cv::Mat>& images,
                          const std::vector<std::vector<Instance>>& instances,
                          const CenterMaskTargetOptions& options) {
  return make_training_batch(images, instances, CenterMaskTargetEncoder(options));
}

const CenterMaskBatchTargets& centermask_batch_targets(const Batch& batch) {
  if (!batch.targets)
    throw std::invalid_argument(
        "the batch has no training targets (was it loaded with LoaderOptions::training = "
        "false?)");
  return method_cast<CenterMaskBatchTargets>(*batch.targets, "CenterMask");
}

CenterMaskTrainingTargets make_training_targets(const Batch& loaded, const torch::Device& device,
                                                int mask_neighbourhood) {
  return make_training_targets(centermask_batch_targets(loaded), device, mask_neighbourhood);
}

CenterMaskTrainingTargets make_training_targets(const CenterMaskBatchTargets& batch,
                                                const torch::Device& device,
                                                int mask_neighbourhood) {
  const std::int64_t n = batch.size, c = batch.num_classes, h = batch.output_height,
                     w = batch.output_width, k = batch.max_objects;
  if (batch.heatmap.size() != static_cast<std::size_t>(n * c * h * w))
    throw std::invalid_argument(
        "make_training_targets: the batch has no training targets "
        "(was it loaded with LoaderOptions::training = false?)");
  CenterMaskTrainingTargets t;
  t.num_classes = static_cast<int>(c);
  t.height = static_cast<int>(h);
  t.width = static_cast<int>(w);
  t.mask_height = batch.mask_height;
  t.mask_width = batch.mask_width;
  t.heatmap = to_tensor(batch.heatmap, {n, c, h, w}, device);
  t.center_index = to_tensor(batch.center_index, {n, k}, device);
  t.offset = to_tensor(batch.offset, {n, k, 2}, device);
  t.size = to_tensor(batch.size_cells, {n, k, 2}, device);
  std::vector<float> valid(batch.valid.begin(), batch.valid.end());
  t.valid = to_tensor(valid, {n, k}, device);
  for (std::uint8_t v : batch.valid) t.num_objects += v;
  if (!batch.class_masks.empty())
    t.class_masks =
        to_tensor(batch.class_masks, {n, c, batch.mask_height, batch.mask_width}, device);
  if (!batch.box_weight.empty()) {
    t.box_target = to_tensor(batch.box_target, {n, 4, h, w}, device);
    t.box_weight = to_tensor(batch.box_weight, {n, h, w}, device);
  }

  int max_h = 0, max_w = 0;
  std::vector<std::size_t> entry_slot;  // the object slot of each mask entry
  for (std::int64_t slot = 0; slot < n * k; ++slot) {
    const auto s = static_cast<std::size_t>(slot);
    if (!batch.valid[s] || !batch.has_mask[s]) continue;
    const std::int64_t center = batch.center_index[s];
    const int cx = static_cast<int>(center % w), cy = static_cast<int>(center / w);
    // CenterNet's Gaussian of this object: σ = (2r + 1) / 6.
    const double sigma = (2.0 * batch.radius[s] + 1.0) / 6.0;
    for (int dy = -mask_neighbourhood; dy <= mask_neighbourhood; ++dy)
      for (int dx = -mask_neighbourhood; dx <= mask_neighbourhood; ++dx) {
        const int x = cx + dx, y = cy + dy;
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        const double g = std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma));
        if (g < 0.1) continue;
        t.mask_image.push_back(slot / k);
        t.mask_cell.push_back(static_cast<std::int64_t>(y) * w + x);
        t.mask_class.push_back(batch.class_id[s]);
        t.mask_region.push_back(batch.mask_region[s]);
        t.mask_weight.push_back(static_cast<float>(g));
        entry_slot.push_back(s);
      }
    max_h = std::max(max_h, batch.mask_region[s].height());
    max_w = std::max(max_w, batch.mask_region[s].width());
  }
  // The crops in the batch cover each region clipped to the mask map; place them in the region.
  const std::int64_t m = t.num_masks();
  const int map_h = batch.mask_height, map_w = batch.mask_width;
  std::vector<float> padded(static_cast<std::size_t>(m * max_h * max_w), 0.0f);
  for (std::size_t entry = 0; entry < entry_slot.size(); ++entry) {
    const std::size_t s = entry_slot[entry];
    const CellRegion& r = batch.mask_region[s];
    const CellRegion clipped{std::max(r.x0, 0), std::max(r.y0, 0), std::min(r.x1, map_w),
                             std::min(r.y1, map_h)};
    const float* crop = batch.mask_pixels.data() + batch.mask_start[s];
    float* out = padded.data() + entry * static_cast<std::size_t>(max_h * max_w);
    for (int y = clipped.y0; y < clipped.y1; ++y)
      for (int x = clipped.x0; x < clipped.x1; ++x)
        out[(y - r.y0) * max_w + (x - r.x0)] =
            crop[(y - clipped.y0) * clipped.width() + (x - clipped.x0)];
  }
  t.mask_target = to_tensor(padded, {m, max_h, max_w}, device);
  return t;
}

}  // namespace centermask
