#pragma once
// A traced network (network_trace.h) as an ONNX model: each ATen operation of the graph
// translated into the ONNX operators of the chosen opset, the weights as initializers, then
// ONNX's checker and shape inference run on the result before it is written. Values that do
// not depend on the input (sizes, folded weights) are computed here and enter as constants.

#include <filesystem>
#include <map>
#include <string>

#include "centermask/export/network_export.h"
#include "export/network_trace.h"

namespace centermask {

struct OnnxWriteOptions {
  int opset = 17;
  /// The graph computes in float16 between a float32 input and float32 outputs (weights
  /// stored as float16).
  bool float16 = false;
  /// With a second trace of the same network at another batch and size: a graph whose
  /// batch, height and width are free (dim_param), or InputError naming the first operation
  /// or constant that differs between the two traces (what holds the traced size).
  const TracedNetwork* other_size = nullptr;
  bool postprocess = false;  ///< for the message: the decoding is traced too
};

/// Writes `traced` to `out` (temporary file + rename) and returns the count of each ONNX
/// operator written. InputError naming the ATen operation (and the opset) that has no
/// translation, or the checker's message.
std::map<std::string, int> write_onnx(const TracedNetwork& traced, const std::filesystem::path& out,
                                      const OnnxWriteOptions& options,
                                      const ExportMetadata& metadata);

/// Whether this build has the ONNX writer (libonnx-dev at build time).
bool onnx_writer_available();

}  // namespace centermask
