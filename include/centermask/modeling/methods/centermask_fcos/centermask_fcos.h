#pragma once
// CenterMask-FCOS (Wang et al., CVPR 2020, Tables 3–4; SPEC §3): CenterMask's Local Shape and
// Global Saliency embedded in FCOS. FCOS on a ResNet-FPN (P3–P7: shared towers, class,
// box and centerness heads, a scale per level) finds the objects; every location also owns an
// S × S local shape (a 1×1 layer on the regression tower, evaluated only where a shape is
// needed) and one saliency head on P3 gives a full-image map at the saliency stride (P3's 8,
// or 4, 2, 1 by image-guided upsampling). An object's mask is its location's shape resized to
// the box times the saliency cropped to that box: CenterMask's assembly, with FCOS's box
// where CenterMask has its center-and-size box.
//
//   CenterMaskFcos model(options);
//   CenterMaskFcosOutputs out = model->forward(images);     // (N, 3, H, W), H, W % 32 == 0
//   CenterMaskFcosLosses losses = model->loss(out, targets);
//   auto instances = model->predict(out, infos, {});         // per image, original pixels
//
// Training: every positive location (FCOS's center sampling) assembles its object's mask from
// its own shape, resized to the ground-truth box, and the saliency cropped to that box; BCE
// against the object's mask crop. Inference: score √(class · centerness), class-wise box NMS
// 0.6, the top 100; each kept location's shape resized to its predicted box × saliency crop,
// threshold 0.4. The paper gives no detail beyond "the training follows Mask R-CNN"; these
// choices are SPEC §3's.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/data/transforms.h"
#include "centermask/modeling/fcos/fcos_assignment.h"
#include "centermask/modeling/fcos/fcos_detector.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"
#include "centermask/modeling/model_config.h"
#include "centermask/structures/instances.h"

namespace centermask {

struct AssembledMasks;  // modeling/ops/mask_assembly.h

using CenterMaskFcosLossWeights = FcosLossWeights;

/// FCOS's options (the pyramid, the towers, center sampling around the box center, the loss
/// weights) and CenterMask's mask switches, all model.centermask_fcos.*.
struct CenterMaskFcosOptions : FcosDetectorOptions {
  // CenterMask's mask switches (model.centermask_fcos.shape_size, assembly,
  // class_specific_saliency, saliency_stride, saliency_upsample_channels): the same ablation
  // as CenterMask's.
  int shape_size = 32;
  MaskAssembly assembly = MaskAssembly::kShapeTimesSaliency;
  bool class_specific_saliency = true;
  /// Input pixels per saliency cell: 8 (P3 itself), 4 (CenterMask's), 2 or 1.
  int saliency_stride = 4;
  /// Channels of the upsampling stages finer than stride 4 (as CenterMask's).
  int saliency_upsample_channels = 16;

  int saliency_convs = 2;       ///< conv + GN + ReLU units of the saliency head on P3
  int saliency_channels = 128;  ///< their width, and the stride-8 → 4 stage's
  /// The mask loss assembles at most this many positives per image (those with the highest
  /// centerness target, where inference keeps its detections); 0 = every positive.
  int mask_samples_per_image = 0;

  /// std::invalid_argument naming the key (model.*, model.centermask_fcos.*) otherwise.
  void validate() const;
  bool has_shape_head() const { return assembly != MaskAssembly::kSaliencyOnly; }
  bool has_saliency_head() const { return assembly != MaskAssembly::kShapeOnly; }
};

/// CenterMask-FCOS's config keys (model.centermask_fcos.*), bound to `options`' fields.
void declare_option_keys(OptionKeys& keys, CenterMaskFcosOptions& options);
/// CenterMask-FCOS's options of a config, with the shared keys (num_classes, backbone, width)
/// filled in (not validated).
CenterMaskFcosOptions centermask_fcos_options(const ModelConfig& config);

/// What the target encoder needs.
struct CenterMaskFcosTargetOptions {
  int num_classes = 80;
  double center_sampling_radius = 1.5;
  int mask_stride = 4;  ///< input pixels per mask cell (the saliency stride)
  int max_objects = 128;
};

/// One image's targets: FCOS's assignment over the locations of its input (levels finest
/// first, row-major within a level) and, per assigned object, its mask crop at the mask stride
/// over its ground-truth box's cells.
struct CenterMaskFcosTargets {
  FcosTargets fcos;  ///< object[i] indexes the per-object vectors below
  std::vector<int> strides;
  int mask_stride = 4;
  int mask_height = 0;  ///< the mask map: input / mask_stride
  int mask_width = 0;
  std::vector<std::int64_t> object_class;
  /// box_cell_region of the ground-truth box in mask cells, unclipped.
  std::vector<CellRegion> object_region;
  std::vector<std::uint8_t> object_has_mask;  ///< objects without a mask train boxes only
  /// (objects + 1) offsets into crop_pixels: object k's crop is its region clipped to the map,
  /// row-major, each value the fraction of that cell's pixels the mask covers.
  std::vector<std::int64_t> crop_start;
  std::vector<float> crop_pixels;
  /// Objects with an empty box or past max_objects.
  std::int64_t dropped = 0;

  std::int64_t num_objects() const { return static_cast<std::int64_t>(object_class.size()); }
  const std::vector<std::int64_t>& level_begins() const { return fcos.level_begin; }
  /// object k's region clipped to the mask map (what its crop covers).
  CellRegion clipped_region(std::int64_t k) const;
};

/// Encodes ground truth in input pixels (SPEC §3): FCOS's assignment (center sampling, level
/// by max(l, t, r, b), smallest box first) and each object's mask crop.
CenterMaskFcosTargets encode_centermask_fcos_targets(const std::vector<Instance>& instances,
                                                     int input_height, int input_width,
                                                     const CenterMaskFcosTargetOptions& options);

using CenterMaskFcosSampleTargets = PerImageSampleTargets<CenterMaskFcosTargets>;
using CenterMaskFcosBatchTargets = PerImageBatchTargets<CenterMaskFcosTargets>;

class CenterMaskFcosTargetEncoder : public TargetEncoder {
 public:
  explicit CenterMaskFcosTargetEncoder(CenterMaskFcosTargetOptions options) : options_(options) {}
  int num_classes() const override { return options_.num_classes; }
  std::unique_ptr<SampleTargets> encode(const std::vector<Instance>& instances, int input_height,
                                        int input_width) const override;
  std::shared_ptr<const BatchTargets> collate(
      const std::vector<std::unique_ptr<SampleTargets>>& samples) const override;

 private:
  CenterMaskFcosTargetOptions options_;
};

/// The network's outputs: FCOS's per level (finest first; fcos.regression_features is what
/// the local shapes are read from), and the saliency map.
struct CenterMaskFcosOutputs {
  FcosHeadOutputs fcos;
  std::vector<int> strides;
  /// (N, 1 or C, mask_height, mask_width); undefined when shape-only.
  torch::Tensor saliency_logits;
  int mask_height = 0;
  int mask_width = 0;
  /// Local shapes given per location instead of computed (the upper bound's perfect outputs):
  /// key image · L + location (L = all levels' locations), logits (M, S, S). A location not
  /// listed gets zero logits.
  struct GivenShapes {
    std::vector<std::int64_t> key;
    torch::Tensor logits;
  };
  std::shared_ptr<const GivenShapes> given_shapes;
};

struct CenterMaskFcosMethodOutputs : MethodOutputs {
  explicit CenterMaskFcosMethodOutputs(CenterMaskFcosOutputs o) : outputs(std::move(o)) {}
  CenterMaskFcosOutputs outputs;
};

/// Each term unweighted, and the weighted total: classification the focal loss / positives
/// (FCOS), box 1 − GIoU centerness-target weighted, centerness BCE over positives, mask the
/// mean over sampled positives of the mean pixel BCE.
using CenterMaskFcosLosses = FcosFamilyLosses;

/// FCOS's decoding (score_threshold on √(class · centerness)) and CenterMask's mask settings.
struct CenterMaskFcosInferenceOptions : FcosInferenceOptions {
  float mask_threshold = 0.4f;
  bool mask_quality_scoring = false;  ///< as CenterMaskInferenceOptions
};

/// One sampled location: which image, which location (index over all levels) and, for the
/// assembly, the box region in mask cells and the saliency channel.
struct FcosMaskSamples {
  std::vector<std::int64_t> image;
  std::vector<std::int64_t> location;
  std::vector<CellRegion> region;
  std::vector<std::int64_t> saliency_class;
};

/// CenterMask-FCOS (model.meta_arch: centermask_fcos).
class CenterMaskFcosImpl : public FcosDetectorImpl {
 public:
  explicit CenterMaskFcosImpl(CenterMaskFcosOptions options);

  std::string method_name() const override { return "centermask_fcos"; }
  std::shared_ptr<const TargetEncoder> make_target_encoder(int max_objects) const override;
  /// flip_test is not supported (FCOS's test does not flip) and ignored.
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
  /// Per level P3…P7: class_logits_pL, box_pL, centerness_logits_pL and shape_logits_pL
  /// (dense, S·S channels, with a shape head); then saliency_logits (with a saliency head).
  std::vector<std::pair<std::string, torch::Tensor>> raw_maps(
      const MethodOutputs& outputs) const override;
  /// The decoding in tensor operations: FCOS's candidates per level by TopK, boxes,
  /// class-wise NMS (ONNX's NonMaxSuppression), the masks as CenterMask's
  /// (modeling/ops/graph_masks.h), mask-quality rescoring and the re-sort; the outputs of
  /// CenterMaskImpl::decoded_outputs (boxes, scores, classes, masks, mask_boxes, count).
  std::vector<std::pair<std::string, torch::Tensor>> decoded_outputs(const MethodOutputs& outputs,
                                                                     const PredictOptions& options,
                                                                     int mask_size) const override;

  /// images: (N, 3, H, W) normalised, H and W multiples of 32.
  CenterMaskFcosOutputs forward(const torch::Tensor& images);
  CenterMaskFcosLosses loss(const CenterMaskFcosOutputs& outputs,
                            const std::vector<CenterMaskFcosTargets>& targets) const;
  std::vector<std::vector<Instance>> predict(
      const CenterMaskFcosOutputs& outputs, const std::vector<ImageInfo>& infos,
      const CenterMaskFcosInferenceOptions& options = {}) const;
  /// Perfect outputs: class probability 1 − 1e-4 at every positive location (1e-4 elsewhere),
  /// the centerness and box targets there, each positive's local shape its object's mask
  /// resampled to S × S over the ground-truth box, and perfect saliency (perfect_masks.h).
  CenterMaskFcosOutputs perfect_outputs(const std::vector<std::vector<Instance>>& instances,
                                        int input_height, int input_width) const;

  /// The assembled masks of chosen locations: (M, Hm, Wm) probability and where it means
  /// something (assemble_masks), the one path of the loss and of inference; inference passes
  /// clip_margin 1 (MaskAssemblyInput::clip_margin).
  AssembledMasks assemble(const CenterMaskFcosOutputs& outputs, const FcosMaskSamples& samples,
                          int clip_margin = -1) const;
  /// The local shape logits (M, S, S) at chosen locations: the shape layer on the regression
  /// tower's features there, or the given shapes.
  torch::Tensor local_shapes(const CenterMaskFcosOutputs& outputs,
                             const std::vector<std::int64_t>& image,
                             const std::vector<std::int64_t>& location) const;
  /// The shape layer applied densely at one level: (N, S·S, H, W); the reference that the
  /// sparse evaluation is tested against.
  torch::Tensor dense_shape_logits(const torch::Tensor& regression_features) const;

  CenterMaskFcosTargetOptions target_options(int max_objects) const;
  const CenterMaskFcosOptions& options() const { return options_; }

 private:
  CenterMaskFcosOptions options_;
  torch::nn::Conv2d shape_output_{nullptr};         ///< 1×1, S·S outputs, used sparsely
  torch::nn::Sequential saliency_tower_{nullptr};   ///< on P3
  std::vector<torch::nn::Sequential> saliency_up_;  ///< ×2 each, image-guided
  torch::nn::Conv2d saliency_output_{nullptr};      ///< 1×1 at the saliency stride
};
TORCH_MODULE(CenterMaskFcos);

}  // namespace centermask
