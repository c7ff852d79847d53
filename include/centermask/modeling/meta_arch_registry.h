#pragma once
// The one place that maps model.meta_arch to a method. The engine builds models here and
// otherwise sees only MetaArchitectureImpl (meta_arch.h).
#include <memory>
#include <string>
#include <vector>

#include "centermask/modeling/centermask.h"
#include "centermask/modeling/centermask_fcos.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/polarmask.h"

namespace centermask {

/// The config's `model` section: the method (model.meta_arch) and its options. CenterMask's
/// options are the section's top-level keys (as before methods were pluggable, so earlier
/// configs and checkpoints load unchanged); num_classes, backbone (name and width) are every
/// method's; PolarMask's own are model.polarmask.*; CenterMask-FCOS shares CenterMask's mask
/// keys (shape_size, assembly, class_specific_saliency, saliency_stride,
/// saliency_upsample_channels) and has its FCOS keys under model.centermask_fcos.*.
struct ModelConfig : CenterMaskOptions {
  std::string meta_arch = "centermask";
  /// model.backbone_weights: a PyTorch state_dict file (torch.save) the backbone of a new run
  /// starts from (modeling/backbone_weights.h); empty = training from scratch (the paper's).
  std::string backbone_weights;
  /// model.polarmask.*; its num_classes and backbone come from the shared keys.
  PolarMaskOptions polarmask;
  /// model.centermask_fcos.*; the shared keys are filled in by centermask_fcos_options.
  CenterMaskFcosOptions centermask_fcos;
};

/// PolarMask's options with the shared keys filled in (not validated).
PolarMaskOptions polarmask_options(const ModelConfig& config);
/// CenterMask-FCOS's options with the shared keys filled in (not validated).
CenterMaskFcosOptions centermask_fcos_options(const ModelConfig& config);

/// A method's ablation variant for `centermask ablate`: a name, what it is, and the config
/// overrides that make it.
struct AblationVariant {
  std::string name;
  std::string description;
  std::vector<std::string> overrides;
};
/// The variants `centermask ablate` trains for a method (the paper's ablation tables).
std::vector<AblationVariant> ablation_variants(const std::string& meta_arch);

/// One line saying what a config's model is, for reports ("CenterMask (resnet18, S = 32, ...)").
std::string describe_model(const ModelConfig& config);

/// The values model.meta_arch accepts.
const std::vector<std::string>& known_meta_architectures();
/// "centermask" or "centermask, polarmask": for messages.
std::string describe_known_meta_architectures();

/// The method of `config`, initialised from torch's current seed. std::invalid_argument naming
/// model.meta_arch and the known methods for an unknown one, or the method's own option errors.
std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config);

}  // namespace centermask
