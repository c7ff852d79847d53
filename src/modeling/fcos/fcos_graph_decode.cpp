// FCOS's decoding as whole-tensor operations; see decode_fcos_boxes_in_graph in fcos_boxes.h.

#include <algorithm>

#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/graph_masks.h"
#include "modeling/ops/graph_nms.h"

namespace centermask {

namespace {

// (N, C, H, W) at `location` (N, K) of y·W + x: (N, K, C).
torch::Tensor at_locations_of(const torch::Tensor& map, const torch::Tensor& location) {
  const std::int64_t n = map.size(0), c = map.size(1), k = location.size(1);
  return map.reshape({n, c, -1})
      .gather(2, location.unsqueeze(1).expand({n, c, k}))
      .permute({0, 2, 1});
}

}  // namespace

GraphFcosDetections decode_fcos_boxes_in_graph(
    const FcosHeadOutputs& outputs, const std::vector<int>& strides,
    const FcosDecodeOptions& options, int num_classes,
    const std::vector<std::vector<torch::Tensor>>& at_locations) {
  std::vector<torch::Tensor> boxes, scores, classes, centers, level_strides;
  std::vector<std::vector<torch::Tensor>> gathered(at_locations.size());
  for (std::size_t level = 0; level < strides.size(); ++level) {
    const torch::Tensor probability =
        torch::sigmoid(outputs.class_logits[level].to(torch::kFloat32));
    const torch::Tensor centerness =
        torch::sigmoid(outputs.centerness_logits[level].to(torch::kFloat32));
    const std::int64_t n = probability.size(0), c = probability.size(1);
    const std::int64_t h = probability.size(2), w = probability.size(3);
    // Candidates: class probability above the threshold, ranked by probability × centerness;
    // the others rank −1 and stay marked through the top-k.
    const torch::Tensor rank = torch::where(probability > options.score_threshold,
                                            probability * centerness, torch::full({}, -1.0f));
    const std::int64_t keep = std::min<std::int64_t>(std::max(0, options.top_per_level), c * h * w);
    const auto [best, index] = rank.reshape({n, -1}).topk(keep, 1);
    const torch::Tensor class_id = torch::div(index, h * w, "floor");
    const torch::Tensor location = index - class_id * (h * w);
    const torch::Tensor row = torch::div(location, w, "floor");
    const torch::Tensor column = location - row * w;
    const std::int64_t stride = strides[level];
    const torch::Tensor x = (column * stride + stride / 2).to(torch::kFloat32);
    const torch::Tensor y = (row * stride + stride / 2).to(torch::kFloat32);
    const torch::Tensor distance =
        at_locations_of(outputs.regression[level].to(torch::kFloat32), location) *
        static_cast<float>(stride);  // (N, K, 4)
    centers.push_back(torch::stack({x, y}, 2));
    level_strides.push_back(torch::full(x.sizes(), static_cast<float>(stride)));
    boxes.push_back(torch::stack({x - distance.select(2, 0), y - distance.select(2, 1),
                                  x + distance.select(2, 2), y + distance.select(2, 3)},
                                 2));
    torch::Tensor score;
    if (options.score == FcosScore::kSqrtClassTimesCenterness) {
      score = torch::sqrt(torch::clamp_min(best, 0));
    } else {
      const torch::Tensor p = probability.reshape({n, -1}).gather(1, index);
      const torch::Tensor ctr = centerness.reshape({n, -1}).gather(1, location);
      score = p * (ctr + 0.5);
    }
    scores.push_back(torch::where(best > 0, score, torch::full({}, -1.0f)));
    classes.push_back(class_id);
    for (std::size_t m = 0; m < at_locations.size(); ++m)
      gathered[m].push_back(at_locations_of(at_locations[m][level], location));
  }
  const torch::Tensor all_boxes = torch::cat(boxes, 1);
  const torch::Tensor all_scores = torch::cat(scores, 1);
  const torch::Tensor all_classes = torch::cat(classes, 1);
  const torch::Tensor kept =
      classwise_nms_kept(all_boxes, all_scores, all_classes, options.nms_iou, num_classes);
  const std::int64_t k =
      std::min<std::int64_t>(std::max(1, options.max_detections), all_scores.size(1));
  const auto [top, order] = torch::where(kept, all_scores, torch::full({}, -1.0f)).topk(k, 1);
  GraphFcosDetections out;
  out.boxes = gather_rows(all_boxes, order);
  out.scores = top;
  out.classes = gather_rows(all_classes, order);
  out.kept = top > 0;
  out.centers = gather_rows(torch::cat(centers, 1), order);
  out.strides = gather_rows(torch::cat(level_strides, 1), order);
  for (const std::vector<torch::Tensor>& per_level : gathered)
    out.gathered.push_back(gather_rows(torch::cat(per_level, 1), order));
  return out;
}

}  // namespace centermask
