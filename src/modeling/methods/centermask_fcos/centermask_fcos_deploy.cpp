// CenterMask-FCOS's decoding as tensor operations of fixed shapes, for exported graphs
// (`centermask export --postprocess on`): what predict() (centermask_fcos_inference.cpp) keeps,
// with FCOS's candidates and NMS from decode_fcos_boxes_in_graph and the masks of
// modeling/ops/graph_masks.h.

#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/graph_masks.h"

namespace centermask {

std::vector<std::pair<std::string, torch::Tensor>> CenterMaskFcosImpl::decoded_outputs(
    const MethodOutputs& method_outputs, const PredictOptions& options, int mask_size) const {
  const CenterMaskFcosOutputs& o =
      method_cast<CenterMaskFcosMethodOutputs>(method_outputs, "CenterMask-FCOS").outputs;
  CenterMaskFcosInferenceOptions inference;
  apply_predict_options(options, &inference);
  std::vector<std::vector<torch::Tensor>> at_locations;
  if (shape_output_) at_locations.push_back(o.fcos.regression_features);
  const GraphFcosDetections detections = decode_fcos_boxes_in_graph(
      o.fcos, o.strides, fcos_decode_options(inference, FcosScore::kSqrtClassTimesCenterness),
      num_classes(), at_locations);
  const torch::Tensor& boxes = detections.boxes;
  const std::int64_t n = boxes.size(0), k = boxes.size(1);

  // Each detection's mask over its predicted box's cells, as predict assembles it.
  const float to_mask_cells = 1.0f / static_cast<float>(options_.saliency_stride);
  const torch::Tensor x0 = boxes.select(2, 0), y0 = boxes.select(2, 1);
  const torch::Tensor x1 = boxes.select(2, 2), y1 = boxes.select(2, 3);
  GraphMaskInput masks_input;
  masks_input.center_x = (x0 + x1) * 0.5f * to_mask_cells;
  masks_input.center_y = (y0 + y1) * 0.5f * to_mask_cells;
  masks_input.width = torch::relu(x1 - x0) * to_mask_cells;
  masks_input.height = torch::relu(y1 - y0) * to_mask_cells;
  if (shape_output_) {
    const std::int64_t channels = detections.gathered[0].size(2), s = options_.shape_size;
    masks_input.shape_logits =
        (torch::matmul(detections.gathered[0], shape_output_->weight.view({s * s, channels}).t()) +
         shape_output_->bias)
            .view({n, k, s, s});
  }
  masks_input.saliency_logits = o.saliency_logits;
  masks_input.class_id = detections.classes;
  masks_input.map_height = o.mask_height;
  masks_input.map_width = o.mask_width;
  masks_input.mask_threshold = options.mask_threshold;
  masks_input.mask_size = mask_size;
  masks_input.mask_stride = options_.saliency_stride;
  const GraphMasks masks = assemble_masks_in_graph(masks_input);

  // Kept: NMS's detections at or above the score threshold.
  const torch::Tensor valid = detections.kept & (detections.scores >= options.score_threshold);
  return ranked_mask_detections(boxes, detections.scores, detections.classes, valid, masks,
                                options.mask_quality_scoring);
}

}  // namespace centermask
