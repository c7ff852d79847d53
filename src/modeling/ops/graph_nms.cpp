// Class-wise NMS as a dispatcher operation; see graph_nms.h.

#include "modeling/ops/graph_nms.h"

#include <torch/library.h>

#include <vector>

#include "modeling/ops/nms.h"

namespace centermask {

namespace {

torch::Tensor classwise_nms_cpu(const torch::Tensor& boxes, const torch::Tensor& scores,
                                const torch::Tensor& classes, double iou_threshold,
                                std::int64_t /*num_classes: for the ONNX translation*/) {
  const torch::Tensor box = boxes.to(torch::kFloat32).contiguous();
  const torch::Tensor score = scores.to(torch::kFloat32).contiguous();
  const torch::Tensor label = classes.to(torch::kInt64).contiguous();
  const std::int64_t n = box.size(0), b = box.size(1);
  torch::Tensor kept = torch::zeros({n, b}, torch::kBool);
  auto kept_at = kept.accessor<bool, 2>();
  const auto box_at = box.accessor<float, 3>();
  const auto score_at = score.accessor<float, 2>();
  const auto label_at = label.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<BoxXYXY> candidates;
    std::vector<float> candidate_scores;
    std::vector<std::int64_t> candidate_classes, index;
    for (std::int64_t j = 0; j < b; ++j) {
      if (!(score_at[i][j] > 0)) continue;
      candidates.push_back({box_at[i][j][0], box_at[i][j][1], box_at[i][j][2], box_at[i][j][3]});
      candidate_scores.push_back(score_at[i][j]);
      candidate_classes.push_back(label_at[i][j]);
      index.push_back(j);
    }
    for (const std::int64_t k :
         box_nms(candidates, candidate_scores, iou_threshold, candidate_classes))
      kept_at[i][index[static_cast<std::size_t>(k)]] = true;
  }
  return kept;
}

}  // namespace

TORCH_LIBRARY(centermask_export, m) {
  m.def(
      "classwise_nms(Tensor boxes, Tensor scores, Tensor classes, float iou_threshold, "
      "int num_classes) -> Tensor");
}

TORCH_LIBRARY_IMPL(centermask_export, CPU, m) { m.impl("classwise_nms", classwise_nms_cpu); }

torch::Tensor classwise_nms_kept(const torch::Tensor& boxes, const torch::Tensor& scores,
                                 const torch::Tensor& classes, double iou_threshold,
                                 std::int64_t num_classes) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(kClasswiseNmsOperator, "")
                             .typed<torch::Tensor(const torch::Tensor&, const torch::Tensor&,
                                                  const torch::Tensor&, double, std::int64_t)>();
  const torch::Device device = boxes.device();
  return op
      .call(boxes.to(torch::kCPU), scores.to(torch::kCPU), classes.to(torch::kCPU), iou_threshold,
            num_classes)
      .to(device);
}

}  // namespace centermask
