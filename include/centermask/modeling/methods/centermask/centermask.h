#pragma once
// CenterMask (Wang et al., CVPR 2020; SPEC §1): a backbone at stride 4 and five heads —
// center heatmap, offset, size, local shape (S·S per cell) and global saliency. An object's
// mask is its local shape resized to its box times the saliency map cropped to that box.
//
//   CenterMask model(options);
//   CenterMaskOutputs out = model->forward(images);           // (N, 3, H, W), H, W % 32 == 0
//   CenterMaskLosses losses = model->loss(out, targets);       // training
//   auto instances = model->predict(out, infos, inference);    // per image, original pixels
//
// The shape head's last 1×1 layer is only evaluated where a shape is needed (ground-truth
// centers in training, the top-K peaks at inference), not densely over H×W×S² channels.

#include <torch/torch.h>

#include <string>
#include <vector>

#include "centermask/data/transforms.h"
#include "centermask/modeling/backbone.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"
#include "centermask/modeling/methods/centermask/centermask_training_targets.h"
#include "centermask/modeling/model_config.h"
#include "centermask/structures/instances.h"

namespace centermask {

namespace layers {
class FusedSiblingConvs;
}

/// Which factors make up an object's mask (the paper's Table 1c–1d ablation).
enum class MaskAssembly {
  kShapeTimesSaliency,  ///< M = sigmoid(L) ⊙ sigmoid(G): the method
  kShapeOnly,           ///< M = sigmoid(L): no saliency head
  kSaliencyOnly,        ///< M = sigmoid(G): no shape head
};
/// "shape_times_saliency", "shape_only", "saliency_only"; parse throws std::invalid_argument.
std::string to_string(MaskAssembly assembly);
MaskAssembly parse_mask_assembly(const std::string& name);

struct CenterMaskLossWeights {
  double heatmap = 1.0;
  double offset = 1.0;
  double size = 0.1;
  double mask = 1.0;
  double saliency = 1.0;  ///< direct saliency supervision, when enabled
  /// > 0 adds TTFNet's 1 − GIoU of the boxes predicted at the dense box cells (needs
  /// dense_box_loss); 0 = off.
  double box_giou = 0.0;
  /// > 0 adds the Dice loss of the assembled masks beside their BCE; 0 = off.
  double mask_dice = 0.0;
};

struct CenterMaskOptions {
  int num_classes = 80;
  BackboneOptions backbone;
  /// Hidden channels of every head; 0 = CenterNet's default (256 for DLA-34, 64 for ResNet).
  int head_channels = 0;
  /// G > 0: GroupNorm with G groups after each head's hidden 3×3 convolution (FCOS's heads;
  /// G must divide the hidden channels); 0 = none (CenterNet's heads).
  int head_norm_groups = 0;
  int shape_size = 32;  ///< S: the local shape is S×S
  MaskAssembly assembly = MaskAssembly::kShapeTimesSaliency;
  /// Saliency with one channel per class (the paper's best) or a single class-agnostic map.
  bool class_specific_saliency = true;
  /// Adds BCE between each saliency channel and its class's union of ground-truth masks
  /// (paper Table 1f); needs class-specific saliency and targets with class_union_masks.
  bool direct_saliency_loss = false;
  /// Input pixels per saliency cell: 4 (the paper: the backbone's stride) or, beyond the
  /// paper, 2 or 1: the saliency head then ends in light upsampling stages (bilinear ×2, the
  /// input image pooled to that stride concatenated, conv 3×3 + ReLU), and masks are assembled,
  /// supervised and decoded at that resolution.
  int saliency_stride = 4;
  int saliency_upsample_channels = 16;  ///< channels of each upsampling stage
  /// TTFNet-style dense box supervision: offset and size L1 at every cell of an elliptical
  /// Gaussian (radii 0.54·box/2) around the center, Gaussian-weighted, instead of at the center
  /// cell alone. The loss terms keep their meaning and scale (each object's weights sum to 1).
  bool dense_box_loss = false;
  /// r > 0 also trains the mask assembled from the local shapes at the cells within r of each
  /// center (Gaussian-weighted), where a peak may land at inference; 0 = the center only.
  int mask_neighbourhood = 0;
  /// Initial weights of the heads' convolutions: PyTorch's default (Kaiming-uniform, what
  /// CenterNet uses for DLA-34) or CenterNet's N(0, 0.001) of its ResNets. Measured here: with
  /// N(0, 0.001) and Adam, the heatmap head's hidden units that could raise a peak die (ReLU)
  /// within the first iterations, the peak logit never exceeds the final bias, and every
  /// detection scores ≈ 0.11; so the default is the default.
  bool small_normal_head_init = false;
  CenterMaskLossWeights loss_weights;

  /// Throws std::invalid_argument naming the field when the combination is not usable.
  void validate() const;
  int resolved_head_channels() const;
  bool has_shape_head() const { return assembly != MaskAssembly::kSaliencyOnly; }
  bool has_saliency_head() const { return assembly != MaskAssembly::kShapeOnly; }
};

/// CenterMask's config keys (model.centermask.*), bound to `options`' fields.
void declare_option_keys(OptionKeys& keys, CenterMaskOptions& options);
/// CenterMask's options of a config, with the shared keys (num_classes, backbone, width)
/// filled in (not validated).
CenterMaskOptions centermask_options(const ModelConfig& config);
/// The paper's mask-assembly ablation (Table 1c–1e: shape × saliency, class-agnostic, shape
/// only, saliency only; and saliency stride 2), as overrides of the keys under `key_prefix`
/// ("model.centermask."): CenterMask-FCOS has the same switches.
std::vector<AblationVariant> mask_assembly_ablation_variants(const std::string& key_prefix);

/// The raw network outputs; H, W = input / 4.
struct CenterMaskOutputs {
  torch::Tensor heatmap_logits;  ///< (N, C, H, W)
  torch::Tensor offset;          ///< (N, 2, H, W) sub-cell center offset, x then y
  torch::Tensor size;            ///< (N, 2, H, W) box width, height in cells
  torch::Tensor shape_hidden;    ///< (N, head_channels, H, W) shape head before its 1×1 layer
  /// (N, 1 or C, Hm, Wm) at the saliency stride (Hm = H · 4 / saliency_stride); undefined when
  /// shape-only
  torch::Tensor saliency_logits;
  /// Local shapes given per cell instead of computed from shape_hidden (the upper bound's
  /// perfect outputs): image (M), cell y·W + x (M) and logits (M, S, S). A cell not listed
  /// gets zero logits.
  struct GivenShapes {
    std::vector<std::int64_t> image;
    std::vector<std::int64_t> cell;
    torch::Tensor logits;
  };
  std::shared_ptr<const GivenShapes> given_shapes;
  /// Flip test only (average_with_mirrored): the shape head's hidden map of the horizontally
  /// mirrored image, mirrored back so that cell (y, x) holds what the mirrored image had at
  /// (y, W − 1 − x). local_shapes() then averages each cell's shape probability with the
  /// mirrored one's (its S × S columns reversed). Undefined otherwise.
  torch::Tensor shape_hidden_mirrored;
  /// Training with a stacked backbone (Hourglass-104) only: the heads' outputs on each earlier
  /// stack's features (the same heads), first stack first. The loss averages its terms over
  /// these and the outputs above, as CenterNet's intermediate supervision does.
  std::vector<CenterMaskOutputs> earlier_stacks;
};

/// CenterMask's outputs behind the method interface.
struct CenterMaskMethodOutputs : MethodOutputs {
  explicit CenterMaskMethodOutputs(CenterMaskOutputs o) : outputs(std::move(o)) {}
  CenterMaskOutputs outputs;
};

/// CenterNet's flip test for CenterMask: merges the outputs of a batch and of the same batch
/// mirrored left–right into the outputs of one prediction, in the first batch's frame. Heatmap
/// and saliency probabilities and sizes are averaged with the mirrored maps flipped back; the
/// offsets too, x as 1 − x' (a center at x + o in W cells is at (W − 1 − x) + (1 − o) in the
/// mirror); local shapes are averaged per cell by local_shapes(). std::invalid_argument when
/// the two disagree in shape or carry given shapes (perfect outputs are not flip-tested).
CenterMaskOutputs average_with_mirrored(const CenterMaskOutputs& outputs,
                                        const CenterMaskOutputs& mirrored);

/// The weighted total and each (unweighted) term, all scalars.
struct CenterMaskLosses {
  torch::Tensor total;
  torch::Tensor heatmap;
  torch::Tensor offset;
  torch::Tensor size;
  torch::Tensor mask;
  torch::Tensor saliency;   ///< undefined unless direct saliency supervision is on
  torch::Tensor box_giou;   ///< undefined unless loss_weights.box_giou > 0
  torch::Tensor mask_dice;  ///< undefined unless loss_weights.mask_dice > 0
};

struct CenterMaskInferenceOptions {
  int top_k = 100;               ///< peaks kept per image, over all classes
  float mask_threshold = 0.4f;   ///< on the assembled probability, at input resolution
  float score_threshold = 0.0f;  ///< peaks below it are not turned into instances
  /// Multiplies each detection's score by its mask's quality: the mean assembled probability
  /// over the cells kept by mask_threshold (SOLOv2's "maskness"; 0 for an empty mask). The
  /// heatmap peak says an object is there; this also ranks a confident, sharp mask above a
  /// hesitant one, which COCO's AP at high IoU rewards. score_threshold applies before it.
  bool mask_quality_scoring = false;
};

/// The heads' peaks before masks: for timing and for callers that want boxes only.
struct CenterMaskPeaks {
  torch::Tensor score;     ///< (N, K) heatmap peak value, descending; 0 past the last peak
  torch::Tensor class_id;  ///< (N, K) int64
  torch::Tensor cell;      ///< (N, K) int64, y·W + x
  torch::Tensor offset;    ///< (N, K, 2)
  torch::Tensor size;      ///< (N, K, 2) cells
};

/// CenterMask (model.meta_arch: centermask). The typed forward / loss / predict below are the
/// method's own API (tests, benchmarks, the upper bound); the overrides of MetaArchitectureImpl
/// wrap them for the engine.
class CenterMaskImpl : public MetaArchitectureImpl {
 public:
  explicit CenterMaskImpl(CenterMaskOptions options);

  // The method interface (meta_arch.h).
  std::string method_name() const override { return "centermask"; }
  int num_classes() const override { return options_.num_classes; }
  int size_divisor() const override { return backbone_->size_divisor(); }
  torch::nn::Module& backbone_module() override { return *backbone_; }
  bool supports_flip_test() const override { return true; }
  std::shared_ptr<const TargetEncoder> make_target_encoder(int max_objects) const override;
  std::shared_ptr<const MethodOutputs> run_network(const torch::Tensor& images,
                                                   bool flip_test = false) override;
  /// The terms, in this order: heatmap, offset, size, mask, then saliency, box_giou and
  /// mask_dice when they are on.
  MethodLosses compute_losses(const MethodOutputs& outputs, const BatchTargets& targets,
                              const torch::Device& device) const override;
  std::vector<std::vector<Instance>> detect(const MethodOutputs& outputs,
                                            const std::vector<ImageInfo>& infos,
                                            const PredictOptions& options) const override;
  std::shared_ptr<const MethodOutputs> perfect_network_outputs(
      const std::vector<std::vector<Instance>>& instances, int input_height,
      int input_width) const override;
  std::string first_non_finite_output(const MethodOutputs& outputs) const override;
  /// heatmap_logits, offset, size, shape_logits (dense, S·S channels; without a shape head
  /// none) and saliency_logits (without a saliency head none).
  std::vector<std::pair<std::string, torch::Tensor>> raw_maps(
      const MethodOutputs& outputs) const override;
  /// The decoding in tensor operations (peaks by 3×3 max-pool and TopK, boxes, each mask
  /// assembled on the whole mask map and resampled onto an M×M grid over its mask box, the
  /// mask-quality rescoring and the re-sort): boxes (N, K, 4) in input pixels, scores (N, K),
  /// classes (N, K), masks (N, K, M, M) probabilities, mask_boxes (N, K, 4) in input pixels —
  /// the cells of the mask map the probability covers, where the M×M grid's cell (i, j) has
  /// its center at (i + 0.5) / M of the way — and count (N), the valid rows.
  std::vector<std::pair<std::string, torch::Tensor>> decoded_outputs(const MethodOutputs& outputs,
                                                                     const PredictOptions& options,
                                                                     int mask_size) const override;

  /// images: (N, 3, H, W) normalised, H and W multiples of 32 (std::invalid_argument if not).
  CenterMaskOutputs forward(const torch::Tensor& images);
  /// forward() on the images and on their left–right mirror in one batch, merged by
  /// average_with_mirrored (test time: twice the network's work for usually higher AP).
  CenterMaskOutputs forward_flip_averaged(const torch::Tensor& images);
  /// The two halves of forward(), for timing: backbone features (N, channels, H/4, W/4), and
  /// the heads on them (the images guide the saliency upsampling when saliency_stride < 4).
  torch::Tensor features(const torch::Tensor& images);
  CenterMaskOutputs heads(const torch::Tensor& features, const torch::Tensor& images);

  /// What the target encoder needs to encode ground truth for this model (stride, mask
  /// stride, classes, dense targets), for the loader and the upper bound.
  CenterMaskTargetOptions target_options(int max_objects) const;
  /// Input pixels per mask cell (= saliency_stride).
  int mask_stride() const { return options_.saliency_stride; }

  /// Training losses (SPEC §1) for outputs of a batch and its targets on the same device;
  /// with earlier stacks' outputs, each term is the mean over the stacks.
  CenterMaskLosses loss(const CenterMaskOutputs& outputs,
                        const CenterMaskTrainingTargets& targets) const;

  /// Detections per image in original-image pixels (box, class, score, mask), highest score
  /// first. `infos` gives each image's input → original affine and original size.
  std::vector<std::vector<Instance>> predict(const CenterMaskOutputs& outputs,
                                             const std::vector<ImageInfo>& infos,
                                             const CenterMaskInferenceOptions& options = {}) const;

  /// The outputs a perfect network would give for ground truth in input pixels (per image, of
  /// an input of input_height × input_width): the heatmap's Gaussians with peaks at the
  /// centers, exact offsets and sizes there, each object's mask resampled to S × S as its local
  /// shape, and saliency 1 over the class's masks (class-specific) or all masks, 0 elsewhere —
  /// the product then is the shape cut to the masks' support; saliency alone (saliency_only)
  /// is the coverage itself. Decoded by predict(), it measures what the representation can
  /// reach: the upper bound of `centermask upper-bound`.
  CenterMaskOutputs perfect_outputs(const std::vector<std::vector<Instance>>& instances,
                                    int input_height, int input_width) const;

  /// Peak extraction: 3×3 max-pool suppression, top-K over all classes, sigmoid of the kept.
  CenterMaskPeaks find_peaks(const CenterMaskOutputs& outputs, int top_k) const;

  /// The shape head's last layer at chosen cells: (M) image indices and (M) cells y·W + x
  /// → (M, S, S) local shape logits.
  torch::Tensor shape_logits_at(const torch::Tensor& shape_hidden, const torch::Tensor& image_index,
                                const torch::Tensor& cell) const;
  /// The local shapes at chosen cells from the outputs: the shape head, or the given shapes.
  torch::Tensor local_shapes(const CenterMaskOutputs& outputs,
                             const std::vector<std::int64_t>& image_index,
                             const std::vector<std::int64_t>& cell) const;
  /// The same layer applied densely, (N, S·S, H, W): what the sparse evaluation avoids; for
  /// the benchmark and the test that the two agree.
  torch::Tensor dense_shape_logits(const torch::Tensor& shape_hidden) const;

  const CenterMaskOptions& options() const { return options_; }
  ShapeSpec feature_shape() const { return backbone_->output_shape(); }

 private:
  /// std::invalid_argument unless images are (N, 3, H, W) with sides the backbone takes.
  void check_images(const torch::Tensor& images) const;
  /// loss() for one stack's outputs.
  CenterMaskLosses stack_loss(const CenterMaskOutputs& outputs,
                              const CenterMaskTrainingTargets& targets) const;

  CenterMaskOptions options_;
  std::shared_ptr<BackboneImpl> backbone_;
  torch::nn::Sequential heatmap_head_{nullptr}, offset_head_{nullptr}, size_head_{nullptr};
  torch::nn::Sequential saliency_head_{nullptr};    ///< stride 4: the whole head
  torch::nn::Sequential saliency_hidden_{nullptr};  ///< stride < 4: conv 3×3 + ReLU at stride 4
  std::vector<torch::nn::Sequential> saliency_up_;  ///< ×2 each, image-guided
  torch::nn::Conv2d saliency_output_{nullptr};      ///< 1×1 at the saliency stride
  torch::nn::Sequential shape_hidden_{nullptr};     ///< conv 3×3 + ReLU
  torch::nn::Conv2d shape_output_{nullptr};         ///< 1×1, S·S outputs, used sparsely
  /// At inference the heads' first 3×3 convs run as one (modeling/backbone/layers.h).
  std::shared_ptr<layers::FusedSiblingConvs> fused_head_convs_;
};
TORCH_MODULE(CenterMask);

}  // namespace centermask
