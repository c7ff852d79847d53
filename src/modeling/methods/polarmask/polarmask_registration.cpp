// PolarMask's entry in the method registry: its config keys (model.polarmask.*), validation,
// network, ablation variants (the paper's Table 1a–1c) and description.

#include <fmt/format.h>

#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/polarmask/polarmask.h"

namespace centermask {

void declare_option_keys(OptionKeys& keys, PolarMaskOptions& p) {
  FcosKeyHelp help;
  help.towers = "conv + GN + ReLU units per head tower (3 towers)";
  help.sampling_center = "sampling center";
  help.box_loss = "-log IoU box loss weight";
  help.mask_loss = "polar IoU (ray) loss weight";
  keys.add_int("num_rays", "rays per polygon, dividing 360 (paper: 18, 24, 36, 72)", p.num_rays);
  declare_fcos_detector_keys(keys, p, help);
  keys.add_enum("sampling_center", "where positives are sampled around (Fig. 7)", p.sampling_center,
                {{"mass", PolarMaskSamplingCenter::kMassCenter},
                 {"box", PolarMaskSamplingCenter::kBoxCenter}});
  keys.add_enum("mask_loss", "loss on the rays (Table 1b)", p.mask_loss,
                {{"polar_iou", PolarMaskLoss::kPolarIou}, {"smooth_l1", PolarMaskLoss::kSmoothL1}});
  keys.add_enum(
      "centerness", "what the centerness branch learns (Table 1c)", p.centerness,
      {{"polar", PolarMaskCenterness::kPolar}, {"cartesian", PolarMaskCenterness::kCartesian}});
  declare_fcos_loss_weight_keys(keys, p.loss_weights, help);
}

PolarMaskOptions polarmask_options(const ModelConfig& config) {
  return fcos_method_options<PolarMaskOptions>(config, "polarmask");
}

MethodRegistration polarmask_registration() {
  MethodRegistration method;
  method.name = "polarmask";
  method.default_options = [] { return std::make_unique<MethodOptionsOf<PolarMaskOptions>>(); };
  method.validate = [](const ModelConfig& config) { polarmask_options(config).validate(); };
  method.build = [](const ModelConfig& config) -> std::shared_ptr<MetaArchitectureImpl> {
    return std::make_shared<PolarMaskImpl>(polarmask_options(config));
  };
  method.ablation_variants = [] {
    // The paper's Table 1a–1c; every variant names all three switches so that a config trained
    // with other values still ablates like for like.
    const auto variant = [](std::string name, std::string description, int rays, const char* loss,
                            const char* centerness) {
      return AblationVariant{std::move(name),
                             std::move(description),
                             {"model.polarmask.num_rays=" + std::to_string(rays),
                              std::string("model.polarmask.mask_loss=") + loss,
                              std::string("model.polarmask.centerness=") + centerness}};
    };
    return std::vector<AblationVariant>{
        variant("full", "36 rays, polar IoU loss, polar centerness (the method)", 36, "polar_iou",
                "polar"),
        variant("rays_18", "18 rays", 18, "polar_iou", "polar"),
        variant("rays_24", "24 rays", 24, "polar_iou", "polar"),
        variant("rays_72", "72 rays", 72, "polar_iou", "polar"),
        variant("smooth_l1", "smooth-L1 on the rays instead of the polar IoU loss", 36, "smooth_l1",
                "polar"),
        variant("cartesian_centerness", "FCOS's box centerness instead of the polar one", 36,
                "polar_iou", "cartesian")};
  };
  method.describe = [](const ModelConfig& config) {
    const PolarMaskOptions& p = config.method_options<PolarMaskOptions>("polarmask");
    return fmt::format(
        "PolarMask ({}-FPN width {}, {} channels, {} rays, {} loss, {} centerness, {} center)",
        config.backbone, config.backbone_width, p.fpn_channels, p.num_rays, to_string(p.mask_loss),
        to_string(p.centerness), to_string(p.sampling_center));
  };
  return method;
}

}  // namespace centermask
