// PolarMask's decoding as tensor operations of fixed shapes, for exported graphs (`centermask
// export --postprocess on`): what predict() (polarmask_inference.cpp) keeps — FCOS's
// candidates and NMS from decode_fcos_boxes_in_graph, each detection's rays as its polygon.
// The deploy side fills the polygons (include/centermask/deploy/exported_detections.h).

#include <cmath>
#include <vector>

#include "centermask/modeling/methods/polarmask/polarmask.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/graph_masks.h"

namespace centermask {

std::vector<std::pair<std::string, torch::Tensor>> PolarMaskImpl::decoded_outputs(
    const MethodOutputs& method_outputs, const PredictOptions& options, int /*mask_size*/) const {
  const PolarMaskOutputs& o =
      method_cast<PolarMaskMethodOutputs>(method_outputs, "PolarMask").outputs;
  PolarMaskInferenceOptions inference;
  apply_predict_options(options, &inference);
  const GraphFcosDetections detections = decode_fcos_boxes_in_graph(
      o.fcos, o.strides, fcos_decode_options(inference, FcosScore::kClassTimesCenternessPlusHalf),
      num_classes(), {o.rays});
  // polygon_from_rays: ray k at angle 2πk/n, x along its sine and y along its cosine.
  const int n = options_.num_rays;
  std::vector<float> sine(static_cast<std::size_t>(n)), cosine(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    const double theta = 2 * M_PI / n * k;
    sine[static_cast<std::size_t>(k)] = static_cast<float>(std::sin(theta));
    cosine[static_cast<std::size_t>(k)] = static_cast<float>(std::cos(theta));
  }
  const torch::Tensor lengths =
      detections.gathered[0].to(torch::kFloat32) * detections.strides.unsqueeze(2);  // (N, K, n)
  const torch::Tensor x = detections.centers.select(2, 0).unsqueeze(2);
  const torch::Tensor y = detections.centers.select(2, 1).unsqueeze(2);
  const std::int64_t input_w = o.fcos.class_logits[0].size(3) * o.strides[0];
  const std::int64_t input_h = o.fcos.class_logits[0].size(2) * o.strides[0];
  // Clamped to the input, as predict clamps before mapping to the original image.
  const torch::Tensor px =
      torch::clamp(x + lengths * torch::tensor(sine).view({1, 1, n}), 0, input_w - 1);
  const torch::Tensor py =
      torch::clamp(y + lengths * torch::tensor(cosine).view({1, 1, n}), 0, input_h - 1);
  const torch::Tensor valid = detections.kept & (detections.scores >= options.score_threshold);
  return {{"boxes", detections.boxes},
          {"scores", torch::where(valid, detections.scores, torch::full({}, 0.0f))},
          {"classes", detections.classes},
          {"polygons", torch::stack({px, py}, 3)},
          {"count", valid.sum(1)}};
}

}  // namespace centermask
