// `centermask test`: predict + evaluate on a COCO-format dataset, with the same evaluator as
// `centermask eval`; writes the results it scored (--out) so that any evaluator can check them.

#include <fmt/format.h>

#include <cstdio>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct TestOptions {
  ModelRunOptions model;
  std::string gt_path;
  std::string images;
  std::string out_path;
  bool json = false;
  bool strict = false;
};

int run_test(const TestOptions& o) {
  configure_runtime(o.model.threads);
  Predictor predictor(o.model.weights, predictor_options(o.model));
  const auto set = open_evaluation_set(o.gt_path, o.images, o.strict);
  if (!same_categories(set->dataset().categories(), predictor.categories()))
    throw InputError(fmt::format("{}: categories ({}) differ from the ones {} was trained on ({})",
                                 o.gt_path, describe_categories(set->dataset().categories()),
                                 o.model.weights, describe_categories(predictor.categories())));

  const auto category_name = [&](std::int64_t id) {
    for (const CocoCategory& c : set->dataset().categories())
      if (c.id == id) return c.name;
    return std::to_string(id);
  };
  const EvaluationReport result = predictor.evaluate(set, /*class_agnostic_too=*/true);
  if (!o.out_path.empty()) result.run.results.save(o.out_path);

  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("num_images").value(result.run.images);
    // Images of the dataset that were left out (missing, undecodable, or a size that
    // disagrees with the JSON; stderr names them): the stats are over the others.
    w.key("num_images_skipped")
        .value(static_cast<std::int64_t>(set->dataset().images().size()) -
               static_cast<std::int64_t>(set->size()));
    w.key("num_detections").value(static_cast<std::int64_t>(result.run.results.size()));
    w.key("images_per_s")
        .value(result.run.seconds > 0 ? result.run.images / result.run.seconds : 0);
    for (const CocoEvalResult* r : {&result.segm, &result.bbox}) {
      w.key(iou_type_name(r->iou_type)).begin_object().key("stats").begin_array();
      for (double s : r->stats) w.value(s);
      w.end_array().end_object();
    }
    for (const CocoEvalResult* r : {&*result.segm_agnostic, &*result.bbox_agnostic}) {
      w.key(std::string(iou_type_name(r->iou_type)) + "_class_agnostic")
          .begin_object()
          .key("stats")
          .begin_array();
      for (double s : r->stats) w.value(s);
      w.end_array().end_object();
    }
    // AP of each category by name: which kinds of object a method gets wrong (e.g. rings,
    // which a polygon from the center cannot hold).
    for (const CocoEvalResult* r : {&result.segm, &result.bbox}) {
      w.key(std::string(iou_type_name(r->iou_type)) + "_per_category").begin_object();
      for (const auto& [id, ap] : r->per_category_ap()) w.key(category_name(id)).value(ap);
      w.end_object();
    }
    w.end_object();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("Predicted %lld images in %.1f s (%.1f images/s), %zu detections\n",
              static_cast<long long>(result.run.images), result.run.seconds,
              result.run.seconds > 0 ? result.run.images / result.run.seconds : 0.0,
              result.run.results.size());
  for (const CocoEvalResult* r : {&result.segm, &result.bbox}) {
    std::printf("\nIoU type %s\n", iou_type_name(r->iou_type));
    std::fputs(r->summary_text().c_str(), stdout);
  }
  // What fails: classification (AP vs class-agnostic AP) and size (AP small/medium/large).
  std::printf("\n%-5s %8s %16s %8s %8s %8s\n", "", "AP", "class-agnostic", "small", "medium",
              "large");
  const std::pair<const CocoEvalResult*, const CocoEvalResult*> rows[] = {
      {&result.segm, &*result.segm_agnostic}, {&result.bbox, &*result.bbox_agnostic}};
  for (const auto& [r, agnostic] : rows)
    std::printf("%-5s %8.4f %16.4f %8.4f %8.4f %8.4f\n",
                r->iou_type == IouType::kSegm ? "mask" : "box", r->stats[0], agnostic->stats[0],
                r->stats[3], r->stats[4], r->stats[5]);
  std::printf("\n%-24s %8s %8s\n", "category", "mask AP", "box AP");
  const auto mask_ap = result.segm.per_category_ap(), box_ap = result.bbox.per_category_ap();
  for (std::size_t k = 0; k < mask_ap.size() && k < box_ap.size(); ++k)
    std::printf("%-24s %8.4f %8.4f\n", category_name(mask_ap[k].first).c_str(), mask_ap[k].second,
                box_ap[k].second);
  if (!o.out_path.empty()) std::printf("\nresults: %s\n", o.out_path.c_str());
  return 0;
}

}  // namespace

CommandRunner add_test_command(CLI::App& app) {
  auto options = std::make_shared<TestOptions>();
  CLI::App* cmd =
      app.add_subcommand("test", "predict on a COCO-format dataset and evaluate (mask and box AP)");
  add_model_run_options(cmd, &options->model);
  cmd->add_option("--gt", options->gt_path, "ground-truth COCO annotations JSON")->required();
  cmd->add_option("--images", options->images, "folder the JSON's file_name values are in")
      ->required();
  cmd->add_option("--out", options->out_path, "also write the scored COCO results JSON here");
  cmd->add_flag("--json", options->json, "print one JSON object with both stats lists");
  cmd->add_flag("--strict", options->strict, "data problems are errors, not counted warnings");
  return [options]() { return run_test(*options); };
}

}  // namespace centermask::cli
