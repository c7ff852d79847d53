#pragma once
// The FCOS family's shared half (in the spirit of detectron2's DenseDetector): a ResNet-FPN
// (P3–P7) and FCOS's head (towers, class / box / centerness outputs, a scale per level), with
// the options, config keys and checks that configure them, FCOS's assignment and losses
// (fcos_assignment.h, fcos_boxes), its decoding, the four loss terms every member reports, and
// the per-image target plumbing. PolarMask and CenterMask-FCOS derive from FcosDetectorImpl and
// add only their masks: rays and polygons, or local shapes and a saliency map.
//
//   struct MyOptions : FcosDetectorOptions { int my_key = 3; };
//   class MyMethodImpl : public FcosDetectorImpl {
//     explicit MyMethodImpl(MyOptions o) : FcosDetectorImpl(o) { /* register the mask head */ }
//   };

#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/modeling/fcos/fcos_head.h"
#include "centermask/modeling/fcos/fpn.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/model_config.h"

namespace centermask {

struct FcosDetection;  // modeling/fcos/fcos_boxes.h
enum class FcosScore;
struct FcosLevel;  // modeling/fcos/fcos_assignment.h

/// One image's assignment as perfect outputs read it, per location (levels finest first,
/// row-major within a level): the class (−1 background), the centerness target and l, t, r, b
/// in input pixels. FcosTargets and the methods' own targets both have these fields.
struct FcosAssignmentView {
  const std::vector<std::int64_t>* level_begin = nullptr;  ///< then the total
  const std::vector<std::int64_t>* label = nullptr;
  const std::vector<float>* centerness = nullptr;
  const std::vector<float>* ltrb = nullptr;

  template <class Targets>
  static FcosAssignmentView of(const Targets& t) {
    return {&t.level_begin, &t.label, &t.centerness, &t.ltrb};
  }
};

/// The weights of the four terms (model.<method>.loss_weights.*).
struct FcosLossWeights {
  double classification = 1.0;
  double box = 1.0;
  double centerness = 1.0;
  double mask = 1.0;
};

/// What every FCOS-family method configures alike; a method's options derive from it.
struct FcosDetectorOptions {
  // From the model section's shared keys (model.num_classes, model.backbone,
  // model.backbone_width).
  int num_classes = 80;
  std::string backbone = "resnet50";  ///< resnet18, resnet34, resnet50 or resnet101
  int backbone_width = 64;

  // The method's own keys (model.<method>.*).
  int fpn_channels = 256;    ///< every pyramid level's and the head towers' width
  int head_tower_convs = 4;  ///< conv + GN + ReLU units per tower
  int head_norm_groups = 32;
  double center_sampling_radius = 1.5;  ///< positives within r · stride of the sampling center
  FcosLossWeights loss_weights;

  /// The head these options build (5 levels, box regression).
  FcosHeadOptions head_options() const;
  /// std::invalid_argument naming the key (model.num_classes, model.backbone, `key_prefix` +
  /// fpn_channels, …) when the pyramid and head cannot be built; `title` names the method in
  /// the messages ("PolarMask").
  void validate_detector(const std::string& title, const std::string& key_prefix) const;
};

/// The shared keys' help where the methods word them differently.
struct FcosKeyHelp {
  std::string towers = "conv + GN + ReLU units per head tower";
  std::string sampling_center = "box center";
  std::string box_loss = "box loss weight";
  std::string mask_loss = "mask loss weight";
};
/// fpn_channels, head_tower_convs, head_norm_groups, center_sampling_radius, bound to `options`.
void declare_fcos_detector_keys(OptionKeys& keys, FcosDetectorOptions& options,
                                const FcosKeyHelp& help);
/// loss_weights.classification, .box, .centerness, .mask, bound to `weights`.
void declare_fcos_loss_weight_keys(OptionKeys& keys, FcosLossWeights& weights,
                                   const FcosKeyHelp& help);

/// A method's options from a config: its own keys (model.<method>.*) with the model section's
/// shared keys filled in (not validated).
template <class Options>
Options fcos_method_options(const ModelConfig& config, const std::string& method) {
  Options options = config.method_options<Options>(method);
  options.num_classes = config.num_classes;
  options.backbone = config.backbone;
  options.backbone_width = config.backbone_width;
  return options;
}

/// The four terms each unweighted, and the weighted total.
struct FcosFamilyLosses {
  torch::Tensor total;
  torch::Tensor classification;  ///< sigmoid focal loss over every location
  torch::Tensor box;             ///< an IoU loss over positives, centerness-target weighted
  torch::Tensor centerness;      ///< BCE over positives
  torch::Tensor mask;            ///< the method's
};

/// Candidates, NMS and the cut that every member's decoding starts with.
struct FcosInferenceOptions {
  float candidate_threshold = 0.05f;  ///< on the class probability
  int top_per_level = 1000;           ///< candidates per level, by class × centerness
  double nms_iou = 0.6;               ///< class-wise, on the boxes (FCOS's)
  int max_detections = 100;
  float score_threshold = 0.0f;  ///< on the final score
};

/// One image's targets of a method whose targets stay per image (every image of a batch over
/// the same locations): `Targets` needs `dropped` and `level_begins()`.
template <class Targets>
struct PerImageSampleTargets : SampleTargets {
  Targets targets;
  std::int64_t dropped_objects() const override { return targets.dropped; }
};
template <class Targets>
struct PerImageBatchTargets : BatchTargets {
  std::vector<Targets> images;  ///< in batch order, all over the same locations
};

/// A batch of PerImageSampleTargets<Targets>; std::logic_error naming `encoder` for another
/// method's targets or images of different input sizes (the loader batches one size).
template <class Targets>
std::shared_ptr<const BatchTargets> collate_per_image(
    const std::vector<std::unique_ptr<SampleTargets>>& samples, const char* encoder) {
  auto batch = std::make_shared<PerImageBatchTargets<Targets>>();
  for (const auto& sample : samples) {
    const auto* typed = dynamic_cast<const PerImageSampleTargets<Targets>*>(sample.get());
    if (typed == nullptr)
      throw std::logic_error(std::string(encoder) + "::collate: another method's targets");
    if (!batch->images.empty() && typed->targets.level_begins() != batch->images[0].level_begins())
      throw std::logic_error(std::string(encoder) + "::collate: images of different input sizes");
    batch->images.push_back(typed->targets);
  }
  return batch;
}

/// The pyramid and FCOS's head, and what the methods built on them share.
class FcosDetectorImpl : public MetaArchitectureImpl {
 public:
  int num_classes() const override { return detector_options_.num_classes; }
  int size_divisor() const override { return pyramid_->size_divisor(); }
  torch::nn::Module& backbone_module() override { return *pyramid_; }

 protected:
  /// Validates nothing (the method's options do); builds and registers the pyramid
  /// ("pyramid") then the head ("head"): the first parameters, in the order checkpoints and
  /// the optimizer's state follow.
  explicit FcosDetectorImpl(const FcosDetectorOptions& options);

  /// The sum of `losses`' terms weighted by the options' loss_weights.
  torch::Tensor weighted_total(const FcosFamilyLosses& losses) const;
  /// The total and the terms named as the trainer logs them: classification, box, centerness,
  /// mask.
  static MethodLosses named(const FcosFamilyLosses& losses);
  /// The first of FCOS's outputs (classification, box, centerness), then of `extra`, with a
  /// non-finite value; "" when all are finite.
  static std::string first_non_finite(
      const FcosHeadOutputs& fcos,
      const std::vector<std::pair<const char*, const std::vector<torch::Tensor>*>>& extra);
  /// FCOS's decoding of a batch of `images` images with `score` as the final score;
  /// std::invalid_argument naming `title` when the outputs hold another number of images.
  static std::vector<std::vector<FcosDetection>> decode_detections(
      const FcosHeadOutputs& fcos, const std::vector<int>& strides,
      const FcosInferenceOptions& options, FcosScore score, std::size_t images, const char* title);
  /// What a perfect FCOS head outputs for these images' assignments over `levels`: class
  /// probability 1 − 1e-4 at each positive location for its class and 1e-4 elsewhere, the
  /// centerness target (within [1e-4, 1 − 1e-4]) and the distances / stride (at least
  /// `min_distance`) at positives, distance 1 elsewhere; the levels' strides into `strides`.
  static FcosHeadOutputs perfect_fcos_outputs(const std::vector<FcosAssignmentView>& images,
                                              const std::vector<FcosLevel>& levels, int num_classes,
                                              float min_distance, std::vector<int>* strides);
  /// FCOS's raw maps per level P3…P7: class_logits_pL, box_pL, centerness_logits_pL.
  static std::vector<std::pair<std::string, torch::Tensor>> fcos_raw_maps(
      const FcosHeadOutputs& fcos);
  /// The command's settings (top_k, score_threshold) over a method's decoding defaults.
  static void apply_predict_options(const PredictOptions& predict, FcosInferenceOptions* options);

  FeaturePyramid pyramid_{nullptr};
  FcosHead fcos_head_{nullptr};

 private:
  FcosDetectorOptions detector_options_;
};

}  // namespace centermask
