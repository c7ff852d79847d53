#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "centermask/modeling/meta_arch_registry.h"

namespace centermask {

const std::vector<std::string>& known_meta_architectures() {
  static const std::vector<std::string> known = {"centermask", "polarmask", "centermask_fcos"};
  return known;
}

std::string describe_known_meta_architectures() {
  std::string out;
  for (const std::string& name : known_meta_architectures())
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

PolarMaskOptions polarmask_options(const ModelConfig& config) {
  PolarMaskOptions options = config.polarmask;
  options.num_classes = config.num_classes;
  options.backbone = config.backbone.name;
  options.backbone_width = config.backbone.width;
  return options;
}

CenterMaskFcosOptions centermask_fcos_options(const ModelConfig& config) {
  CenterMaskFcosOptions options = config.centermask_fcos;
  options.num_classes = config.num_classes;
  options.backbone = config.backbone.name;
  options.backbone_width = config.backbone.width;
  options.shape_size = config.shape_size;
  options.assembly = config.assembly;
  options.class_specific_saliency = config.class_specific_saliency;
  options.saliency_stride = config.saliency_stride;
  options.saliency_upsample_channels = config.saliency_upsample_channels;
  return options;
}

std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config) {
  if (config.meta_arch == "centermask")
    return std::make_shared<CenterMaskImpl>(static_cast<const CenterMaskOptions&>(config));
  if (config.meta_arch == "polarmask")
    return std::make_shared<PolarMaskImpl>(polarmask_options(config));
  if (config.meta_arch == "centermask_fcos")
    return std::make_shared<CenterMaskFcosImpl>(centermask_fcos_options(config));
  throw std::invalid_argument(fmt::format("model.meta_arch: unknown method '{}' (known: {})",
                                          config.meta_arch, describe_known_meta_architectures()));
}

std::vector<AblationVariant> ablation_variants(const std::string& meta_arch) {
  if (meta_arch == "polarmask") {
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
    return {variant("full", "36 rays, polar IoU loss, polar centerness (the method)", 36,
                    "polar_iou", "polar"),
            variant("rays_18", "18 rays", 18, "polar_iou", "polar"),
            variant("rays_24", "24 rays", 24, "polar_iou", "polar"),
            variant("rays_72", "72 rays", 72, "polar_iou", "polar"),
            variant("smooth_l1", "smooth-L1 on the rays instead of the polar IoU loss", 36,
                    "smooth_l1", "polar"),
            variant("cartesian_centerness", "FCOS's box centerness instead of the polar one", 36,
                    "polar_iou", "cartesian")};
  }
  if (meta_arch == "centermask" || meta_arch == "centermask_fcos") {
    // The paper's Table 1c–1e (CenterMask-FCOS shares the switches). Every variant names its
    // saliency stride: the paper's 4 unless the variant is about it, so a config that trains at
    // another stride still ablates like for like.
    return {{"full",
             "shape x saliency, class-specific saliency (the method)",
             {"model.assembly=shape_times_saliency", "model.class_specific_saliency=true",
              "model.saliency_stride=4"}},
            {"class_agnostic",
             "shape x saliency, one class-agnostic saliency map",
             {"model.assembly=shape_times_saliency", "model.class_specific_saliency=false",
              "model.saliency_stride=4"}},
            {"shape_only",
             "local shape alone (no saliency head)",
             {"model.assembly=shape_only", "model.class_specific_saliency=true",
              "model.saliency_stride=4"}},
            {"saliency_only",
             "class-specific saliency alone (no shape head)",
             {"model.assembly=saliency_only", "model.class_specific_saliency=true",
              "model.saliency_stride=4"}},
            {"saliency_stride_2",
             "shape x saliency, class-specific saliency at stride 2 (finer masks, beyond the "
             "paper)",
             {"model.assembly=shape_times_saliency", "model.class_specific_saliency=true",
              "model.saliency_stride=2"}}};
  }
  throw std::invalid_argument(fmt::format("model.meta_arch: unknown method '{}' (known: {})",
                                          meta_arch, describe_known_meta_architectures()));
}

std::string describe_model(const ModelConfig& config) {
  if (config.meta_arch == "polarmask") {
    const PolarMaskOptions& p = config.polarmask;
    return fmt::format(
        "PolarMask ({}-FPN width {}, {} channels, {} rays, {} loss, {} centerness, {} center)",
        config.backbone.name, config.backbone.width, p.fpn_channels, p.num_rays,
        to_string(p.mask_loss), to_string(p.centerness), to_string(p.sampling_center));
  }
  if (config.meta_arch == "centermask_fcos") {
    const CenterMaskFcosOptions& f = config.centermask_fcos;
    return fmt::format(
        "CenterMask-FCOS ({}-FPN width {}, {} channels, S = {}, saliency stride {}, {}, {} "
        "saliency)",
        config.backbone.name, config.backbone.width, f.fpn_channels, config.shape_size,
        config.saliency_stride, to_string(config.assembly),
        config.class_specific_saliency ? "class-specific" : "class-agnostic");
  }
  return fmt::format("CenterMask ({}, S = {}, saliency stride {}, {}, {} saliency)",
                     config.backbone.name, config.shape_size, config.saliency_stride,
                     to_string(config.assembly),
                     config.class_specific_saliency ? "class-specific" : "class-agnostic");
}

}  // namespace centermask
