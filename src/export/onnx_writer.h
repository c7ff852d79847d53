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

/// Writes `traced` to `out` (temporary file + rename) and returns the count of each ONNX
/// operator written. InputError naming the ATen operation (and the opset) that has no
/// translation, or the checker's message.
std::map<std::string, int> write_onnx(const TracedNetwork& traced, const std::filesystem::path& out,
                                      int opset, const ExportMetadata& metadata);

/// Whether this build has the ONNX writer (libonnx-dev at build time).
bool onnx_writer_available();

}  // namespace centermask
