// CenterMask-FCOS's entry in the method registry: its config keys (model.centermask_fcos.*:
// CenterMask's mask switches and FCOS's towers), validation, network, ablation variants
// (CenterMask's Table 1c–1e on this detector) and description.

#include <fmt/format.h>

#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"

namespace centermask {

void declare_option_keys(OptionKeys& keys, CenterMaskFcosOptions& f) {
  keys.add_int("shape_size", "S: the local shape is S x S", f.shape_size);
  keys.add_enum("assembly", "how a mask is made (ablation)", f.assembly,
                {{"shape_times_saliency", MaskAssembly::kShapeTimesSaliency},
                 {"shape_only", MaskAssembly::kShapeOnly},
                 {"saliency_only", MaskAssembly::kSaliencyOnly}});
  keys.add_bool("class_specific_saliency", "one saliency channel per class (else one)",
                f.class_specific_saliency);
  keys.add_int("saliency_stride",
               "input pixels per saliency cell: 8 (P3), 4 (paper), 2 or 1 (light upsampling)",
               f.saliency_stride);
  keys.add_int("saliency_upsample_channels",
               "channels of each saliency upsampling stage finer than stride 4",
               f.saliency_upsample_channels);
  FcosKeyHelp help;
  help.towers = "conv + GN + ReLU units per FCOS tower (class, regression)";
  help.box_loss = "1 - GIoU box loss weight";
  help.mask_loss = "mask BCE weight";
  declare_fcos_detector_keys(keys, f, help);
  keys.add_int("saliency_convs", "conv + GN + ReLU units of the saliency head on P3",
               f.saliency_convs);
  keys.add_int("saliency_channels", "width of the saliency head (and of its stride-8 to 4 stage)",
               f.saliency_channels);
  keys.add_int("mask_samples_per_image",
               "positives per image whose masks the loss assembles (highest centerness); 0 = all",
               f.mask_samples_per_image);
  declare_fcos_loss_weight_keys(keys, f.loss_weights, help);
}

CenterMaskFcosOptions centermask_fcos_options(const ModelConfig& config) {
  return fcos_method_options<CenterMaskFcosOptions>(config, "centermask_fcos");
}

MethodRegistration centermask_fcos_registration() {
  MethodRegistration method;
  method.name = "centermask_fcos";
  method.default_options = [] {
    return std::make_unique<MethodOptionsOf<CenterMaskFcosOptions>>();
  };
  method.validate = [](const ModelConfig& config) { centermask_fcos_options(config).validate(); };
  method.build = [](const ModelConfig& config) -> std::shared_ptr<MetaArchitectureImpl> {
    return std::make_shared<CenterMaskFcosImpl>(centermask_fcos_options(config));
  };
  method.ablation_variants = [] {
    return mask_assembly_ablation_variants("model.centermask_fcos.");
  };
  method.describe = [](const ModelConfig& config) {
    const CenterMaskFcosOptions& f =
        config.method_options<CenterMaskFcosOptions>("centermask_fcos");
    return fmt::format(
        "CenterMask-FCOS ({}-FPN width {}, {} channels, S = {}, saliency stride {}, {}, {} "
        "saliency)",
        config.backbone, config.backbone_width, f.fpn_channels, f.shape_size, f.saliency_stride,
        to_string(f.assembly), f.class_specific_saliency ? "class-specific" : "class-agnostic");
  };
  return method;
}

}  // namespace centermask
