#pragma once
// Class-wise NMS as one operation that a traced graph can hold: the exported decoding of the
// FCOS-family methods (MetaArchitectureImpl::decoded_outputs) calls it, the tracer records it
// as `centermask_export::classwise_nms`, and the ONNX writer turns it into ONNX's
// NonMaxSuppression (export/onnx_writer.cpp). It is ours, not LibTorch's: a TorchScript file
// holding it needs this library, so TorchScript export refuses it.

#include <torch/torch.h>

namespace centermask {

/// The kernel's name in LibTorch's dispatcher (and in traced graphs).
inline constexpr const char* kClasswiseNmsOperator = "centermask_export::classwise_nms";

/// boxes (N, B, 4) x0 y0 x1 y1, scores (N, B) — a score ≤ 0 is no candidate — and classes
/// (N, B) int64 in [0, num_classes): (N, B) bool, true for the boxes box_nms keeps in each
/// image (class-wise, IoU above `iou_threshold` suppresses).
torch::Tensor classwise_nms_kept(const torch::Tensor& boxes, const torch::Tensor& scores,
                                 const torch::Tensor& classes, double iou_threshold,
                                 std::int64_t num_classes);

}  // namespace centermask
