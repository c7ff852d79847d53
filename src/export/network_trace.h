#pragma once
// A network's inference as a TorchScript graph: LibTorch's tracer records the ATen operations
// that one forward pass of the model (eval mode, no autograd, the inference form: BatchNorm
// folded, upsampling as convolution + pixel shuffle) runs on an example batch, with the raw
// maps of the method as the outputs. The weights enter as constants. What the ONNX writer
// translates and the TorchScript writer saves.

#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "centermask/modeling/meta_arch.h"

namespace centermask {

struct TracedNetwork {
  std::shared_ptr<torch::jit::Graph> graph;  ///< one input (images), one output per raw map
  std::vector<std::string> output_names;     ///< the method's raw maps' or detections' names
  /// The maps the model computed on the example, for checks.
  std::vector<torch::Tensor> example_outputs;
};

/// What the traced graph outputs: the raw maps, or with `decode` the method's decoding
/// (MetaArchitectureImpl::decoded_outputs) with these settings.
struct TraceOutputs {
  bool decode = false;
  PredictOptions predict;
  int mask_size = 56;  ///< as ExportOptions::mask_size
};

/// Traces `model` (its mode and autograd state restored after) on `example` (N, 3, H, W).
/// InputError when the method has no raw maps, or no decoding, to export.
TracedNetwork trace_network(MetaArchitectureImpl& model, const torch::Tensor& example,
                            const TraceOutputs& outputs);

}  // namespace centermask
