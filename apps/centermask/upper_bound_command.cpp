// `centermask upper-bound`: what a model configuration can reach at best on a dataset — its
// ground truth encoded as perfect network outputs and decoded by the real inference path,
// scored with the COCO evaluator (see engine/upper_bound.h).

#include <fmt/format.h>

#include <cstdio>

#include "centermask/common/error.h"
#include "centermask/engine/config.h"
#include "centermask/engine/trainer.h"
#include "centermask/engine/upper_bound.h"
#include "commands.h"
#include "common/json_writer.h"

namespace centermask::cli {
namespace {

struct UpperBoundOptions {
  std::string gt_path;
  std::string images;
  std::string config_path;
  std::vector<std::string> overrides;
  int input_size = 0;
  bool json = false;
  bool strict = false;
  int threads = 0;
};

constexpr const char* kRangeNames[] = {"all", "small", "medium", "large"};

int run_upper_bound(const UpperBoundOptions& o) {
  configure_runtime(o.threads);
  // Without a config the defaults (the paper's model) are measured; the dataset measured stands
  // in for the training data that a config needs to name.
  std::vector<std::string> overrides;
  if (o.config_path.empty())
    overrides = {"data.train_json=" + o.gt_path, "data.train_images=" + o.images};
  overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
  if (o.input_size > 0) overrides.push_back("test.input_size=" + std::to_string(o.input_size));
  const TrainConfig config = o.config_path.empty()
                                 ? parse_train_config("", "<default config>", overrides)
                                 : load_train_config(o.config_path, overrides);
  const auto set = open_evaluation_set(o.gt_path, o.images, o.strict);
  if (config.model.num_classes != 0 &&
      config.model.num_classes != static_cast<int>(set->num_classes()))
    throw InputError(
        fmt::format("model.num_classes is {} but {} has {} categories; set "
                    "model.num_classes={} or 0",
                    config.model.num_classes, o.gt_path, set->num_classes(), set->num_classes()));

  const UpperBoundReport r = compute_upper_bound(config.model, set, config.test, o.gt_path);
  const CenterMaskOptions& m = config.model;
  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("input_size").value(static_cast<std::int64_t>(config.test.input_size));
    w.key("shape_size").value(static_cast<std::int64_t>(m.shape_size));
    w.key("saliency_stride").value(static_cast<std::int64_t>(m.saliency_stride));
    w.key("assembly").value(to_string(m.assembly));
    w.key("class_specific_saliency").value(m.class_specific_saliency);
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
  std::printf(
      "Upper bound of CenterMask (%s, S = %d, saliency stride %d, %s, %s saliency) at input %d "
      "on %s: %lld images, %lld detections, %.1f s\n",
      m.backbone.name.c_str(), m.shape_size, m.saliency_stride, to_string(m.assembly).c_str(),
      m.class_specific_saliency ? "class-specific" : "class-agnostic", config.test.input_size,
      o.gt_path.c_str(), static_cast<long long>(r.images), static_cast<long long>(r.detections),
      r.seconds);
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
                  "override a config key, KEY=VALUE (repeatable), e.g. --set model.shape_size=64");
  cmd->add_option("--input-size", options->input_size,
                  "test input side (multiple of 32; = --set test.input_size=)");
  cmd->add_flag("--json", options->json, "print one JSON object");
  cmd->add_flag("--strict", options->strict, "data problems are errors, not counted warnings");
  cmd->add_option("--threads", options->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  return [options]() { return run_upper_bound(*options); };
}

}  // namespace centermask::cli
