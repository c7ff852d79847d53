// CenterMask-FCOS's options, network and loss; see centermask_fcos.h.

#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "centermask/common/stage_timer.h"
#include "centermask/modeling/precision.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/layers/group_norm.h"
#include "modeling/layers/guided_upsampling.h"
#include "modeling/layers/losses.h"
#include "modeling/ops/host_tensors.h"
#include "modeling/ops/mask_assembly.h"

namespace centermask {

namespace nn = torch::nn;

void CenterMaskFcosOptions::validate() const {
  validate_detector("CenterMask-FCOS", "model.centermask_fcos.");
  const auto fail = [](const std::string& message) { throw std::invalid_argument(message); };
  if (shape_size < 2 || shape_size > 256)
    fail(fmt::format("model.centermask_fcos.shape_size: S must be 2 to 256, got {}", shape_size));
  if (saliency_stride != 8 && saliency_stride != 4 && saliency_stride != 2 && saliency_stride != 1)
    fail(
        fmt::format("model.centermask_fcos.saliency_stride: the saliency head sits on P3 (stride "
                    "8) and upsamples by 2: "
                    "expected 8, 4, 2 or 1, got {}",
                    saliency_stride));
  if (saliency_upsample_channels < 1)
    fail(fmt::format("model.centermask_fcos.saliency_upsample_channels: must be ≥ 1, got {}",
                     saliency_upsample_channels));
  if (saliency_convs < 0)
    fail(fmt::format("model.centermask_fcos.saliency_convs: must be ≥ 0, got {}", saliency_convs));
  if (saliency_channels < 1 || (saliency_convs > 0 && saliency_channels % head_norm_groups != 0))
    fail(
        fmt::format("model.centermask_fcos.saliency_channels: must be ≥ 1 and divisible by "
                    "model.centermask_fcos.head_norm_groups ({}), got {}",
                    head_norm_groups, saliency_channels));
  if (mask_samples_per_image < 0)
    fail(fmt::format("model.centermask_fcos.mask_samples_per_image: must be ≥ 0 (0 = all), got {}",
                     mask_samples_per_image));
}

namespace {
// Checked before anything is built (the base class builds the pyramid and head first).
const CenterMaskFcosOptions& validated(const CenterMaskFcosOptions& options) {
  options.validate();
  return options;
}
}  // namespace

CenterMaskFcosImpl::CenterMaskFcosImpl(CenterMaskFcosOptions options)
    : FcosDetectorImpl(validated(options)), options_(std::move(options)) {
  const int c = options_.fpn_channels;
  if (options_.has_shape_head())
    shape_output_ = register_module(
        "shape_output", fcos_head_conv(c, options_.shape_size * options_.shape_size, 1));
  if (options_.has_saliency_head()) {
    nn::Sequential tower;
    int channels = c;
    for (int i = 0; i < options_.saliency_convs; ++i) {
      tower->push_back(fcos_head_conv(channels, options_.saliency_channels, 3));
      tower->push_back(layers::WideningGroupNorm(
          nn::GroupNormOptions(options_.head_norm_groups, options_.saliency_channels)));
      tower->push_back(nn::ReLU(nn::ReLUOptions(true)));
      channels = options_.saliency_channels;
    }
    saliency_tower_ = register_module("saliency_tower", tower);
    for (int stride = 4; stride >= options_.saliency_stride; stride /= 2) {
      // The stage that reaches CenterMask's stride 4 keeps the head's width; finer ones are
      // CenterMask's light upsampling stages.
      const int out =
          stride == 4 ? options_.saliency_channels : options_.saliency_upsample_channels;
      saliency_up_.push_back(register_module(fmt::format("saliency_up{}", stride),
                                             guided_upsampling_stage(channels, out)));
      channels = out;
    }
    const int classes = options_.class_specific_saliency ? options_.num_classes : 1;
    saliency_output_ = register_module("saliency_output", fcos_head_conv(channels, classes, 1));
  }
}

CenterMaskFcosTargetOptions CenterMaskFcosImpl::target_options(int max_objects) const {
  CenterMaskFcosTargetOptions t;
  t.num_classes = options_.num_classes;
  t.center_sampling_radius = options_.center_sampling_radius;
  t.mask_stride = options_.saliency_stride;
  t.max_objects = max_objects;
  return t;
}

std::shared_ptr<const TargetEncoder> CenterMaskFcosImpl::make_target_encoder(
    int max_objects) const {
  return std::make_shared<CenterMaskFcosTargetEncoder>(target_options(max_objects));
}

CenterMaskFcosOutputs CenterMaskFcosImpl::forward(const torch::Tensor& images) {
  const PyramidFeatures features = pyramid_->forward(images);
  const ScopedStage stage("heads");
  CenterMaskFcosOutputs out;
  out.fcos = fcos_head_->forward(features.maps);
  for (const ShapeSpec& shape : features.shapes) out.strides.push_back(shape.stride_px);
  out.mask_height = static_cast<int>(images.size(2)) / options_.saliency_stride;
  out.mask_width = static_cast<int>(images.size(3)) / options_.saliency_stride;
  if (saliency_output_) {
    const torch::Tensor p3 = saliency_tower_->forward(features.maps[0]);
    out.saliency_logits = saliency_output_->forward(
        run_guided_upsampling(p3, saliency_up_, images, features.shapes[0].stride_px));
  }
  return out;
}

std::shared_ptr<const MethodOutputs> CenterMaskFcosImpl::run_network(const torch::Tensor& images,
                                                                     bool /*flip_test*/) {
  return std::make_shared<CenterMaskFcosMethodOutputs>(forward(images));
}

torch::Tensor CenterMaskFcosImpl::local_shapes(const CenterMaskFcosOutputs& outputs,
                                               const std::vector<std::int64_t>& image,
                                               const std::vector<std::int64_t>& location) const {
  const int s = options_.shape_size;
  std::int64_t locations = 0;
  for (const torch::Tensor& level : outputs.fcos.class_logits)
    locations += level.size(2) * level.size(3);
  if (outputs.given_shapes) {
    const auto& given = *outputs.given_shapes;
    std::unordered_map<std::int64_t, std::int64_t> row_of;
    for (std::size_t i = 0; i < given.key.size(); ++i)
      row_of.emplace(given.key[i], static_cast<std::int64_t>(i));
    torch::Tensor out =
        torch::zeros({static_cast<std::int64_t>(image.size()), s, s}, given.logits.options());
    for (std::size_t j = 0; j < image.size(); ++j) {
      const auto found = row_of.find(image[j] * locations + location[j]);
      if (found != row_of.end()) out[static_cast<std::int64_t>(j)] = given.logits[found->second];
    }
    return out;
  }
  if (!shape_output_) throw std::logic_error("local_shapes: this model has no shape head");
  // Every level's tower features as rows (N · L, C); the chosen rows through the 1×1 layer.
  const torch::Tensor features = flatten_levels(outputs.fcos.regression_features);
  const std::int64_t channels = features.size(2);
  const torch::Device device = features.device();
  std::vector<std::int64_t> rows(image.size());
  for (std::size_t j = 0; j < image.size(); ++j) rows[j] = image[j] * locations + location[j];
  const torch::Tensor chosen =
      features.reshape({-1, channels}).index_select(0, int64_tensor(rows, device));
  const torch::Tensor weight = shape_output_->weight.view({s * s, channels});
  return torch::addmm(shape_output_->bias, chosen, weight.t()).view({-1, s, s});
}

torch::Tensor CenterMaskFcosImpl::dense_shape_logits(
    const torch::Tensor& regression_features) const {
  if (!shape_output_) throw std::logic_error("dense_shape_logits: this model has no shape head");
  return torch::conv2d(regression_features, shape_output_->weight, shape_output_->bias);
}

AssembledMasks CenterMaskFcosImpl::assemble(const CenterMaskFcosOutputs& outputs,
                                            const FcosMaskSamples& samples, int clip_margin) const {
  MaskAssemblyInput input;
  if (options_.has_shape_head())
    input.shape_logits = local_shapes(outputs, samples.image, samples.location);
  input.saliency_logits = outputs.saliency_logits;
  input.map_height = outputs.mask_height;
  input.map_width = outputs.mask_width;
  input.regions = samples.region;
  input.image_index = samples.image;
  input.saliency_class = samples.saliency_class;
  input.clip_margin = clip_margin;
  return assemble_masks(input);
}

namespace {

// The mask loss's samples over a batch: positives whose object has a mask, at most `cap` per
// image (highest centerness target first; 0 = all), and each sample's ground-truth crop
// placed in its region, (M, Hm, Wm), zero in padding and off the map.
struct MaskLossSamples {
  FcosMaskSamples samples;
  std::vector<float> target;
  int max_h = 0, max_w = 0;
};

MaskLossSamples mask_loss_samples(const std::vector<CenterMaskFcosTargets>& targets, int cap) {
  MaskLossSamples out;
  std::vector<std::pair<std::size_t, std::int64_t>> chosen;  // (image, object) per sample
  for (std::size_t b = 0; b < targets.size(); ++b) {
    const CenterMaskFcosTargets& t = targets[b];
    std::vector<std::int64_t> positives;
    for (std::int64_t i = 0; i < t.fcos.num_locations(); ++i) {
      const std::int64_t object = t.fcos.object[static_cast<std::size_t>(i)];
      if (object >= 0 && t.object_has_mask[static_cast<std::size_t>(object)])
        positives.push_back(i);
    }
    if (cap > 0 && static_cast<int>(positives.size()) > cap) {
      std::stable_sort(positives.begin(), positives.end(), [&](std::int64_t a, std::int64_t c) {
        return t.fcos.centerness[static_cast<std::size_t>(a)] >
               t.fcos.centerness[static_cast<std::size_t>(c)];
      });
      positives.resize(static_cast<std::size_t>(cap));
    }
    for (std::int64_t i : positives) {
      const std::int64_t object = t.fcos.object[static_cast<std::size_t>(i)];
      const CellRegion& region = t.object_region[static_cast<std::size_t>(object)];
      out.samples.image.push_back(static_cast<std::int64_t>(b));
      out.samples.location.push_back(i);
      out.samples.region.push_back(region);
      out.samples.saliency_class.push_back(t.object_class[static_cast<std::size_t>(object)]);
      out.max_h = std::max(out.max_h, region.height());
      out.max_w = std::max(out.max_w, region.width());
      chosen.emplace_back(b, object);
    }
  }
  const auto plane = static_cast<std::size_t>(out.max_h) * static_cast<std::size_t>(out.max_w);
  out.target.assign(chosen.size() * plane, 0.0f);
  for (std::size_t m = 0; m < chosen.size(); ++m) {
    const CenterMaskFcosTargets& t = targets[chosen[m].first];
    const std::int64_t object = chosen[m].second;
    const CellRegion& r = t.object_region[static_cast<std::size_t>(object)];
    const CellRegion clipped = t.clipped_region(object);
    const float* crop = t.crop_pixels.data() + t.crop_start[static_cast<std::size_t>(object)];
    float* dst = out.target.data() + m * plane;
    for (int y = clipped.y0; y < clipped.y1; ++y)
      for (int x = clipped.x0; x < clipped.x1; ++x)
        dst[(y - r.y0) * out.max_w + (x - r.x0)] =
            crop[(y - clipped.y0) * clipped.width() + (x - clipped.x0)];
  }
  return out;
}

}  // namespace

CenterMaskFcosLosses CenterMaskFcosImpl::loss(
    const CenterMaskFcosOutputs& outputs, const std::vector<CenterMaskFcosTargets>& targets) const {
  std::vector<FcosTargets> assignments;
  for (const CenterMaskFcosTargets& t : targets) {
    if (t.mask_stride != options_.saliency_stride)
      throw std::invalid_argument(
          fmt::format("CenterMask-FCOS loss: targets at mask stride {}, the model's saliency "
                      "stride is {}",
                      t.mask_stride, options_.saliency_stride));
    assignments.push_back(t.fcos);
  }
  const FcosBoxLosses boxes = fcos_box_losses(outputs.fcos, assignments, outputs.strides);
  CenterMaskFcosLosses losses;
  losses.classification = boxes.classification;
  losses.box = boxes.box;
  losses.centerness = boxes.centerness;

  const MaskLossSamples samples = mask_loss_samples(targets, options_.mask_samples_per_image);
  const auto m = static_cast<std::int64_t>(samples.samples.image.size());
  if (m == 0) {
    // A zero that is part of the graph (the trainer back-propagates every term).
    torch::Tensor zero = outputs.fcos.regression[0].sum() * 0;
    if (outputs.saliency_logits.defined()) zero = zero + outputs.saliency_logits.sum() * 0;
    losses.mask = zero;
  } else {
    const AssembledMasks masks = assemble(outputs, samples.samples);
    const torch::Tensor target =
        torch::from_blob(const_cast<float*>(samples.target.data()),
                         {m, samples.max_h, samples.max_w}, torch::kFloat32)
            .to(masks.probability.device(), masks.probability.scalar_type(),
                /*non_blocking=*/false, /*copy=*/true);
    losses.mask = mean_object_bce(masks.probability, target, masks.inside);
  }
  losses.total = weighted_total(losses);
  return losses;
}

MethodLosses CenterMaskFcosImpl::compute_losses(
    const MethodOutputs& outputs, const BatchTargets& targets,
    const torch::Device& /*device: the outputs'*/) const {
  // Mixed-precision training hands the outputs in bf16/fp16: the losses work in float32.
  CenterMaskFcosOutputs widened =
      method_cast<CenterMaskFcosMethodOutputs>(outputs, "CenterMask-FCOS").outputs;
  widen_to_float32(widened.fcos);
  widened.saliency_logits = widened_to_float32(widened.saliency_logits);
  return named(
      loss(widened, method_cast<CenterMaskFcosBatchTargets>(targets, "CenterMask-FCOS").images));
}

std::string CenterMaskFcosImpl::first_non_finite_output(const MethodOutputs& outputs) const {
  const CenterMaskFcosOutputs& o =
      method_cast<CenterMaskFcosMethodOutputs>(outputs, "CenterMask-FCOS").outputs;
  const std::string head =
      first_non_finite(o.fcos, {{"shape features", &o.fcos.regression_features}});
  if (!head.empty()) return head;
  if (o.saliency_logits.defined() && !torch::isfinite(o.saliency_logits).all().item<bool>())
    return "saliency";
  return "";
}

std::vector<std::pair<std::string, torch::Tensor>> CenterMaskFcosImpl::raw_maps(
    const MethodOutputs& outputs) const {
  const CenterMaskFcosOutputs& o =
      method_cast<CenterMaskFcosMethodOutputs>(outputs, "CenterMask-FCOS").outputs;
  std::vector<std::pair<std::string, torch::Tensor>> maps = fcos_raw_maps(o.fcos);
  if (shape_output_)
    for (std::size_t level = 0; level < o.fcos.regression_features.size(); ++level)
      maps.emplace_back(fmt::format("shape_logits_p{}", level + 3),
                        dense_shape_logits(o.fcos.regression_features[level]));
  if (o.saliency_logits.defined()) maps.emplace_back("saliency_logits", o.saliency_logits);
  return maps;
}

}  // namespace centermask
