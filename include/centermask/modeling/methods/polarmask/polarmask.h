#pragma once
// PolarMask (Xie et al., CVPR 2020; SPEC §4, SPEC-FACTS §5): FCOS on a ResNet-FPN (P3–P7)
// whose masks are polygons: at every positive location the head regresses n ray lengths from
// the location to the object's contour at equal angles, and the mask is the filled n-gon.
// Beside the rays: FCOS's classification, its box distances and a polar centerness
// √(min d / max d) that ranks locations near the object's centre above those near its edge.
//
//   PolarMask model(options);
//   PolarMaskOutputs out = model->forward(images);       // (N, 3, H, W), H, W % 32 == 0
//   PolarMaskLosses losses = model->loss(out, targets);  // training
//   auto instances = model->predict(out, infos, {});     // per image, original pixels
//
// Differences from the reference, on purpose: ray and box regressions are in units of their
// level's stride (as FCOS's normalised targets; the polar IoU loss and −log IoU are
// scale-free, so only the smooth-L1 variant sees the unit) and the centerness predictor sits
// on the regression tower (FCOS's improvement; the reference reads it from the class tower).

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/data/transforms.h"
#include "centermask/modeling/fcos/fcos_detector.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/model_config.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// The loss on the rays (the paper's Table 1b).
enum class PolarMaskLoss {
  kPolarIou,  ///< log(Σ max(d, d*) / Σ min(d, d*)): the method
  kSmoothL1,  ///< smooth-L1 per ray (β = 1, lengths in strides), mean over rays
};
/// What the centerness branch learns (the paper's Table 1c).
enum class PolarMaskCenterness {
  kPolar,      ///< √(min d / max d) over the rays: the method
  kCartesian,  ///< FCOS's box centerness √(min(l, r)/max(l, r) · min(t, b)/max(t, b))
};
/// The point around which positives are sampled (the paper's Fig. 7 compares the two).
enum class PolarMaskSamplingCenter {
  kMassCenter,  ///< the largest contour's centroid: the method
  kBoxCenter,   ///< the box's centre, as FCOS
};
std::string to_string(PolarMaskLoss loss);
std::string to_string(PolarMaskCenterness centerness);
std::string to_string(PolarMaskSamplingCenter center);

using PolarMaskLossWeights = FcosLossWeights;

/// FCOS's options (the pyramid, three towers of head_tower_convs units — class, regression and
/// rays —, center sampling, the loss weights) and PolarMask's, all model.polarmask.*.
struct PolarMaskOptions : FcosDetectorOptions {
  int num_rays = 36;  ///< 18, 24, 36 or 72 (must divide 360)
  PolarMaskSamplingCenter sampling_center = PolarMaskSamplingCenter::kMassCenter;
  PolarMaskLoss mask_loss = PolarMaskLoss::kPolarIou;
  PolarMaskCenterness centerness = PolarMaskCenterness::kPolar;

  /// std::invalid_argument naming the key (model.polarmask.*, model.backbone) otherwise.
  void validate() const;
};

/// PolarMask's config keys (model.polarmask.*), bound to `options`' fields.
void declare_option_keys(OptionKeys& keys, PolarMaskOptions& options);
/// PolarMask's options of a config, with the shared keys (num_classes, backbone, width) filled
/// in (not validated).
PolarMaskOptions polarmask_options(const ModelConfig& config);

/// What the target encoder needs: the model's options and the objects' cap per image.
struct PolarMaskTargetOptions {
  int num_classes = 80;
  int num_rays = 36;
  double center_sampling_radius = 1.5;
  PolarMaskSamplingCenter sampling_center = PolarMaskSamplingCenter::kMassCenter;
  PolarMaskCenterness centerness = PolarMaskCenterness::kPolar;
  int max_objects = 128;
};

/// One image's targets over the FCOS locations of its input (levels finest first, row-major
/// within a level): the class (−1 = background), the box distances l, t, r, b and the ray
/// lengths in input pixels, and the centerness target, each 0 at background locations.
struct PolarMaskTargets {
  std::vector<std::int64_t> level_begin;  ///< first location of each level, then the total
  std::vector<int> strides;               ///< each level's stride in input pixels
  std::vector<std::int64_t> label;
  std::vector<float> ltrb;        ///< 4 per location
  std::vector<float> rays;        ///< num_rays per location
  std::vector<float> centerness;  ///< per location
  int num_rays = 36;
  std::int64_t num_positive = 0;
  /// Objects without a usable polygon: no mask, fewer than 15 mask pixels, a box under 10
  /// pixels on both sides (the reference's filter), or past max_objects.
  std::int64_t dropped = 0;
  std::int64_t num_locations() const { return level_begin.empty() ? 0 : level_begin.back(); }
  const std::vector<std::int64_t>& level_begins() const { return level_begin; }
};

/// Encodes ground truth in input pixels (SPEC §4): each object's largest contour and its mass
/// centre; FCOS's assignment with positives within radius · stride of the sampling centre
/// (clipped to the box), level by max(l, t, r, b), smallest box first; from each positive
/// location the rays to the contour (polar_ray_lengths) and the centerness target.
PolarMaskTargets encode_polarmask_targets(const std::vector<Instance>& instances, int input_height,
                                          int input_width, const PolarMaskTargetOptions& options);

using PolarMaskSampleTargets = PerImageSampleTargets<PolarMaskTargets>;
using PolarMaskBatchTargets = PerImageBatchTargets<PolarMaskTargets>;

class PolarMaskTargetEncoder : public TargetEncoder {
 public:
  explicit PolarMaskTargetEncoder(PolarMaskTargetOptions options) : options_(options) {}
  int num_classes() const override { return options_.num_classes; }
  std::unique_ptr<SampleTargets> encode(const std::vector<Instance>& instances, int input_height,
                                        int input_width) const override;
  std::shared_ptr<const BatchTargets> collate(
      const std::vector<std::unique_ptr<SampleTargets>>& samples) const override;
  const PolarMaskTargetOptions& options() const { return options_; }

 private:
  PolarMaskTargetOptions options_;
};

/// The network's outputs per level (finest first): FCOS's class logits, box distances and
/// centerness logits, and (N, num_rays, H, W) positive ray lengths, all regressions in units
/// of the level's stride.
struct PolarMaskOutputs {
  FcosHeadOutputs fcos;
  std::vector<torch::Tensor> rays;
  std::vector<int> strides;
};

struct PolarMaskMethodOutputs : MethodOutputs {
  explicit PolarMaskMethodOutputs(PolarMaskOutputs o) : outputs(std::move(o)) {}
  PolarMaskOutputs outputs;
};

/// Each term unweighted, and the weighted total: classification the focal loss / (positives
/// + images), as the reference; box −log IoU and mask the polar IoU (or smooth-L1), both
/// centerness-target weighted; centerness BCE, mean over positives.
using PolarMaskLosses = FcosFamilyLosses;

/// FCOS's decoding with PolarMask's NMS threshold (0.5) and final score class × (centerness +
/// 0.5), which score_threshold applies to.
struct PolarMaskInferenceOptions : FcosInferenceOptions {
  PolarMaskInferenceOptions() { nms_iou = 0.5; }
};

/// PolarMask (model.meta_arch: polarmask).
class PolarMaskImpl : public FcosDetectorImpl {
 public:
  explicit PolarMaskImpl(PolarMaskOptions options);

  std::string method_name() const override { return "polarmask"; }
  std::shared_ptr<const TargetEncoder> make_target_encoder(int max_objects) const override;
  /// flip_test is not supported by PolarMask (a mirrored polygon's rays are another order)
  /// and ignored.
  std::shared_ptr<const MethodOutputs> run_network(const torch::Tensor& images,
                                                   bool flip_test = false) override;
  /// The terms, in this order: classification, box, centerness, mask.
  MethodLosses compute_losses(const MethodOutputs& outputs, const BatchTargets& targets,
                              const torch::Device& device) const override;
  std::vector<std::vector<Instance>> detect(const MethodOutputs& outputs,
                                            const std::vector<ImageInfo>& infos,
                                            const PredictOptions& options) const override;
  std::shared_ptr<const MethodOutputs> perfect_network_outputs(
      const std::vector<std::vector<Instance>>& instances, int input_height,
      int input_width) const override;
  std::string first_non_finite_output(const MethodOutputs& outputs) const override;
  /// Per level P3…P7: class_logits_pL, box_pL, centerness_logits_pL, rays_pL (regressions in
  /// units of the level's stride).
  std::vector<std::pair<std::string, torch::Tensor>> raw_maps(
      const MethodOutputs& outputs) const override;
  /// The decoding in tensor operations: FCOS's candidates per level by TopK, boxes, class-wise
  /// NMS (ONNX's NonMaxSuppression), each detection's rays as its polygon: boxes (N, K, 4),
  /// scores (N, K), classes (N, K), polygons (N, K, rays, 2) x, y in input pixels (clamped to
  /// the input, as predict), count (N).
  std::vector<std::pair<std::string, torch::Tensor>> decoded_outputs(const MethodOutputs& outputs,
                                                                     const PredictOptions& options,
                                                                     int mask_size) const override;

  /// images: (N, 3, H, W) normalised, H and W multiples of 32.
  PolarMaskOutputs forward(const torch::Tensor& images);
  PolarMaskLosses loss(const PolarMaskOutputs& outputs,
                       const std::vector<PolarMaskTargets>& targets) const;
  /// Detections per image in original-image pixels: box from the box branch, mask the filled
  /// polygon of the rays, highest score first.
  std::vector<std::vector<Instance>> predict(const PolarMaskOutputs& outputs,
                                             const std::vector<ImageInfo>& infos,
                                             const PolarMaskInferenceOptions& options = {}) const;
  /// Perfect outputs: class probability 1 − 1e-4 at every positive location (1e-4 elsewhere),
  /// the centerness, box and ray targets there.
  PolarMaskOutputs perfect_outputs(const std::vector<std::vector<Instance>>& instances,
                                   int input_height, int input_width) const;

  PolarMaskTargetOptions target_options(int max_objects) const;
  const PolarMaskOptions& options() const { return options_; }

 private:
  PolarMaskOptions options_;
  torch::nn::Sequential mask_tower_{nullptr};
  torch::nn::Conv2d rays_{nullptr};
  torch::Tensor ray_scales_;  ///< (levels) learnable, start at 1
};
TORCH_MODULE(PolarMask);

}  // namespace centermask
