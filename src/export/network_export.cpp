// Exporting a network; see network_export.h.

#include "centermask/export/network_export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstdlib>
#include <iostream>
#include <optional>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/modeling/meta_arch.h"
#include "export/network_trace.h"
#include "export/onnx_writer.h"
#include "modeling/ops/graph_nms.h"

namespace centermask {

namespace {

void check_options(const MetaArchitectureImpl& model, const std::filesystem::path& out,
                   const ExportOptions& options) {
  const int divisor = model.size_divisor();
  for (const auto& [name, side] : {std::pair<const char*, int>{"height", options.input_height},
                                   {"width", options.input_width}})
    if (side <= 0 || side % divisor != 0)
      throw InputError(fmt::format(
          "--input-size: the input {} is {}; {} takes sides that are positive multiples of {}",
          name, side, model.method_name(), divisor));
  if (options.batch < 1)
    throw InputError(fmt::format("--batch: must be ≥ 1, got {}", options.batch));
  if (options.format == ExportFormat::kOnnx && (options.opset < 13 || options.opset > 17))
    throw InputError(fmt::format(
        "--opset: {} is not one this exporter writes (13 to 17; Debian's ONNX 1.12 knows up "
        "to 17)",
        options.opset));
  if (options.postprocess && (options.mask_size < 1 || options.mask_size > 512))
    throw InputError(
        fmt::format("--mask-size: the masks' side must be 1 to 512, got {}", options.mask_size));
  if (options.postprocess && options.predict.top_k < 1)
    throw InputError(fmt::format("test.top_k: must be ≥ 1, got {}", options.predict.top_k));
  if (options.dynamic && options.format == ExportFormat::kTorchScript)
    throw InputError(
        "--dynamic: a TorchScript module is traced at one size; export ONNX for a graph whose "
        "batch and sides are free");
  if (options.dtype == ExportDtype::kFloat16 && options.format == ExportFormat::kTorchScript)
    throw InputError(
        "--dtype fp16: float16 is written for ONNX; a TorchScript module is float32 (in "
        "LibTorch, module.to(torch::kHalf) on a GPU gives its float16 form)");
  const std::filesystem::path folder =
      out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  if (!std::filesystem::is_directory(folder))
    throw InputError(
        fmt::format("--out {}: the folder {} does not exist", out.string(), folder.string()));
}

// The traced graph as a TorchScript module whose forward(images) returns the raw maps as a
// tuple in the report's order, the metadata as extra files.
void write_torchscript(const TracedNetwork& traced, const std::filesystem::path& out,
                       const ExportMetadata& metadata) {
  for (const torch::jit::Node* node : traced.graph->nodes())
    if (node->kind().toQualString() == std::string(kClasswiseNmsOperator))
      throw InputError(
          "--format torchscript --postprocess on: this method's decoding holds class-wise NMS, "
          "an operation of this library that torch::jit::load cannot run without it; export "
          "ONNX (NonMaxSuppression), or TorchScript with --postprocess off");
  torch::jit::Module module("CenterMaskExport");
  std::shared_ptr<torch::jit::Graph> graph = traced.graph->copy();
  torch::jit::Value* self = graph->insertInput(0, "self");
  self->setType(module._ivalue()->type());
  // TorchScript keeps tensors as module state, not as constants in code: each weight becomes
  // a buffer read with GetAttr.
  int weights = 0;
  for (auto it = graph->nodes().begin(); it != graph->nodes().end();) {
    torch::jit::Node* node = *it++;
    if (node->kind() != c10::prim::Constant ||
        !node->output()->type()->isSubtypeOf(*c10::TensorType::get()))
      continue;
    const std::string name = fmt::format("weight_{}", weights++);
    module.register_buffer(name, torch::jit::toIValue(node->output())->toTensor());
    torch::jit::WithInsertPoint here(node);
    node->output()->replaceAllUsesWith(graph->insertGetAttr(self, name));
    node->destroy();
  }
  std::vector<torch::jit::Value*> outputs(graph->outputs().begin(), graph->outputs().end());
  while (!graph->outputs().empty()) graph->eraseOutput(0);
  torch::jit::Node* tuple = graph->insertNode(graph->createTuple(outputs));
  graph->registerOutput(tuple->output());
  auto* function = module._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*module.type()->name(), "forward"), graph);
  module.type()->addMethod(function);
  torch::jit::ExtraFilesMap extra;
  for (const auto& [key, value] : metadata) extra["centermask/" + key] = value;
  const std::filesystem::path temporary = out.string() + ".tmp";
  try {
    module.save(temporary.string(), extra);
  } catch (const c10::Error& e) {
    std::filesystem::remove(temporary);
    throw InputError(fmt::format("{}: cannot write the TorchScript module: {}", out.string(),
                                 e.what_without_backtrace()));
  }
  std::filesystem::rename(temporary, out);
}

}  // namespace

bool onnx_export_available() { return onnx_writer_available(); }

ExportReport export_network(MetaArchitectureImpl& model, const std::filesystem::path& out,
                            const ExportOptions& options, const ExportMetadata& given_metadata) {
  check_options(model, out, options);
  const torch::Tensor example =
      torch::zeros({options.batch, 3, options.input_height, options.input_width});
  TraceOutputs wanted;
  wanted.decode = options.postprocess;
  wanted.predict = options.predict;
  wanted.mask_size = options.mask_size;
  const TracedNetwork traced = trace_network(model, example, wanted);
  if (std::getenv("CENTERMASK_EXPORT_DUMP_GRAPH") != nullptr) std::cerr << *traced.graph;

  ExportReport report;
  report.input_name = "images";
  report.input_shape = {options.batch, 3, options.input_height, options.input_width};
  report.output_names = traced.output_names;
  for (const torch::Tensor& map : traced.example_outputs)
    report.output_shapes.push_back(map.sizes().vec());
  ExportMetadata metadata = given_metadata;
  std::string outputs;
  for (std::size_t i = 0; i < report.output_names.size(); ++i)
    outputs += fmt::format("{}{} {}", i == 0 ? "" : "; ", report.output_names[i],
                           fmt::join(report.output_shapes[i], "x"));
  metadata["outputs"] = outputs;
  if (options.dynamic)
    metadata["input_sizes"] =
        fmt::format("dynamic: any batch, sides multiples of {} (traced at {} x {})",
                    model.size_divisor(), options.input_height, options.input_width);
  metadata["dtype"] = options.dtype == ExportDtype::kFloat16
                          ? "float16 inside, float32 input and outputs"
                          : "float32";
  for (const torch::jit::Node* node : traced.graph->nodes())
    if (node->kind() != c10::prim::Constant) report.op_counts[node->kind().toQualString()] += 1;
  if (options.format == ExportFormat::kTorchScript) {
    write_torchscript(traced, out, metadata);
  } else {
    OnnxWriteOptions onnx_options;
    onnx_options.opset = options.opset;
    onnx_options.float16 = options.dtype == ExportDtype::kFloat16;
    onnx_options.postprocess = options.postprocess;
    std::optional<TracedNetwork> other_size;
    if (options.dynamic) {
      // The same network traced at another batch and size: what differs between the two
      // graphs holds the traced size (write_onnx).
      const int divisor = model.size_divisor();
      other_size = trace_network(model,
                                 torch::zeros({options.batch + 1, 3, options.input_height + divisor,
                                               options.input_width + 2 * divisor}),
                                 wanted);
      onnx_options.other_size = &*other_size;
    }
    report.op_counts = write_onnx(traced, out, onnx_options, metadata);
  }
  report.nodes = 0;
  for (const auto& [op, count] : report.op_counts) report.nodes += count;
  return report;
}

}  // namespace centermask
