// CenterMask's training losses (SPEC §1, paper Eq. 2–6).

#include <fmt/format.h>

#include <array>
#include <stdexcept>

#include "centermask/modeling/methods/centermask/centermask.h"
#include "centermask/modeling/precision.h"
#include "modeling/layers/losses.h"
#include "modeling/ops/host_tensors.h"
#include "modeling/ops/mask_assembly.h"

namespace centermask {

namespace F = torch::nn::functional;

namespace {

/// Every term of a loss, the optional ones included (undefined when off).
std::array<torch::Tensor*, 8> all_terms(CenterMaskLosses& l) {
  return {&l.total, &l.heatmap,  &l.offset,   &l.size,
          &l.mask,  &l.saliency, &l.box_giou, &l.mask_dice};
}

}  // namespace

CenterMaskLosses CenterMaskImpl::loss(const CenterMaskOutputs& outputs,
                                      const CenterMaskTrainingTargets& targets) const {
  CenterMaskLosses mean = stack_loss(outputs, targets);
  if (outputs.earlier_stacks.empty()) return mean;
  // Intermediate supervision: every term is the mean over the stacks (CenterNet divides each
  // stack's terms by the number of stacks), so the loss's scale does not grow with stacks.
  const auto terms = all_terms(mean);
  for (const CenterMaskOutputs& earlier : outputs.earlier_stacks) {
    CenterMaskLosses other = stack_loss(earlier, targets);
    const auto others = all_terms(other);
    for (std::size_t i = 0; i < terms.size(); ++i)
      if (terms[i]->defined()) *terms[i] = *terms[i] + *others[i];
  }
  const double stacks = static_cast<double>(outputs.earlier_stacks.size() + 1);
  for (torch::Tensor* term : terms)
    if (term->defined()) *term = *term / stacks;
  return mean;
}

CenterMaskLosses CenterMaskImpl::stack_loss(const CenterMaskOutputs& network_outputs,
                                            const CenterMaskTrainingTargets& targets) const {
  // Mixed-precision training hands the outputs in bf16/fp16: the losses work in float32.
  CenterMaskOutputs outputs = network_outputs;
  for (torch::Tensor* t : {&outputs.heatmap_logits, &outputs.offset, &outputs.size,
                           &outputs.shape_hidden, &outputs.saliency_logits})
    *t = widened_to_float32(*t);
  const torch::Tensor& heat = outputs.heatmap_logits;
  if (targets.heatmap.sizes() != heat.sizes())
    throw std::invalid_argument(fmt::format(
        "CenterMask loss: targets are (N, C, H, W) = {} but the heatmap output is {} (class "
        "count or input size differs between the data and the model)",
        c10::str(targets.heatmap.sizes()), c10::str(heat.sizes())));
  CenterMaskLosses losses;
  losses.heatmap = focal_heatmap_loss(heat, targets.heatmap);
  if (options_.dense_box_loss) {
    if (!targets.box_weight.defined())
      throw std::invalid_argument(
          "CenterMask loss: dense_box_loss is on but the batch has no dense box targets (set "
          "CenterMaskTargetOptions::dense_box)");
    using torch::indexing::Slice;
    const auto box = targets.box_target;
    losses.offset = dense_l1_loss(outputs.offset, box.index({Slice(), Slice(0, 2)}),
                                  targets.box_weight, targets.num_objects);
    losses.size = dense_l1_loss(outputs.size, box.index({Slice(), Slice(2, 4)}), targets.box_weight,
                                targets.num_objects);
    if (options_.loss_weights.box_giou > 0)
      losses.box_giou = dense_giou_loss(
          outputs.offset, outputs.size, box.index({Slice(), Slice(0, 2)}),
          box.index({Slice(), Slice(2, 4)}), targets.box_weight, targets.num_objects);
  } else {
    losses.offset = center_l1_loss(outputs.offset, targets.center_index, targets.offset,
                                   targets.valid, targets.num_objects);
    losses.size = center_l1_loss(outputs.size, targets.center_index, targets.size, targets.valid,
                                 targets.num_objects);
  }

  // Mask loss: mean over objects of the mean pixel-wise BCE between the assembled probability
  // and the ground-truth crop, both over the ground-truth box's cells at the ground-truth center.
  if (targets.num_masks() == 0) {
    losses.mask = heat.new_zeros({});
  } else {
    MaskAssemblyInput assembly;
    if (outputs.shape_hidden.defined() || outputs.given_shapes)
      assembly.shape_logits = local_shapes(outputs, targets.mask_image, targets.mask_cell);
    assembly.saliency_logits = outputs.saliency_logits;
    assembly.map_height = targets.mask_height;
    assembly.map_width = targets.mask_width;
    assembly.regions = targets.mask_region;
    assembly.image_index = targets.mask_image;
    assembly.saliency_class = targets.mask_class;
    const AssembledMasks masks = assemble_masks(assembly);
    torch::Tensor weight;
    if (!targets.mask_weight.empty())
      weight =
          torch::from_blob(const_cast<float*>(targets.mask_weight.data()),
                           {static_cast<std::int64_t>(targets.mask_weight.size())}, torch::kFloat32)
              .to(heat.device(), heat.scalar_type(), false, true);
    losses.mask = mean_object_bce(masks.probability, targets.mask_target, masks.inside, weight);
    if (options_.loss_weights.mask_dice > 0)
      losses.mask_dice =
          mean_object_dice(masks.probability, targets.mask_target, masks.inside, weight);
  }
  if (options_.loss_weights.mask_dice > 0 && !losses.mask_dice.defined())
    losses.mask_dice = heat.new_zeros({});

  const CenterMaskLossWeights& w = options_.loss_weights;
  losses.total = w.heatmap * losses.heatmap + w.offset * losses.offset + w.size * losses.size +
                 w.mask * losses.mask;
  if (losses.box_giou.defined()) losses.total = losses.total + w.box_giou * losses.box_giou;
  if (losses.mask_dice.defined()) losses.total = losses.total + w.mask_dice * losses.mask_dice;
  if (options_.direct_saliency_loss) {
    if (!targets.class_masks.defined())
      throw std::invalid_argument(
          "CenterMask loss: direct_saliency_loss is on but the batch has no per-class union "
          "masks (set CenterMaskTargetOptions::class_union_masks)");
    losses.saliency =
        F::binary_cross_entropy_with_logits(outputs.saliency_logits, targets.class_masks);
    losses.total = losses.total + w.saliency * losses.saliency;
  }
  return losses;
}

}  // namespace centermask
