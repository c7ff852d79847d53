// CenterMask's entry in the method registry: its config keys (model.centermask.*), validation,
// network, ablation variants (the paper's Table 1c–1e) and description.

#include <fmt/format.h>

#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/centermask/centermask.h"

namespace centermask {

void declare_option_keys(OptionKeys& keys, CenterMaskOptions& m) {
  keys.add_bool("backbone_skips",
                "ResNet: add each stage to the upsampling path at its stride (TTFNet/U-Net "
                "shortcuts)",
                m.backbone.skip_connections);
  keys.add_int("backbone_output_channels",
               "ResNet: channels of the stride-4 map the heads read; 0 = backbone_width",
               m.backbone.output_channels);
  keys.add_int("head_channels", "hidden channels of each head; 0 = 256 for DLA, 64 for ResNet",
               m.head_channels);
  keys.add_int("shape_size", "S: the local shape is S x S", m.shape_size);
  keys.add_enum("assembly", "how a mask is made (ablation)", m.assembly,
                {{"shape_times_saliency", MaskAssembly::kShapeTimesSaliency},
                 {"shape_only", MaskAssembly::kShapeOnly},
                 {"saliency_only", MaskAssembly::kSaliencyOnly}});
  keys.add_bool("class_specific_saliency", "one saliency channel per class (else one)",
                m.class_specific_saliency);
  keys.add_bool("direct_saliency_loss", "BCE of each saliency channel vs its class's masks",
                m.direct_saliency_loss);
  keys.add_int("saliency_stride",
               "input pixels per saliency cell: 4 (paper), 2 or 1 (finer masks, light upsampling)",
               m.saliency_stride);
  keys.add_int("saliency_upsample_channels",
               "channels of each saliency upsampling stage finer than stride 4",
               m.saliency_upsample_channels);
  keys.add_bool(
      "dense_box_loss",
      "TTFNet-style Gaussian-weighted offset/size loss around each center (else center only)",
      m.dense_box_loss);
  keys.add_int("mask_neighbourhood",
               "also train masks from the shapes at cells within r of each center (0 = center "
               "only)",
               m.mask_neighbourhood);
  keys.add_int("head_norm_groups",
               "GroupNorm groups after each head's 3x3 conv (FCOS); 0 = none (CenterNet)",
               m.head_norm_groups);
  keys.add_bool("small_normal_head_init",
                "heads start from N(0, 0.001) (CenterNet's ResNet) instead of PyTorch's default",
                m.small_normal_head_init);
  CenterMaskLossWeights& w = m.loss_weights;
  keys.add_double("loss_weights.heatmap", "lambda_p", w.heatmap);
  keys.add_double("loss_weights.offset", "lambda_off", w.offset);
  keys.add_double("loss_weights.size", "lambda_size", w.size);
  keys.add_double("loss_weights.mask", "lambda_mask", w.mask);
  keys.add_double("loss_weights.saliency", "direct saliency loss weight", w.saliency);
  keys.add_double("loss_weights.box_giou",
                  "TTFNet's 1 - GIoU of the boxes at the dense box cells (needs dense_box_loss); "
                  "0 = off",
                  w.box_giou);
  keys.add_double("loss_weights.mask_dice", "Dice loss of the assembled masks; 0 = off",
                  w.mask_dice);
}

CenterMaskOptions centermask_options(const ModelConfig& config) {
  CenterMaskOptions options = config.method_options<CenterMaskOptions>("centermask");
  options.num_classes = config.num_classes;
  options.backbone.name = config.backbone;
  options.backbone.width = config.backbone_width;
  return options;
}

std::vector<AblationVariant> mask_assembly_ablation_variants(const std::string& key_prefix) {
  // The paper's Table 1c–1e. Every variant names its saliency stride: the paper's 4 unless the
  // variant is about it, so a config that trains at another stride still ablates like for like.
  const auto variant = [&](std::string name, std::string description, const char* assembly,
                           bool class_specific, int stride) {
    return AblationVariant{
        std::move(name),
        std::move(description),
        {key_prefix + "assembly=" + assembly,
         key_prefix + "class_specific_saliency=" + (class_specific ? "true" : "false"),
         key_prefix + "saliency_stride=" + std::to_string(stride)}};
  };
  return {variant("full", "shape x saliency, class-specific saliency (the method)",
                  "shape_times_saliency", true, 4),
          variant("class_agnostic", "shape x saliency, one class-agnostic saliency map",
                  "shape_times_saliency", false, 4),
          variant("shape_only", "local shape alone (no saliency head)", "shape_only", true, 4),
          variant("saliency_only", "class-specific saliency alone (no shape head)", "saliency_only",
                  true, 4),
          variant("saliency_stride_2",
                  "shape x saliency, class-specific saliency at stride 2 (finer masks, beyond "
                  "the paper)",
                  "shape_times_saliency", true, 2)};
}

MethodRegistration centermask_registration() {
  MethodRegistration method;
  method.name = "centermask";
  method.default_options = [] { return std::make_unique<MethodOptionsOf<CenterMaskOptions>>(); };
  method.validate = [](const ModelConfig& config) { centermask_options(config).validate(); };
  method.build = [](const ModelConfig& config) -> std::shared_ptr<MetaArchitectureImpl> {
    return std::make_shared<CenterMaskImpl>(centermask_options(config));
  };
  method.ablation_variants = [] { return mask_assembly_ablation_variants("model.centermask."); };
  method.describe = [](const ModelConfig& config) {
    const CenterMaskOptions& m = config.method_options<CenterMaskOptions>("centermask");
    return fmt::format("CenterMask ({}, S = {}, saliency stride {}, {}, {} saliency)",
                       config.backbone, m.shape_size, m.saliency_stride, to_string(m.assembly),
                       m.class_specific_saliency ? "class-specific" : "class-agnostic");
  };
  return method;
}

}  // namespace centermask
