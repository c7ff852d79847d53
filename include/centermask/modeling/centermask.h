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
#include "centermask/modeling/centermask_training_targets.h"
#include "centermask/structures/instances.h"

namespace centermask {

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
};

struct CenterMaskOptions {
  int num_classes = 80;
  BackboneOptions backbone;
  /// Hidden channels of every head; 0 = CenterNet's default (256 for DLA-34, 64 for ResNet).
  int head_channels = 0;
  int shape_size = 32;  ///< S: the local shape is S×S
  MaskAssembly assembly = MaskAssembly::kShapeTimesSaliency;
  /// Saliency with one channel per class (the paper's best) or a single class-agnostic map.
  bool class_specific_saliency = true;
  /// Adds BCE between each saliency channel and its class's union of ground-truth masks
  /// (paper Table 1f); needs class-specific saliency and targets with class_union_masks.
  bool direct_saliency_loss = false;
  CenterMaskLossWeights loss_weights;

  /// Throws std::invalid_argument naming the field when the combination is not usable.
  void validate() const;
  int resolved_head_channels() const;
  bool has_shape_head() const { return assembly != MaskAssembly::kSaliencyOnly; }
  bool has_saliency_head() const { return assembly != MaskAssembly::kShapeOnly; }
};

/// The raw network outputs; H, W = input / 4.
struct CenterMaskOutputs {
  torch::Tensor heatmap_logits;   ///< (N, C, H, W)
  torch::Tensor offset;           ///< (N, 2, H, W) sub-cell center offset, x then y
  torch::Tensor size;             ///< (N, 2, H, W) box width, height in cells
  torch::Tensor shape_hidden;     ///< (N, head_channels, H, W) shape head before its 1×1 layer
  torch::Tensor saliency_logits;  ///< (N, 1 or C, H, W); undefined when shape-only
};

/// The weighted total and each (unweighted) term, all scalars.
struct CenterMaskLosses {
  torch::Tensor total;
  torch::Tensor heatmap;
  torch::Tensor offset;
  torch::Tensor size;
  torch::Tensor mask;
  torch::Tensor saliency;  ///< undefined unless direct saliency supervision is on
};

struct CenterMaskInferenceOptions {
  int top_k = 100;               ///< peaks kept per image, over all classes
  float mask_threshold = 0.4f;   ///< on the assembled probability, at input resolution
  float score_threshold = 0.0f;  ///< peaks below it are not turned into instances
};

/// The heads' peaks before masks: for timing and for callers that want boxes only.
struct CenterMaskPeaks {
  torch::Tensor score;     ///< (N, K) heatmap peak value, descending; 0 past the last peak
  torch::Tensor class_id;  ///< (N, K) int64
  torch::Tensor cell;      ///< (N, K) int64, y·W + x
  torch::Tensor offset;    ///< (N, K, 2)
  torch::Tensor size;      ///< (N, K, 2) cells
};

class CenterMaskImpl : public torch::nn::Module {
 public:
  explicit CenterMaskImpl(CenterMaskOptions options);

  /// images: (N, 3, H, W) normalised, H and W multiples of 32 (std::invalid_argument if not).
  CenterMaskOutputs forward(const torch::Tensor& images);
  /// The two halves of forward(), for timing: backbone features (N, channels, H/4, W/4), and
  /// the heads on them.
  torch::Tensor features(const torch::Tensor& images);
  CenterMaskOutputs heads(const torch::Tensor& features);

  /// Training losses (SPEC §1) for outputs of a batch and its targets on the same device.
  CenterMaskLosses loss(const CenterMaskOutputs& outputs,
                        const CenterMaskTrainingTargets& targets) const;

  /// Detections per image in original-image pixels (box, class, score, mask), highest score
  /// first. `infos` gives each image's input → original affine and original size.
  std::vector<std::vector<Instance>> predict(const CenterMaskOutputs& outputs,
                                             const std::vector<ImageInfo>& infos,
                                             const CenterMaskInferenceOptions& options = {}) const;

  /// Peak extraction: 3×3 max-pool suppression, top-K over all classes, sigmoid of the kept.
  CenterMaskPeaks find_peaks(const CenterMaskOutputs& outputs, int top_k) const;

  /// The shape head's last layer at chosen cells: (M) image indices and (M) cells y·W + x
  /// → (M, S, S) local shape logits.
  torch::Tensor shape_logits_at(const torch::Tensor& shape_hidden, const torch::Tensor& image_index,
                                const torch::Tensor& cell) const;
  /// The same layer applied densely, (N, S·S, H, W): what the sparse evaluation avoids; for
  /// the benchmark and the test that the two agree.
  torch::Tensor dense_shape_logits(const torch::Tensor& shape_hidden) const;

  const CenterMaskOptions& options() const { return options_; }
  ShapeSpec feature_shape() const { return backbone_->output_shape(); }
  int size_divisor() const { return backbone_->size_divisor(); }

 private:
  CenterMaskOptions options_;
  std::shared_ptr<BackboneImpl> backbone_;
  torch::nn::Sequential heatmap_head_{nullptr}, offset_head_{nullptr}, size_head_{nullptr};
  torch::nn::Sequential saliency_head_{nullptr};
  torch::nn::Sequential shape_hidden_{nullptr};  ///< conv 3×3 + ReLU
  torch::nn::Conv2d shape_output_{nullptr};      ///< 1×1, S·S outputs, used sparsely
};
TORCH_MODULE(CenterMask);

}  // namespace centermask
