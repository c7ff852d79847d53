// `centermask bench`: how fast a model runs, stage by stage, as a user would run it — one
// picture preprocessed (warp + normalise), the network, the method's decoding (peaks or
// candidates, NMS where it has one) and mask assembly into original-image pixels. Prints the
// median and min–max of every stage, model-only and end-to-end FPS side by side, and the peak
// memory; --json prints the same as one object. Any method, any backbone: from a config
// (--config, --meta-arch, --backbone, --set) with untrained weights, or from a checkpoint
// (--weights) whose trained heads give realistic detections to decode and assemble.

#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"
#include "centermask/common/stage_timer.h"
#include "centermask/data/image_io.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/data/transforms.h"
#include "centermask/engine/config.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/modeling/inference_form.h"
#include "centermask/modeling/method_registry.h"
#include "commands.h"

namespace centermask::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string config_path;
  std::string meta_arch;
  std::string backbone;
  std::vector<std::string> overrides;
  std::string weights;
  std::string image;
  int classes = 80;
  int size = 512;
  int batch = 1;
  int threads = 0;
  std::string device = "cpu";
  int iters = 20;
  int warmup = 3;
  std::string dtype = "fp32";
  bool json = false;
  std::string fold = "on";
  std::string memory_format = "auto";
};

double ms_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

struct Summary {
  double median = 0, min = 0, max = 0;
};

Summary summarise(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  s.median = n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
  s.min = values.front();
  s.max = values.back();
  return s;
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

struct BenchModel {
  std::unique_ptr<Predictor> predictor;
  std::string origin;  ///< "untrained (configs/x.yaml)" or the checkpoint's path
};

BenchModel build_bench_model(const BenchOptions& o, const PredictorOptions& options) {
  BenchModel built;
  if (!o.weights.empty()) {
    if (!o.config_path.empty() || !o.meta_arch.empty() || !o.backbone.empty() ||
        !o.overrides.empty())
      throw InputError(
          "--weights: the checkpoint carries its own config; drop --config, --meta-arch, "
          "--backbone and --set");
    built.predictor = std::make_unique<Predictor>(o.weights, options);
    built.origin = o.weights + " (trained)";
    return built;
  }
  // No data is read: the required data keys get placeholders when the config has none.
  std::vector<std::string> overrides;
  if (o.config_path.empty())
    overrides = {"data.train_json=<not read by bench>", "data.train_images=<not read by bench>"};
  if (!o.meta_arch.empty()) overrides.push_back("model.meta_arch=" + o.meta_arch);
  if (!o.backbone.empty()) overrides.push_back("model.backbone=" + o.backbone);
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  TrainConfig config = o.config_path.empty() ? parse_train_config("", "<default config>", overrides)
                                             : load_train_config(o.config_path, overrides);
  // A config's class count is its dataset's (0 = taken from the data): untrained, the
  // network is built for --classes, COCO's 80 unless said otherwise.
  const int classes = config.model.num_classes > 0 ? config.model.num_classes : o.classes;
  built.predictor = std::make_unique<Predictor>(Predictor::untrained(config, {}, options, classes));
  built.origin =
      "untrained, " + (o.config_path.empty() ? std::string("default config") : o.config_path);
  return built;
}

std::string backbone_description(const ModelConfig& model) {
  return fmt::format("{} (width {})", model.backbone, model.backbone_width);
}

int run_bench(const BenchOptions& o) {
  if (o.iters < 1) throw InputError("--iters must be at least 1");
  if (o.batch < 1) throw InputError("--batch must be at least 1");
  const int threads = configure_runtime(o.threads);
  set_inference_folding(o.fold == "on");
  const torch::Device device = resolve_device(o.device);
  const InferencePrecision precision = parse_inference_precision(o.dtype, device);
  const cv::Mat picture = [&] {
    if (!o.image.empty()) return read_image_bgr(o.image);
    // A COCO-sized 640×480 picture of the synthetic set's objects, so the warp is real work.
    SyntheticDatasetOptions synth;
    synth.image_size = 640;
    const cv::Mat square = render_synthetic_image(synth, 1, 0).image;
    return square(cv::Rect(0, 80, 640, 480)).clone();
  }();
  const double rss_at_start = peak_rss_mib();
  if (o.size <= 0 || o.size % 32 != 0)
    throw InputError(
        fmt::format("--size {}: needs an input side that is a positive multiple of "
                    "32 (e.g. {})",
                    o.size, std::max(1, (o.size + 16) / 32) * 32));
  const bool channels_last =
      use_channels_last(parse_memory_format(o.memory_format, "--memory-format"), precision, device);
  PredictorOptions options;
  options.device = o.device;
  options.dtype = o.dtype;
  options.memory_format = o.memory_format;
  options.input_size = o.size;
  BenchModel built = build_bench_model(o, options);
  Predictor& predictor = *built.predictor;
  MetaArchitectureImpl& model = predictor.model();
  if (o.size % model.size_divisor() != 0)
    throw InputError(
        fmt::format("--size {}: {} needs an input side that is a positive multiple of {} (e.g. {})",
                    o.size, model.method_name(), model.size_divisor(),
                    std::max(1, (o.size + model.size_divisor() / 2) / model.size_divisor()) *
                        model.size_divisor()));
  const TrainConfig& config = predictor.config();
  std::int64_t parameters = 0;
  for (const torch::Tensor& p : model.parameters()) parameters += p.numel();

  const std::function<void()> synchronize = [device] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  const std::vector<cv::Mat> batch(static_cast<std::size_t>(o.batch), picture);
  // The network's own stages: what "model-only" times.
  const auto is_network_stage = [](const std::string& name) {
    return name == "backbone" || name == "heads";
  };

  std::map<std::string, std::vector<double>> stage_ms;
  std::vector<std::string> stage_order;  // as the stages were first entered
  std::vector<double> model_ms, end_to_end_ms;
  std::size_t detections = 0;
  double mask_pixels = 0;
  for (int it = 0; it < o.warmup + o.iters; ++it) {
    StageRecording recording(synchronize);
    synchronize();
    const Clock::time_point start = Clock::now();
    const std::vector<std::vector<Instance>> result = predictor.predict(batch);
    synchronize();
    const Clock::time_point end = Clock::now();
    if (it < o.warmup) continue;
    end_to_end_ms.push_back(ms_between(start, end));
    double network = 0;
    for (const auto& [name, ms] : recording.milliseconds()) {
      if (stage_ms.count(name) == 0) stage_order.push_back(name);
      stage_ms[name].push_back(ms);
      if (is_network_stage(name)) network += ms;
    }
    model_ms.push_back(network);
    if (it == o.warmup)
      for (const std::vector<Instance>& image : result)
        for (const Instance& instance : image) {
          ++detections;
          mask_pixels += instance.has_mask ? static_cast<double>(instance.mask.area()) : 0.0;
        }
  }
  // Stages a run skipped in some iterations (none today) count as 0 ms there.
  for (auto& [name, values] : stage_ms) values.resize(static_cast<std::size_t>(o.iters), 0.0);

  const Summary model_summary = summarise(model_ms), total = summarise(end_to_end_ms);
  const double model_fps = 1000.0 * o.batch / model_summary.median;
  const double end_to_end_fps = 1000.0 * o.batch / total.median;
  const double rss = peak_rss_mib();
  const double mean_mask = detections > 0 ? mask_pixels / static_cast<double>(detections) : 0.0;

  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("method").value(model.method_name());
    w.key("backbone").value(config.model.backbone);
    w.key("backbone_width").value(config.model.backbone_width);
    w.key("weights").value(built.origin);
    w.key("parameters").value(static_cast<std::int64_t>(parameters));
    w.key("size").value(o.size);
    w.key("batch").value(o.batch);
    w.key("threads").value(threads);
    w.key("device").value(device.str());
    w.key("dtype").value(inference_precision_name(precision));
    w.key("fold").value(o.fold == "on");
    w.key("channels_last").value(channels_last);
    w.key("iters").value(o.iters);
    w.key("end_to_end_ms").value(total.median);
    w.key("end_to_end_min_ms").value(total.min);
    w.key("end_to_end_max_ms").value(total.max);
    w.key("end_to_end_fps").value(end_to_end_fps);
    w.key("model_ms").value(model_summary.median);
    w.key("model_fps").value(model_fps);
    w.key("stages").begin_object();
    for (const std::string& name : stage_order) {
      const Summary s = summarise(stage_ms[name]);
      w.key(name).begin_object();
      w.key("median_ms").value(s.median).key("min_ms").value(s.min).key("max_ms").value(s.max);
      w.end_object();
    }
    w.end_object();
    w.key("detections_per_image").value(static_cast<double>(detections) / o.batch);
    w.key("mean_mask_pixels").value(mean_mask);
    w.key("peak_rss_mib").value(rss);
    w.end_object();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("%s, %s, %.1f M parameters, %s\n", model.method_name().c_str(),
              backbone_description(config.model).c_str(), parameters / 1e6, built.origin.c_str());
  std::printf("%d×%d, batch %d, %s, %s, folding %s, %s, %d threads; %d runs after %d warm-up\n",
              o.size, o.size, o.batch, device.str().c_str(), inference_precision_name(precision),
              o.fold.c_str(), channels_last ? "channels-last" : "contiguous", threads, o.iters,
              o.warmup);
  std::printf("%-12s %10s %10s %10s\n", "stage", "median ms", "min", "max");
  for (const std::string& name : stage_order) {
    const Summary s = summarise(stage_ms[name]);
    std::printf("%-12s %10.2f %10.2f %10.2f\n", name.c_str(), s.median, s.min, s.max);
  }
  std::printf("%-12s %10.2f %10.2f %10.2f   %7.1f FPS  (backbone + heads)\n", "model-only",
              model_summary.median, model_summary.min, model_summary.max, model_fps);
  std::printf("%-12s %10.2f %10.2f %10.2f   %7.1f FPS  (preprocess to masks in the picture)\n",
              "end-to-end", total.median, total.min, total.max, end_to_end_fps);
  std::printf("%.1f detections per image, %.0f mask pixels each on average%s\n",
              static_cast<double>(detections) / o.batch, mean_mask,
              o.weights.empty() ? " (untrained heads: decode and assembly cost what these cost; "
                                  "--weights times a trained model's)"
                                : "");
  std::printf("peak RSS %.0f MiB (%.0f MiB before the model was built)\n", rss, rss_at_start);
  return 0;
}

}  // namespace

CommandRunner add_bench_command(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "time inference stage by stage: model-only and end-to-end FPS, peak memory");
  cmd->add_option("--config", options->config_path, "training config (untrained weights)");
  cmd->add_option("--meta-arch", options->meta_arch,
                  "method: " + describe_known_meta_architectures() + " (= --set model.meta_arch=)");
  cmd->add_option("--backbone", options->backbone,
                  "backbone: resnet18/34/50/101, dla34 (DCNv2), dla34_plain, hourglass104 (= --set "
                  "model.backbone=)");
  cmd->add_option("--set", options->overrides, "override a config key, KEY=VALUE (repeatable)");
  cmd->add_option("--weights", options->weights,
                  "a trained checkpoint instead of a config (realistic detections)");
  cmd->add_option("--classes", options->classes,
                  "classes of an untrained model whose config leaves model.num_classes to the "
                  "data")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--image", options->image, "picture to run on (default: a synthetic 640×480)");
  cmd->add_option("--size", options->size, "square input side (a multiple of the model's stride)");
  cmd->add_option("--batch", options->batch, "images per run");
  cmd->add_option("--threads", options->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N");
  cmd->add_option("--iters", options->iters, "timed runs");
  cmd->add_option("--warmup", options->warmup, "untimed runs first")->check(CLI::NonNegativeNumber);
  cmd->add_option("--dtype", options->dtype,
                  "fp32; bf16 (CPU with AVX-512 BF16 / AMX, or GPU); fp16 (GPU): the network "
                  "under autocast; auto: bf16 where the hardware has it, else fp32");
  cmd->add_option("--fold", options->fold,
                  "on: BatchNorm folded into convolutions, upsampling as conv + pixel shuffle "
                  "(the default, as predict and test run); off: the layers as trained")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--memory-format", options->memory_format,
                  "the network's tensor layout: contiguous, channels_last, or auto (channels_last "
                  "in bf16 on the CPU, as predict and test run)")
      ->check(CLI::IsMember({"auto", "contiguous", "channels_last"}));
  cmd->add_flag("--json", options->json, "print one JSON object");
  return [options]() { return run_bench(*options); };
}

}  // namespace centermask::cli
