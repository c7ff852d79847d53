// CenterMask's network: backbone, the five heads, and the shape head's sparse last layer.

#include "centermask/modeling/methods/centermask/centermask.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>
#include <unordered_map>

#include "centermask/common/stage_timer.h"
#include "modeling/backbone/layers.h"
#include "modeling/layers/group_norm.h"
#include "modeling/layers/guided_upsampling.h"
#include "modeling/ops/host_tensors.h"

namespace centermask {

namespace nn = torch::nn;

std::string to_string(MaskAssembly assembly) {
  switch (assembly) {
    case MaskAssembly::kShapeTimesSaliency:
      return "shape_times_saliency";
    case MaskAssembly::kShapeOnly:
      return "shape_only";
    case MaskAssembly::kSaliencyOnly:
      return "saliency_only";
  }
  return "?";
}

MaskAssembly parse_mask_assembly(const std::string& name) {
  for (MaskAssembly a :
       {MaskAssembly::kShapeTimesSaliency, MaskAssembly::kShapeOnly, MaskAssembly::kSaliencyOnly})
    if (to_string(a) == name) return a;
  throw std::invalid_argument(fmt::format(
      "mask assembly \"{}\" is not one of shape_times_saliency, shape_only, saliency_only", name));
}

void CenterMaskOptions::validate() const {
  // Messages name the config keys (model.centermask.* and the shared model.* ones).
  const auto fail = [](const std::string& key, const std::string& what) {
    throw std::invalid_argument(key + ": " + what);
  };
  const std::string k = "model.centermask.";
  if (num_classes < 1)
    fail("model.num_classes", fmt::format("must be at least 1, got {}", num_classes));
  if (shape_size < 2 || shape_size > 256)
    fail(k + "shape_size", fmt::format("S must be 2 to 256, got {}", shape_size));
  if (head_channels < 0)
    fail(k + "head_channels", fmt::format("must be ≥ 0 (0 = default), got {}", head_channels));
  if (head_norm_groups < 0 ||
      (head_norm_groups > 0 && resolved_head_channels() % head_norm_groups != 0))
    fail(k + "head_norm_groups",
         fmt::format("must be 0 (no normalisation) or divide the heads' {} hidden channels, got {}",
                     resolved_head_channels(), head_norm_groups));
  if (backbone.width < 8 || backbone.width % 8 != 0)
    fail("model.backbone_width",
         fmt::format("must be a positive multiple of 8, got {}", backbone.width));
  const bool fixed_widths = has_fixed_widths(backbone.name);
  if (fixed_widths && backbone.width != 64)
    fail(
        "model.backbone_width",
        fmt::format("applies to ResNets; {} keeps its own widths (leave it at 64)", backbone.name));
  if (fixed_widths && backbone.skip_connections)
    fail(k + "backbone_skips",
         fmt::format("applies to ResNets (allowed with resnet18/34/50/101); {} aggregates its "
                     "stages itself (leave it false)",
                     backbone.name));
  if (backbone.output_channels < 0)
    fail(k + "backbone_output_channels",
         fmt::format("must be ≥ 0 (0 = the backbone width), got {}", backbone.output_channels));
  if (fixed_widths && backbone.output_channels != 0)
    fail(k + "backbone_output_channels",
         fmt::format("applies to ResNets (allowed with resnet18/34/50/101); {} keeps its own "
                     "(leave it 0)",
                     backbone.name));
  if (direct_saliency_loss && !class_specific_saliency)
    fail(k + "direct_saliency_loss",
         "needs class_specific_saliency (it supervises each class's channel)");
  if (direct_saliency_loss && !has_saliency_head())
    fail(k + "direct_saliency_loss", "needs a saliency head (assembly is shape_only)");
  if (saliency_stride != 4 && saliency_stride != 2 && saliency_stride != 1)
    fail(
        k + "saliency_stride",
        fmt::format("must be 4, 2 or 1 (input pixels per saliency cell), got {}", saliency_stride));
  if (saliency_upsample_channels < 1)
    fail(k + "saliency_upsample_channels",
         fmt::format("must be at least 1, got {}", saliency_upsample_channels));
  if (saliency_stride != 4 && !has_saliency_head())
    fail(k + "saliency_stride", "below 4 needs a saliency head (assembly is shape_only)");
  if (mask_neighbourhood < 0 || mask_neighbourhood > 3)
    fail(k + "mask_neighbourhood", fmt::format("must be 0 to 3 cells, got {}", mask_neighbourhood));
  const CenterMaskLossWeights& w = loss_weights;
  for (const auto& [name, v] : {std::pair<const char*, double>{"heatmap", w.heatmap},
                                {"offset", w.offset},
                                {"size", w.size},
                                {"mask", w.mask},
                                {"saliency", w.saliency},
                                {"box_giou", w.box_giou},
                                {"mask_dice", w.mask_dice}})
    if (!(v >= 0) || !std::isfinite(v))
      fail(k + "loss_weights." + name, fmt::format("must be finite and ≥ 0, got {}", v));
  if (w.box_giou > 0 && !dense_box_loss)
    fail(k + "loss_weights.box_giou",
         "needs dense_box_loss: true (the GIoU is taken at the dense box cells)");
}

int CenterMaskOptions::resolved_head_channels() const {
  if (head_channels > 0) return head_channels;
  // CenterNet's head_conv: 256 for DLA-34 and Hourglass-104, 64 for ResNets.
  return has_fixed_widths(backbone.name) ? 256 : 64;
}

namespace {

/// CenterNet's initialisation of a head convolution: weights N(0, std) for ResNet (std > 0),
/// PyTorch's default for DLA (std = 0); the bias `bias`.
void init_head_conv(nn::Conv2d& conv, double bias, double weight_std) {
  torch::NoGradGuard no_grad;
  if (weight_std > 0) nn::init::normal_(conv->weight, 0.0, weight_std);
  if (conv->bias.defined()) nn::init::constant_(conv->bias, bias);
}

/// The first half of CenterNet's head: conv 3×3 (→ hidden) + ReLU; with norm_groups > 0,
/// FCOS's conv 3×3 (no bias: the norm's shift replaces it) + GroupNorm + ReLU.
nn::Sequential head_hidden(int in_channels, int hidden, double weight_std, int norm_groups) {
  nn::Conv2d conv(nn::Conv2dOptions(in_channels, hidden, 3).padding(1).bias(norm_groups == 0));
  init_head_conv(conv, 0.0, weight_std);
  if (norm_groups == 0) return nn::Sequential(conv, nn::ReLU(nn::ReLUOptions(true)));
  return nn::Sequential(conv, layers::WideningGroupNorm(nn::GroupNormOptions(norm_groups, hidden)),
                        nn::ReLU(nn::ReLUOptions(true)));
}

/// The second half: conv 1×1 (→ outputs), its bias at `final_bias`.
nn::Conv2d head_output(int hidden, int outputs, double final_bias, double weight_std) {
  nn::Conv2d conv(nn::Conv2dOptions(hidden, outputs, 1));
  init_head_conv(conv, final_bias, weight_std);
  return conv;
}

/// CenterNet's head: conv 3×3 + ReLU + conv 1×1.
nn::Sequential make_head(int in_channels, int hidden, int outputs, double final_bias,
                         double weight_std, int norm_groups) {
  nn::Sequential head = head_hidden(in_channels, hidden, weight_std, norm_groups);
  head->push_back(head_output(hidden, outputs, final_bias, weight_std));
  return head;
}

}  // namespace

CenterMaskImpl::CenterMaskImpl(CenterMaskOptions options) : options_(std::move(options)) {
  options_.validate();
  backbone_ = register_module("backbone", build_backbone(options_.backbone));
  const int in = backbone_->output_shape().channels;
  const int hidden = options_.resolved_head_channels();
  // 0 = PyTorch's default initialisation (see small_normal_head_init).
  const double std = options_.small_normal_head_init ? 0.001 : 0.0;
  const int groups = options_.head_norm_groups;
  // -2.19 = logit of 0.1: CenterNet's prior so the focal loss does not start on a flood of
  // confident negatives.
  heatmap_head_ =
      register_module("heatmap", make_head(in, hidden, options_.num_classes, -2.19, std, groups));
  offset_head_ = register_module("offset", make_head(in, hidden, 2, 0.0, std, groups));
  size_head_ = register_module("size", make_head(in, hidden, 2, 0.0, std, groups));
  if (options_.has_saliency_head()) {
    const int channels = options_.class_specific_saliency ? options_.num_classes : 1;
    if (options_.saliency_stride == 4) {
      saliency_head_ =
          register_module("saliency", make_head(in, hidden, channels, 0.0, std, groups));
    } else {
      saliency_hidden_ = register_module("saliency_hidden", head_hidden(in, hidden, std, groups));
      const int up = options_.saliency_upsample_channels;
      int previous = hidden;
      for (int stride = 2; stride >= options_.saliency_stride; stride /= 2) {
        saliency_up_.push_back(register_module(fmt::format("saliency_up{}", stride),
                                               guided_upsampling_stage(previous, up)));
        previous = up;
      }
      saliency_output_ =
          register_module("saliency_output", head_output(previous, channels, 0.0, std));
    }
  }
  if (options_.has_shape_head()) {
    const int s2 = options_.shape_size * options_.shape_size;
    shape_hidden_ = register_module("shape_hidden", head_hidden(in, hidden, std, groups));
    shape_output_ = register_module("shape_output", head_output(hidden, s2, 0.0, std));
  }
}

CenterMaskOutputs CenterMaskImpl::forward(const torch::Tensor& images) {
  if (!is_training() || backbone_->num_stacks() == 1) return heads(features(images), images);
  // Intermediate supervision: the heads on every stack's features; inference reads the last.
  check_images(images);
  std::vector<torch::Tensor> stacks;
  {
    const ScopedStage stage("backbone");
    stacks = backbone_->forward_stacks(images);
  }
  CenterMaskOutputs out = heads(stacks.back(), images);
  for (std::size_t i = 0; i + 1 < stacks.size(); ++i)
    out.earlier_stacks.push_back(heads(stacks[i], images));
  return out;
}

CenterMaskOutputs CenterMaskImpl::forward_flip_averaged(const torch::Tensor& images) {
  // One batch of 2N: the network's work doubles but runs as one call.
  const std::int64_t n = images.size(0);
  const CenterMaskOutputs both = forward(torch::cat({images, images.flip({3})}, 0));
  const auto half = [n](const torch::Tensor& t, bool mirrored) {
    return t.defined() ? t.narrow(0, mirrored ? n : 0, n) : t;
  };
  CenterMaskOutputs original, mirrored;
  for (const bool second : {false, true}) {
    CenterMaskOutputs& out = second ? mirrored : original;
    out.heatmap_logits = half(both.heatmap_logits, second);
    out.offset = half(both.offset, second);
    out.size = half(both.size, second);
    out.shape_hidden = half(both.shape_hidden, second);
    out.saliency_logits = half(both.saliency_logits, second);
  }
  return average_with_mirrored(original, mirrored);
}

namespace {

// The logit of the mean of two logits' probabilities, clamped so that sigmoid gives it back.
torch::Tensor mean_probability_logit(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor p = 0.5 * (torch::sigmoid(a) + torch::sigmoid(b));
  return torch::logit(p.clamp(1e-6, 1 - 1e-6));
}

}  // namespace

CenterMaskOutputs average_with_mirrored(const CenterMaskOutputs& outputs,
                                        const CenterMaskOutputs& mirrored) {
  if (outputs.given_shapes || mirrored.given_shapes)
    throw std::invalid_argument(
        "flip test: outputs with given shapes (perfect outputs) cannot be "
        "averaged with their mirror");
  const auto check = [](const torch::Tensor& a, const torch::Tensor& b, const char* name) {
    if (a.defined() != b.defined() || (a.defined() && a.sizes() != b.sizes()))
      throw std::invalid_argument(fmt::format(
          "flip test: the {} of the image ({}) and of its mirror ({}) differ", name,
          a.defined() ? c10::str(a.sizes()) : "none", b.defined() ? c10::str(b.sizes()) : "none"));
  };
  check(outputs.heatmap_logits, mirrored.heatmap_logits, "heatmap");
  check(outputs.offset, mirrored.offset, "offset map");
  check(outputs.size, mirrored.size, "size map");
  check(outputs.shape_hidden, mirrored.shape_hidden, "shape features");
  check(outputs.saliency_logits, mirrored.saliency_logits, "saliency");
  const auto back = [](const torch::Tensor& t) { return t.flip({3}); };  // along W
  using torch::indexing::Slice;
  CenterMaskOutputs merged;
  merged.heatmap_logits =
      mean_probability_logit(outputs.heatmap_logits, back(mirrored.heatmap_logits));
  merged.size = 0.5 * (outputs.size + back(mirrored.size));
  const torch::Tensor offset_back = back(mirrored.offset);
  merged.offset = 0.5 * torch::cat({outputs.offset.index({Slice(), Slice(0, 1)}) + 1 -
                                        offset_back.index({Slice(), Slice(0, 1)}),
                                    outputs.offset.index({Slice(), Slice(1, 2)}) +
                                        offset_back.index({Slice(), Slice(1, 2)})},
                                   1);
  if (outputs.saliency_logits.defined())
    merged.saliency_logits =
        mean_probability_logit(outputs.saliency_logits, back(mirrored.saliency_logits));
  if (outputs.shape_hidden.defined()) {
    merged.shape_hidden = outputs.shape_hidden;
    merged.shape_hidden_mirrored = back(mirrored.shape_hidden);
  }
  return merged;
}

CenterMaskTargetOptions CenterMaskImpl::target_options(int max_objects) const {
  CenterMaskTargetOptions t;
  t.num_classes = options_.num_classes;
  t.stride = feature_shape().stride_px;
  t.mask_stride = options_.saliency_stride;
  t.max_objects = max_objects;
  t.class_union_masks = options_.direct_saliency_loss;
  t.dense_box = options_.dense_box_loss;
  return t;
}

void CenterMaskImpl::check_images(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3)
    throw std::invalid_argument("CenterMask expects images of shape (N, 3, H, W), got " +
                                c10::str(images.sizes()));
  check_input_size(static_cast<int>(images.size(2)), static_cast<int>(images.size(3)),
                   backbone_->size_divisor());
}

torch::Tensor CenterMaskImpl::features(const torch::Tensor& images) {
  check_images(images);
  const ScopedStage stage("backbone");
  return backbone_->forward(images);
}

CenterMaskOutputs CenterMaskImpl::heads(const torch::Tensor& features,
                                        const torch::Tensor& images) {
  const ScopedStage stage("heads");
  if (saliency_hidden_ && !images.defined())
    throw std::invalid_argument("CenterMask heads: saliency_stride < 4 needs the input images");
  CenterMaskOutputs out;
  torch::Tensor saliency_hidden;
  // Every head starts with conv 3×3 + ReLU on the same features: at inference those run as
  // one convolution (the same outputs up to rounding), then each head's 1×1 on its share.
  // Measured at 512² on 2 cores (README, speed): with ResNet-18's 64 channels per head the
  // heads took 52 → 40 ms; with DLA-34's 256 the one 1280-channel output cost more than it
  // saved (166 → 200+ ms, +190 MiB), so wide heads run apart.
  constexpr std::int64_t kMaxFusedChannels = 512;
  const std::int64_t fused_channels =
      static_cast<std::int64_t>(options_.resolved_head_channels()) *
      (3 + (saliency_head_ ? 1 : 0) + (saliency_hidden_ ? 1 : 0) + (shape_hidden_ ? 1 : 0));
  if (layers::runs_folded(*this) && options_.head_norm_groups == 0 &&
      fused_channels <= kMaxFusedChannels) {
    std::vector<torch::nn::Conv2dImpl*> first_convs;
    for (torch::nn::Sequential head :
         {heatmap_head_, offset_head_, size_head_, saliency_head_, saliency_hidden_, shape_hidden_})
      if (head) first_convs.push_back(head[0]->as<nn::Conv2d>());
    if (!fused_head_convs_) fused_head_convs_ = std::make_shared<layers::FusedSiblingConvs>();
    const std::vector<torch::Tensor> hidden =
        fused_head_convs_->forward(first_convs, features, /*relu=*/true);
    std::size_t next = 0;
    const auto output_of = [&](torch::nn::Sequential& head) {
      return head[2]->as<nn::Conv2d>()->forward(hidden[next++]);  // conv, ReLU, 1×1
    };
    out.heatmap_logits = output_of(heatmap_head_);
    out.offset = output_of(offset_head_);
    out.size = output_of(size_head_);
    if (saliency_head_) out.saliency_logits = output_of(saliency_head_);
    if (saliency_hidden_) saliency_hidden = hidden[next++];
    if (shape_hidden_) out.shape_hidden = hidden[next++];
  } else {
    out.heatmap_logits = heatmap_head_->forward(features);
    out.offset = offset_head_->forward(features);
    out.size = size_head_->forward(features);
    if (saliency_head_) out.saliency_logits = saliency_head_->forward(features);
    if (saliency_hidden_) saliency_hidden = saliency_hidden_->forward(features);
    if (shape_hidden_) out.shape_hidden = shape_hidden_->forward(features);
  }
  if (saliency_hidden_)
    out.saliency_logits = saliency_output_->forward(
        run_guided_upsampling(saliency_hidden, saliency_up_, images, /*from_stride=*/4));
  return out;
}

torch::Tensor CenterMaskImpl::shape_logits_at(const torch::Tensor& shape_hidden,
                                              const torch::Tensor& image_index,
                                              const torch::Tensor& cell) const {
  if (!shape_output_) throw std::logic_error("shape_logits_at: this model has no shape head");
  const std::int64_t channels = shape_hidden.size(1);
  const std::int64_t cells = shape_hidden.size(2) * shape_hidden.size(3);
  const int s = options_.shape_size;
  // Gather the chosen cells' hidden vectors straight from (N, hidden, H·W) — element
  // (b, c, cell) — without transposing the whole map, then apply the 1×1 conv as a matrix.
  const torch::Tensor channel = torch::arange(channels, cell.options()).view({1, channels});
  const torch::Tensor index =
      ((image_index * channels).view({-1, 1}) + channel) * cells + cell.view({-1, 1});
  const torch::Tensor rows =
      shape_hidden.reshape({-1}).index_select(0, index.reshape({-1})).view({-1, channels});
  const torch::Tensor weight = shape_output_->weight.view({s * s, channels});
  return torch::addmm(shape_output_->bias, rows, weight.t()).view({-1, s, s});
}

torch::Tensor CenterMaskImpl::local_shapes(const CenterMaskOutputs& outputs,
                                           const std::vector<std::int64_t>& image_index,
                                           const std::vector<std::int64_t>& cell) const {
  if (!outputs.given_shapes) {
    const torch::Device device = outputs.shape_hidden.device();
    const torch::Tensor images = int64_tensor(image_index, device);
    const torch::Tensor cells = int64_tensor(cell, device);
    const torch::Tensor logits = shape_logits_at(outputs.shape_hidden, images, cells);
    if (!outputs.shape_hidden_mirrored.defined()) return logits;
    // Flip test: the mirrored image's shape at the same cell, its columns reversed back.
    return mean_probability_logit(
        logits, shape_logits_at(outputs.shape_hidden_mirrored, images, cells).flip({2}));
  }
  // Given shapes: look each (image, cell) up; unknown cells get zero logits.
  const CenterMaskOutputs::GivenShapes& given = *outputs.given_shapes;
  const std::int64_t cells = outputs.heatmap_logits.size(2) * outputs.heatmap_logits.size(3);
  std::unordered_map<std::int64_t, std::int64_t> row_of;
  for (std::size_t i = 0; i < given.image.size(); ++i)
    row_of.emplace(given.image[i] * cells + given.cell[i], static_cast<std::int64_t>(i));
  const int s = options_.shape_size;
  torch::Tensor out =
      torch::zeros({static_cast<std::int64_t>(cell.size()), s, s}, given.logits.options());
  for (std::size_t j = 0; j < cell.size(); ++j) {
    const auto found = row_of.find(image_index[j] * cells + cell[j]);
    if (found != row_of.end()) out[static_cast<std::int64_t>(j)] = given.logits[found->second];
  }
  return out;
}

torch::Tensor CenterMaskImpl::dense_shape_logits(const torch::Tensor& shape_hidden) const {
  if (!shape_output_) throw std::logic_error("dense_shape_logits: this model has no shape head");
  return torch::conv2d(shape_hidden, shape_output_->weight, shape_output_->bias);
}

std::vector<std::pair<std::string, torch::Tensor>> CenterMaskImpl::raw_maps(
    const MethodOutputs& outputs) const {
  const CenterMaskOutputs& o = method_cast<CenterMaskMethodOutputs>(outputs, "CenterMask").outputs;
  std::vector<std::pair<std::string, torch::Tensor>> maps = {
      {"heatmap_logits", o.heatmap_logits}, {"offset", o.offset}, {"size", o.size}};
  if (shape_output_) maps.emplace_back("shape_logits", dense_shape_logits(o.shape_hidden));
  if (o.saliency_logits.defined()) maps.emplace_back("saliency_logits", o.saliency_logits);
  return maps;
}

}  // namespace centermask
