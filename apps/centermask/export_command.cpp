// `centermask export`: a trained network as ONNX or TorchScript, for deploy runtimes that do
// not run our program (ONNX Runtime, OpenCV DNN, TensorRT, OpenVINO, torch::jit::load).

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include "centermask/common/json_writer.h"
#include "centermask/data/transforms.h"
#include "centermask/engine/inference.h"
#include "centermask/export/network_export.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct ExportCommandOptions {
  std::string weights;
  std::string config;  ///< instead of weights: the model of a config, untrained
  int classes = 80;
  std::string out;
  std::string format = "onnx";
  int input_size = 0;  ///< 0 = the model's test.input_size
  int batch = 1;
  int opset = 17;
  std::string postprocess = "on";
  int mask_size = 56;
  std::string dtype = "fp32";
  bool dynamic = false;
};

// What a deploy program needs besides the graph to use it: the classes, how to prepare the
// input, what the outputs are and the model's test settings.
ExportMetadata metadata_of(Predictor& predictor, int side) {
  ExportMetadata metadata;
  const TrainConfig& config = predictor.config();
  std::string text;
  {
    json::Writer w(text);
    w.begin_array();
    for (const std::string& name : predictor.class_names()) w.value(name);
    w.end_array();
  }
  metadata["class_names"] = text;
  metadata["method"] = config.model.meta_arch;
  metadata["model"] = predictor.description();
  const PixelNormalization normalization;
  metadata["input"] = fmt::format(
      "images (N, 3, {0}, {0}) float32: BGR / 255, minus mean_bgr, divided by std_bgr, planar; "
      "an image fitted into {0} x {0} keeping its aspect ratio, centered (CenterNet's test "
      "transform)",
      side);
  metadata["mean_bgr"] = fmt::format("[{}, {}, {}]", normalization.mean_bgr[0],
                                     normalization.mean_bgr[1], normalization.mean_bgr[2]);
  metadata["std_bgr"] = fmt::format("[{}, {}, {}]", normalization.std_bgr[0],
                                    normalization.std_bgr[1], normalization.std_bgr[2]);
  metadata["test.top_k"] = std::to_string(config.test.top_k);
  metadata["test.score_threshold"] = fmt::format("{}", config.test.score_threshold);
  metadata["test.mask_threshold"] = fmt::format("{}", config.test.mask_threshold);
  metadata["test.mask_quality_scoring"] = config.test.mask_quality_scoring ? "true" : "false";
  return metadata;
}

int run_export(const ExportCommandOptions& o) {
  ExportOptions options;
  if (o.format == "onnx") {
    options.format = ExportFormat::kOnnx;
  } else if (o.format == "torchscript") {
    options.format = ExportFormat::kTorchScript;
  } else {
    throw InputError(fmt::format("--format: expected onnx or torchscript, got '{}'", o.format));
  }
  if (o.postprocess != "on" && o.postprocess != "off")
    throw InputError(fmt::format("--postprocess: expected on or off, got '{}'", o.postprocess));
  options.postprocess = o.postprocess == "on";
  if (o.dtype != "fp32" && o.dtype != "fp16")
    throw InputError(fmt::format("--dtype: expected fp32 or fp16, got '{}'", o.dtype));
  options.dtype = o.dtype == "fp16" ? ExportDtype::kFloat16 : ExportDtype::kFloat32;
  options.mask_size = o.mask_size;
  if (o.weights.empty() == o.config.empty())
    throw InputError("give --weights (a trained checkpoint) or --config (untrained weights)");
  Predictor predictor = o.weights.empty()
                            ? Predictor::untrained(load_train_config(o.config), {}, {}, o.classes)
                            : Predictor(o.weights);
  const int side = o.input_size > 0 ? o.input_size : predictor.config().test.input_size;
  options.input_height = options.input_width = side;
  options.batch = o.batch;
  options.dynamic = o.dynamic;
  options.opset = o.opset;
  options.predict = predict_options(predictor.config().test);
  ExportMetadata metadata = metadata_of(predictor, side);
  if (options.postprocess) {
    metadata["postprocess"] = fmt::format(
        "on: final detections, test.top_k rows per image, valid rows first (count); boxes and "
        "mask_boxes in input pixels; masks {0} x {0} probabilities over their mask_boxes{1}",
        options.mask_size,
        predictor.config().test.flip_test ? "; without the flip test (the graph runs one pass)"
                                          : "");
  } else {
    metadata["postprocess"] = "off: the raw maps";
  }
  const ExportReport report = export_network(predictor.model(), o.out, options, metadata);
  std::printf("%s: %s of %s, input %s (1, 3, %d, %d) -> %zu outputs, %lld operations\n",
              o.out.c_str(), o.format.c_str(), predictor.description().c_str(),
              report.input_name.c_str(), side, side, report.output_names.size(),
              static_cast<long long>(report.nodes));
  for (std::size_t i = 0; i < report.output_names.size(); ++i)
    std::printf("  %-24s %s\n", report.output_names[i].c_str(),
                fmt::format("{}", fmt::join(report.output_shapes[i], " x ")).c_str());
  return 0;
}

}  // namespace

CommandRunner add_export_command(CLI::App& app) {
  auto options = std::make_shared<ExportCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "write a trained network as ONNX (ONNX Runtime, OpenCV DNN, TensorRT, OpenVINO) or "
      "TorchScript (torch::jit::load, torch.jit.load): its raw maps, BatchNorm folded");
  cmd->add_option("--weights", options->weights, "checkpoint (model_final.pt or last.pt)");
  cmd->add_option("--config", options->config,
                  "a training config instead of --weights: its model, untrained (benchmarks)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--classes", options->classes,
                  "classes of an untrained model whose config leaves model.num_classes to the data")
      ->capture_default_str();
  cmd->add_option("--out", options->out, "the file to write (model.onnx, model.pt)")->required();
  cmd->add_option("--format", options->format, "onnx or torchscript")->capture_default_str();
  cmd->add_option("--input-size", options->input_size,
                  "the fixed input side (a multiple of the model's size divisor; default: the "
                  "model's test.input_size)");
  cmd->add_option("--batch", options->batch, "the batch size (fixed unless --dynamic)")
      ->capture_default_str();
  cmd->add_flag("--dynamic", options->dynamic,
                "ONNX with the batch and the sides free (multiples of the size divisor); "
                "the graph must not hold its traced size (--postprocess off holds none for the "
                "ResNet and DLA models)");
  cmd->add_option("--opset", options->opset, "ONNX opset (13 to 17)")->capture_default_str();
  cmd->add_option("--dtype", options->dtype,
                  "fp32, or fp16 (ONNX: weights and arithmetic in float16, input and outputs "
                  "float32; for GPUs and accelerators)")
      ->capture_default_str();
  cmd->add_option("--postprocess", options->postprocess,
                  "on: final detections (boxes, scores, classes, masks, count), decoded in the "
                  "graph with the model's test settings; off: the raw maps")
      ->capture_default_str();
  cmd->add_option("--mask-size", options->mask_size,
                  "with --postprocess on: the side M of each detection's M x M mask over its "
                  "mask box; pasting resamples it, so a larger M follows large masks more "
                  "closely")
      ->capture_default_str();
  return [options]() { return run_export(*options); };
}

}  // namespace centermask::cli
