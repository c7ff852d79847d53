// PolarMask's options, network and loss; see polarmask.h.

#include "centermask/modeling/methods/polarmask/polarmask.h"

#include <fmt/format.h>

#include <stdexcept>

#include "centermask/common/stage_timer.h"
#include "centermask/modeling/precision.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/layers/losses.h"

namespace centermask {

namespace nn = torch::nn;

std::string to_string(PolarMaskLoss loss) {
  return loss == PolarMaskLoss::kPolarIou ? "polar_iou" : "smooth_l1";
}
std::string to_string(PolarMaskCenterness centerness) {
  return centerness == PolarMaskCenterness::kPolar ? "polar" : "cartesian";
}
std::string to_string(PolarMaskSamplingCenter center) {
  return center == PolarMaskSamplingCenter::kMassCenter ? "mass" : "box";
}

void PolarMaskOptions::validate() const {
  validate_detector("PolarMask", "model.polarmask.");
  if (num_rays < 4 || 360 % num_rays != 0)
    throw std::invalid_argument(fmt::format(
        "model.polarmask.num_rays: must divide 360 and be ≥ 4 (the paper: 18, 24, 36, 72), got {}",
        num_rays));
}

namespace {
// Checked before anything is built (the base class builds the pyramid and head first).
const PolarMaskOptions& validated(const PolarMaskOptions& options) {
  options.validate();
  return options;
}
}  // namespace

PolarMaskImpl::PolarMaskImpl(PolarMaskOptions options)
    : FcosDetectorImpl(validated(options)), options_(std::move(options)) {
  mask_tower_ = register_module(
      "mask_tower",
      fcos_tower(options_.fpn_channels, options_.head_tower_convs, options_.head_norm_groups));
  rays_ = register_module("rays", fcos_head_conv(options_.fpn_channels, options_.num_rays, 3));
  ray_scales_ = register_parameter("ray_scales", torch::ones({options_.head_options().num_levels}));
}

PolarMaskTargetOptions PolarMaskImpl::target_options(int max_objects) const {
  PolarMaskTargetOptions t;
  t.num_classes = options_.num_classes;
  t.num_rays = options_.num_rays;
  t.center_sampling_radius = options_.center_sampling_radius;
  t.sampling_center = options_.sampling_center;
  t.centerness = options_.centerness;
  t.max_objects = max_objects;
  return t;
}

std::shared_ptr<const TargetEncoder> PolarMaskImpl::make_target_encoder(int max_objects) const {
  return std::make_shared<PolarMaskTargetEncoder>(target_options(max_objects));
}

PolarMaskOutputs PolarMaskImpl::forward(const torch::Tensor& images) {
  const PyramidFeatures features = pyramid_->forward(images);
  const ScopedStage stage("heads");
  PolarMaskOutputs out;
  out.fcos = fcos_head_->forward(features.maps);
  for (std::size_t level = 0; level < features.maps.size(); ++level) {
    out.rays.push_back(torch::exp(ray_scales_[static_cast<std::int64_t>(level)] *
                                  rays_->forward(mask_tower_->forward(features.maps[level]))));
    out.strides.push_back(features.shapes[level].stride_px);
  }
  return out;
}

std::shared_ptr<const MethodOutputs> PolarMaskImpl::run_network(const torch::Tensor& images,
                                                                bool /*flip_test*/) {
  return std::make_shared<PolarMaskMethodOutputs>(forward(images));
}

namespace {

// A batch's targets as tensors over (N · locations): regressions divided by their level's
// stride, as the head predicts them.
struct FlatTargets {
  torch::Tensor label;       // (M) int64, −1 background
  torch::Tensor ltrb;        // (M, 4)
  torch::Tensor rays;        // (M, n)
  torch::Tensor centerness;  // (M)
};

FlatTargets flatten_targets(const std::vector<PolarMaskTargets>& targets, std::int64_t locations,
                            int num_rays, const torch::Device& device) {
  std::vector<std::int64_t> label;
  std::vector<float> ltrb, rays, centerness;
  for (const PolarMaskTargets& t : targets) {
    if (t.num_locations() != locations || t.num_rays != num_rays)
      throw std::invalid_argument(
          fmt::format("PolarMask loss: targets over {} locations with {} rays, outputs over {} "
                      "with {}",
                      t.num_locations(), t.num_rays, locations, num_rays));
    label.insert(label.end(), t.label.begin(), t.label.end());
    centerness.insert(centerness.end(), t.centerness.begin(), t.centerness.end());
    for (std::size_t level = 0; level + 1 < t.level_begin.size(); ++level) {
      const float stride = static_cast<float>(t.strides[level]);
      for (auto i = static_cast<std::size_t>(t.level_begin[level]);
           i < static_cast<std::size_t>(t.level_begin[level + 1]); ++i) {
        for (std::size_t k = 0; k < 4; ++k) ltrb.push_back(t.ltrb[4 * i + k] / stride);
        for (std::size_t k = 0; k < static_cast<std::size_t>(num_rays); ++k)
          rays.push_back(t.rays[static_cast<std::size_t>(num_rays) * i + k] / stride);
      }
    }
  }
  const auto m = static_cast<std::int64_t>(label.size());
  // copy: on the CPU a plain .to(device) would return a view of these vectors, freed on return.
  const auto host = [&](std::vector<float>& v, std::vector<std::int64_t> shape) {
    return torch::from_blob(v.data(), shape, torch::kFloat32)
        .to(device, /*non_blocking=*/false, /*copy=*/true);
  };
  return {torch::tensor(label, torch::kInt64).to(device), host(ltrb, {m, 4}),
          host(rays, {m, num_rays}), host(centerness, {m})};
}

}  // namespace

PolarMaskLosses PolarMaskImpl::loss(const PolarMaskOutputs& outputs,
                                    const std::vector<PolarMaskTargets>& targets) const {
  const torch::Tensor logits = flatten_levels(outputs.fcos.class_logits);  // (N, L, C)
  const std::int64_t n = logits.size(0), locations = logits.size(1);
  if (static_cast<std::int64_t>(targets.size()) != n)
    throw std::invalid_argument(
        fmt::format("PolarMask loss: {} images' targets for a batch of {}", targets.size(), n));
  const FlatTargets t = flatten_targets(targets, locations, options_.num_rays, logits.device());
  const torch::Tensor boxes = flatten_levels(outputs.fcos.regression).reshape({n * locations, 4});
  const torch::Tensor centerness =
      flatten_levels(outputs.fcos.centerness_logits).reshape({n * locations});
  const torch::Tensor rays = flatten_levels(outputs.rays).reshape({n * locations, -1});

  PolarMaskLosses losses;
  const torch::Tensor positive = t.label.ge(0).nonzero().squeeze(1);
  // The reference's avg_factor: positives + images, so an image without objects still counts.
  const double normaliser = static_cast<double>(positive.numel() + n);
  losses.classification =
      sigmoid_focal_loss(logits.reshape({n * locations, -1}), t.label) / normaliser;
  if (positive.numel() == 0) {
    losses.box = boxes.sum() * 0;
    losses.centerness = centerness.sum() * 0;
    losses.mask = rays.sum() * 0;
  } else {
    const torch::Tensor weight = t.centerness.index_select(0, positive);
    losses.box = ltrb_iou_loss(boxes.index_select(0, positive), t.ltrb.index_select(0, positive),
                               weight, IouLossKind::kLogIou);
    losses.centerness =
        torch::binary_cross_entropy_with_logits(centerness.index_select(0, positive), weight);
    const torch::Tensor predicted_rays = rays.index_select(0, positive);
    const torch::Tensor target_rays = t.rays.index_select(0, positive);
    if (options_.mask_loss == PolarMaskLoss::kPolarIou) {
      losses.mask = polar_iou_loss(predicted_rays, target_rays, weight);
    } else {
      const torch::Tensor per_location =
          torch::smooth_l1_loss(predicted_rays, target_rays, torch::Reduction::None).mean(1);
      const torch::Tensor total_weight = weight.sum();
      losses.mask = (per_location * weight).sum() /
                    torch::where(total_weight > 0, total_weight, torch::ones_like(total_weight));
    }
  }
  losses.total = weighted_total(losses);
  return losses;
}

MethodLosses PolarMaskImpl::compute_losses(const MethodOutputs& outputs,
                                           const BatchTargets& targets,
                                           const torch::Device& /*device: the outputs'*/) const {
  // Mixed-precision training hands the outputs in bf16/fp16: the losses work in float32.
  PolarMaskOutputs widened = method_cast<PolarMaskMethodOutputs>(outputs, "PolarMask").outputs;
  widen_to_float32(widened.fcos);
  widen_to_float32(widened.rays);
  return named(loss(widened, method_cast<PolarMaskBatchTargets>(targets, "PolarMask").images));
}

std::string PolarMaskImpl::first_non_finite_output(const MethodOutputs& outputs) const {
  const PolarMaskOutputs& o = method_cast<PolarMaskMethodOutputs>(outputs, "PolarMask").outputs;
  return first_non_finite(o.fcos, {{"rays", &o.rays}});
}

std::vector<std::pair<std::string, torch::Tensor>> PolarMaskImpl::raw_maps(
    const MethodOutputs& outputs) const {
  const PolarMaskOutputs& o = method_cast<PolarMaskMethodOutputs>(outputs, "PolarMask").outputs;
  std::vector<std::pair<std::string, torch::Tensor>> maps = fcos_raw_maps(o.fcos);
  for (std::size_t level = 0; level < o.rays.size(); ++level)
    maps.emplace_back(fmt::format("rays_p{}", level + 3), o.rays[level]);
  return maps;
}

}  // namespace centermask
