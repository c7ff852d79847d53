// `centermask upper-bound`: what a model configuration can reach at best on a dataset — its
// ground truth encoded as perfect network outputs and decoded by the real inference path,
// scored with the COCO evaluator (see engine/upper_bound.h).

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"
#include "centermask/engine/config.h"
#include "centermask/engine/trainer.h"
#include "centermask/engine/upper_bound.h"
#include "centermask/modeling/method_registry.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct UpperBoundOptions {
  std::string gt_path;
  std::string images;
  std::string config_path;
  std::vector<std::string> overrides;
  std::vector<std::string> sweeps;
  int input_size = 0;
  bool json = false;
  bool strict = false;
  int threads = 0;
};

constexpr const char* kRangeNames[] = {"all", "small", "medium", "large"};

// One `--sweep KEY=V1,V2,...` axis.
struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
};

SweepAxis parse_sweep(const std::string& text) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw InputError(
        fmt::format("--sweep {}: expected KEY=V1,V2,... (e.g. test.input_size=256,320,384)", text));
  SweepAxis axis{text.substr(0, eq), {}};
  std::size_t begin = eq + 1;
  while (begin <= text.size()) {
    const std::size_t comma = std::min(text.find(',', begin), text.size());
    if (comma == begin)
      throw InputError(fmt::format("--sweep {}: an empty value in the list", text));
    axis.values.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  return axis;
}

// Every combination of the axes' values, as lists of KEY=VALUE overrides (the last axis
// varies fastest); one empty combination when there are no axes.
std::vector<std::vector<std::string>> sweep_combinations(const std::vector<SweepAxis>& axes) {
  std::vector<std::vector<std::string>> combinations = {{}};
  for (const SweepAxis& axis : axes) {
    std::vector<std::vector<std::string>> grown;
    for (const auto& partial : combinations)
      for (const std::string& value : axis.values) {
        grown.push_back(partial);
        grown.back().push_back(axis.key + "=" + value);
      }
    combinations = std::move(grown);
  }
  return combinations;
}

std::string join(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const std::string& part : parts) out += (out.empty() ? "" : separator) + part;
  return out;
}

void check_class_count(const ModelConfig& model, const TrainingSet& set,
                       const std::string& gt_path) {
  if (model.num_classes != 0 && model.num_classes != static_cast<int>(set.num_classes()))
    throw InputError(
        fmt::format("model.num_classes is {} but {} has {} categories; set "
                    "model.num_classes={} or 0",
                    model.num_classes, gt_path, set.num_classes(), set.num_classes()));
}

// The upper bound of each combination, one row each: how the ceiling moves with a setting
// (PolarMask's ray count and center choice, the paper's Fig. 7; CenterMask's S or input size).
int run_sweep(const UpperBoundOptions& o, const std::vector<std::vector<std::string>>& combinations,
              const std::vector<TrainConfig>& configs,
              const std::shared_ptr<const TrainingSet>& set) {
  std::vector<UpperBoundReport> reports;
  for (const TrainConfig& config : configs) {
    check_class_count(config.model, *set, o.gt_path);
    reports.push_back(compute_upper_bound(config.model, set, config.test, o.gt_path));
  }
  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object().key("gt").value(o.gt_path).key("rows").begin_array();
    for (std::size_t i = 0; i < reports.size(); ++i) {
      const UpperBoundReport& r = reports[i];
      w.begin_object().key("settings").begin_array();
      for (const std::string& setting : combinations[i]) w.value(setting);
      w.end_array();
      w.key("model").value(describe_model(configs[i].model));
      w.key("input_size").value(static_cast<std::int64_t>(configs[i].test.input_size));
      w.key("segm_ap").value(r.segm.stats[0]).key("segm_ap50").value(r.segm.stats[1]);
      w.key("segm_ap75").value(r.segm.stats[2]).key("bbox_ap").value(r.bbox.stats[0]);
      w.key("mean_mask_iou").begin_object();
      for (std::size_t k = 0; k < 4; ++k) w.key(kRangeNames[k]).value(r.mean_mask_iou[k]);
      w.end_object().end_object();
    }
    w.end_array().end_object();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf(
      "Upper bound on %s (%lld images) by setting; mean IoU = each object's best "
      "same-class detection\n\n",
      o.gt_path.c_str(), static_cast<long long>(reports.front().images));
  std::printf(
      "| settings | mask AP | AP50 | AP75 | AP_S | AP_M | AP_L | box AP | mean IoU | "
      "IoU small | IoU medium |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const UpperBoundReport& r = reports[i];
    const auto& m = r.segm.stats;
    std::printf("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n",
                join(combinations[i], " ").c_str(), m[0], m[1], m[2], m[3], m[4], m[5],
                r.bbox.stats[0], r.mean_mask_iou[0], r.mean_mask_iou[1], r.mean_mask_iou[2]);
  }
  return 0;
}

int run_upper_bound(const UpperBoundOptions& o) {
  configure_runtime(o.threads);
  // Without a config the defaults (the paper's model) are measured; the dataset measured stands
  // in for the training data that a config needs to name.
  const auto config_with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> overrides;
    if (o.config_path.empty())
      overrides = {"data.train_json=" + o.gt_path, "data.train_images=" + o.images};
    overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
    if (o.input_size > 0) overrides.push_back("test.input_size=" + std::to_string(o.input_size));
    overrides.insert(overrides.end(), extra.begin(), extra.end());
    return o.config_path.empty() ? parse_train_config("", "<default config>", overrides)
                                 : load_train_config(o.config_path, overrides);
  };
  std::vector<SweepAxis> axes;
  for (const std::string& text : o.sweeps) axes.push_back(parse_sweep(text));
  const std::vector<std::vector<std::string>> combinations = sweep_combinations(axes);
  // Every combination is parsed before the first is measured: a bad value fails at once.
  std::vector<TrainConfig> configs;
  for (const auto& combination : combinations) configs.push_back(config_with(combination));
  const auto set = open_evaluation_set(o.gt_path, o.images, o.strict);
  if (!axes.empty()) return run_sweep(o, combinations, configs, set);
  const TrainConfig& config = configs.front();
  check_class_count(config.model, *set, o.gt_path);

  const UpperBoundReport r = compute_upper_bound(config.model, set, config.test, o.gt_path);
  const ModelConfig& m = config.model;
  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("meta_arch").value(m.meta_arch);
    w.key("model").value(describe_model(m));
    w.key("input_size").value(static_cast<std::int64_t>(config.test.input_size));
    // The method's own settings (model.<meta_arch>.*), numbers and switches as such.
    w.key("options").begin_object();
    for (const auto& [key, text] : method_settings(config)) {
      w.key(key);
      char* end = nullptr;
      const double number = std::strtod(text.c_str(), &end);
      if (text == "true" || text == "false") {
        w.value(text == "true");
      } else if (!text.empty() && end == text.c_str() + text.size()) {
        w.value(number);
      } else {
        w.value(text);
      }
    }
    w.end_object();
    w.key("num_images").value(r.images);
    w.key("num_detections").value(r.detections);
    for (const CocoEvalResult* e : {&r.segm, &r.bbox}) {
      w.key(iou_type_name(e->iou_type)).begin_object().key("stats").begin_array();
      for (double s : e->stats) w.value(s);
      w.end_array().end_object();
    }
    w.key("mean_mask_iou").begin_object();
    for (std::size_t i = 0; i < 4; ++i) w.key(kRangeNames[i]).value(r.mean_mask_iou[i]);
    w.end_object();
    w.key("objects").begin_object();
    for (std::size_t i = 0; i < 4; ++i) w.key(kRangeNames[i]).value(r.objects[i]);
    w.end_object();
    w.end_object();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("Upper bound of %s at input %d on %s: %lld images, %lld detections, %.1f s\n",
              describe_model(m).c_str(), config.test.input_size, o.gt_path.c_str(),
              static_cast<long long>(r.images), static_cast<long long>(r.detections), r.seconds);
  for (const CocoEvalResult* e : {&r.segm, &r.bbox}) {
    std::printf("\nIoU type %s\n", iou_type_name(e->iou_type));
    std::fputs(e->summary_text().c_str(), stdout);
  }
  std::printf("\nMean mask IoU of each object's best same-class detection:\n");
  for (std::size_t i = 0; i < 4; ++i)
    std::printf("  %-6s %.4f  (%lld objects)\n", kRangeNames[i], r.mean_mask_iou[i],
                static_cast<long long>(r.objects[i]));
  return 0;
}

}  // namespace

CommandRunner add_upper_bound_command(CLI::App& app) {
  auto options = std::make_shared<UpperBoundOptions>();
  CLI::App* cmd = app.add_subcommand(
      "upper-bound",
      "the ceiling of a model config on a dataset: ground truth as perfect network outputs, "
      "decoded and evaluated (mask and box AP, mask IoU by size)");
  cmd->add_option("--gt", options->gt_path, "ground-truth COCO annotations JSON (with masks)")
      ->required();
  cmd->add_option("--images", options->images, "folder the JSON's file_name values are in")
      ->required();
  cmd->add_option("--config", options->config_path,
                  "YAML config whose model and test sections to measure (default: the paper's)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides,
                  "override a config key, KEY=VALUE (repeatable), e.g. --set test.input_size=384");
  cmd->add_option("--sweep", options->sweeps,
                  "measure every combination of values, KEY=V1,V2,... (repeatable), e.g. --sweep "
                  "test.input_size=256,320 --sweep model.<method>.<option>=A,B (the method's "
                  "options: train --list-keys): one table row each");
  cmd->add_option("--input-size", options->input_size,
                  "test input side (multiple of 32; = --set test.input_size=)");
  cmd->add_flag("--json", options->json, "print one JSON object");
  cmd->add_flag("--strict", options->strict, "data problems are errors, not counted warnings");
  cmd->add_option("--threads", options->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  return [options]() { return run_upper_bound(*options); };
}

}  // namespace centermask::cli
