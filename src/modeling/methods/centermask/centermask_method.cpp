// CenterMask behind the method interface (meta_arch.h): thin wrappers over its typed API, so
// that the engine's path and the typed path are the same computation.
#include <torch/torch.h>

#include "centermask/modeling/methods/centermask/centermask.h"

namespace centermask {

std::shared_ptr<const TargetEncoder> CenterMaskImpl::make_target_encoder(int max_objects) const {
  return std::make_shared<CenterMaskTargetEncoder>(target_options(max_objects));
}

std::shared_ptr<const MethodOutputs> CenterMaskImpl::run_network(const torch::Tensor& images,
                                                                 bool flip_test) {
  return std::make_shared<CenterMaskMethodOutputs>(flip_test ? forward_flip_averaged(images)
                                                             : forward(images));
}

MethodLosses CenterMaskImpl::compute_losses(const MethodOutputs& outputs,
                                            const BatchTargets& targets,
                                            const torch::Device& device) const {
  const CenterMaskTrainingTargets on_device =
      make_training_targets(method_cast<CenterMaskBatchTargets>(targets, "CenterMask"), device,
                            options_.mask_neighbourhood);
  const CenterMaskLosses losses =
      loss(method_cast<CenterMaskMethodOutputs>(outputs, "CenterMask").outputs, on_device);
  MethodLosses named;
  named.total = losses.total;
  named.terms = {{"heatmap", losses.heatmap},
                 {"offset", losses.offset},
                 {"size", losses.size},
                 {"mask", losses.mask}};
  if (losses.saliency.defined()) named.terms.emplace_back("saliency", losses.saliency);
  if (losses.box_giou.defined()) named.terms.emplace_back("box_giou", losses.box_giou);
  if (losses.mask_dice.defined()) named.terms.emplace_back("mask_dice", losses.mask_dice);
  return named;
}

std::vector<std::vector<Instance>> CenterMaskImpl::detect(const MethodOutputs& outputs,
                                                          const std::vector<ImageInfo>& infos,
                                                          const PredictOptions& options) const {
  CenterMaskInferenceOptions decode;
  decode.top_k = options.top_k;
  decode.mask_threshold = options.mask_threshold;
  decode.score_threshold = options.score_threshold;
  decode.mask_quality_scoring = options.mask_quality_scoring;
  return predict(method_cast<CenterMaskMethodOutputs>(outputs, "CenterMask").outputs, infos,
                 decode);
}

std::shared_ptr<const MethodOutputs> CenterMaskImpl::perfect_network_outputs(
    const std::vector<std::vector<Instance>>& instances, int input_height, int input_width) const {
  return std::make_shared<CenterMaskMethodOutputs>(
      perfect_outputs(instances, input_height, input_width));
}

std::string CenterMaskImpl::first_non_finite_output(const MethodOutputs& outputs) const {
  const CenterMaskOutputs& o = method_cast<CenterMaskMethodOutputs>(outputs, "CenterMask").outputs;
  const std::pair<const char*, const torch::Tensor*> heads[] = {{"heatmap", &o.heatmap_logits},
                                                                {"offset", &o.offset},
                                                                {"size", &o.size},
                                                                {"shape", &o.shape_hidden},
                                                                {"saliency", &o.saliency_logits}};
  for (const auto& [name, tensor] : heads)
    if (tensor->defined() && !torch::isfinite(*tensor).all().item<bool>()) return name;
  return "";
}

}  // namespace centermask
