#pragma once
// A plain FCOS box detector's loss and decoding on FcosHead's outputs: the pieces PolarMask
// and CenterMask-FCOS extend (rays or masks on top of the same positives and boxes).
// Regressions are distances in units of their level's stride (FCOS's normalised targets), so
// every level regresses numbers of the same order.

#include <torch/torch.h>

#include <vector>

#include "centermask/modeling/fcos/fcos_assignment.h"
#include "centermask/modeling/fcos/fcos_detector.h"
#include "centermask/modeling/fcos/fcos_head.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// (N, C, H, W) per level → (N, Σ H·W, C), levels concatenated finest first, row-major within
/// a level: the order of FcosTargets' locations.
torch::Tensor flatten_levels(const std::vector<torch::Tensor>& per_level);

struct FcosBoxLosses {
  torch::Tensor classification;  ///< sigmoid focal loss / number of positives
  torch::Tensor box;             ///< 1 − GIoU, centerness-weighted mean over positives
  torch::Tensor centerness;      ///< BCE over positives
  torch::Tensor total;           ///< their sum
};

/// FCOS's three losses for a batch: `targets[i]` is image i's assignment over the same levels
/// (assign_fcos_targets with these strides), `strides` the levels' strides in pixels. The
/// number of positives is counted over the batch (at least 1).
FcosBoxLosses fcos_box_losses(const FcosHeadOutputs& outputs,
                              const std::vector<FcosTargets>& targets,
                              const std::vector<int>& strides);

/// A detection's final score from its class probability p and centerness c.
enum class FcosScore {
  kSqrtClassTimesCenterness,      ///< √(p · c): FCOS
  kClassTimesCenternessPlusHalf,  ///< p · (c + 0.5): PolarMask ("or the score is too low")
};

struct FcosDecodeOptions {
  float score_threshold = 0.05f;  ///< on the class probability, before centerness
  FcosScore score = FcosScore::kSqrtClassTimesCenterness;
  int top_per_level = 1000;  ///< candidates kept per level, by cls · centerness
  double nms_iou = 0.6;      ///< class-wise
  int max_detections = 100;  ///< per image
};

/// A method's inference settings as the decoding's.
FcosDecodeOptions fcos_decode_options(const FcosInferenceOptions& options, FcosScore score);

/// One detection in input pixels, with where it came from.
struct FcosDetection {
  BoxXYXY box;
  float score = 0;  ///< FcosDecodeOptions::score of its class probability and centerness
  int class_index = 0;
  int level = 0;
  std::int64_t location = 0;  ///< index within its level, y·W + x
};

/// Per image, FCOS's inference: candidates above the threshold, the best per level (by class
/// probability × centerness), boxes from the distances around each location, class-wise NMS
/// on the final scores, highest score first.
std::vector<std::vector<FcosDetection>> decode_fcos_boxes(const FcosHeadOutputs& outputs,
                                                          const std::vector<int>& strides,
                                                          const FcosDecodeOptions& options = {});

/// decode_fcos_boxes as whole-tensor operations of fixed shapes, for exported graphs
/// (decoded_outputs): per level the best `top_per_level` candidates by TopK (those at or
/// below the threshold marked), boxes, scores, class-wise NMS (graph_nms.h), then the best
/// `max_detections` kept, highest score first.
struct GraphFcosDetections {
  torch::Tensor boxes;    ///< (N, K, 4) input pixels
  torch::Tensor scores;   ///< (N, K)
  torch::Tensor classes;  ///< (N, K) int64
  torch::Tensor kept;     ///< (N, K) bool: a detection (rows after the kept ones are not)
  torch::Tensor centers;  ///< (N, K, 2) the location's center x, y in input pixels
  torch::Tensor strides;  ///< (N, K) the location's level's stride in pixels
  /// Per map of `at_locations` ((N, C, H, W) per level): (N, K, C), its values at each row's
  /// location (the shape head's features, PolarMask's rays).
  std::vector<torch::Tensor> gathered;
};
GraphFcosDetections decode_fcos_boxes_in_graph(
    const FcosHeadOutputs& outputs, const std::vector<int>& strides,
    const FcosDecodeOptions& options, int num_classes,
    const std::vector<std::vector<torch::Tensor>>& at_locations = {});

}  // namespace centermask
