#pragma once
// A trained network leaving for a deploy runtime: ONNX (ONNX Runtime, OpenCV DNN, TensorRT,
// OpenVINO) or TorchScript (torch::jit::load in C++, torch.jit.load in Python), with no code of
// ours needed to run it. The graph is the network's inference form — BatchNorm folded,
// transposed-convolution upsampling as convolution + DepthToSpace — traced from the model
// itself, so it computes what `centermask predict` computes. Its outputs are final detections
// (the method's decoding in the graph, MetaArchitectureImpl::decoded_outputs), or with
// postprocess off the method's raw maps (MetaArchitectureImpl::raw_maps) for users who decode
// themselves.
//
//   ExportOptions options;
//   options.format = ExportFormat::kOnnx;
//   options.input_height = options.input_width = 512;
//   const ExportReport report = export_network(predictor.model(), "model.onnx", options, meta);

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "centermask/modeling/predict_options.h"

namespace centermask {

class MetaArchitectureImpl;

enum class ExportFormat { kOnnx, kTorchScript };

/// The type the exported graph computes in. Float16 halves the file and suits GPUs and
/// accelerators (TensorRT, OpenVINO on GPU); the input and outputs stay float32 either way.
enum class ExportDtype { kFloat32, kFloat16 };

struct ExportOptions {
  ExportFormat format = ExportFormat::kOnnx;
  int batch = 1;           ///< the batch size traced with
  int input_height = 512;  ///< the sides traced with, multiples of the model's size divisor
  int input_width = 512;
  /// ONNX only: batch, height and width free in the graph (sides still multiples of the size
  /// divisor). The network is traced at two sizes and the graphs compared; a graph that holds
  /// its traced size (the decoding's coordinate grids do) is refused with the operation named.
  bool dynamic = false;
  int opset = 17;                             ///< ONNX opset the graph is written for (13 to 17)
  ExportDtype dtype = ExportDtype::kFloat32;  ///< float16: ONNX only
  /// The decoding inside the graph (final detections, the method's decoded_outputs) rather
  /// than the raw maps. Needs opset 16 (GridSample) where the method resamples masks.
  bool postprocess = true;
  int mask_size = 56;  ///< M of the M×M masks, with postprocess
  /// The test settings decoded with (top_k, thresholds, mask-quality scoring).
  PredictOptions predict;
};

/// What a file holds besides the graph: written into ONNX's metadata_props (and TorchScript's
/// extra files): class names, test settings, the input's normalisation.
using ExportMetadata = std::map<std::string, std::string>;

struct ExportReport {
  std::string input_name;  ///< "images": (N, 3, H, W) normalised float32
  std::vector<int64_t> input_shape;
  std::vector<std::string> output_names;  ///< the raw maps, in the method's order
  std::vector<std::vector<int64_t>> output_shapes;
  std::int64_t nodes = 0;                ///< operations in the written graph
  std::map<std::string, int> op_counts;  ///< per operator type
};

/// Traces `model` on a zero batch of the options' shape and writes the graph to `out` (a
/// temporary file renamed into place: nothing half-written). InputError for a size that is not
/// a multiple of the size divisor, an opset out of range, a folder that does not exist, a
/// method without an export, or an operation the format cannot express (named, with the
/// layer's operation and the opset).
ExportReport export_network(MetaArchitectureImpl& model, const std::filesystem::path& out,
                            const ExportOptions& options, const ExportMetadata& metadata);

/// Whether this build writes ONNX (built with Debian's libonnx-dev).
bool onnx_export_available();

}  // namespace centermask
