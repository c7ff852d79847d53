// `centermask eval`: COCO evaluation of a results file against ground truth, printing the
// familiar 12-line summary (or one JSON object with --json).

#include <fmt/format.h>

#include <cstdio>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "command_runner.h"

namespace centermask::cli {
namespace {

struct EvalOptions {
  std::string gt_path;
  std::string results_path;
  std::string iou = "segm";
  bool per_class = false;
  bool json = false;
  bool strict = false;
  std::vector<std::int64_t> image_ids;
  std::vector<std::int64_t> category_ids;
  bool ignore_categories = false;
  bool lvis = false;
  int max_detections = 0;  ///< 0 = the rules' default (COCO: 1, 10, 100; LVIS: 300 per image)
  int threads = 0;
};

void print_warnings(const CocoLoadReport& report, const std::string& path) {
  for (const std::string& line : report.lines())
    std::fprintf(stderr, "warning: %s: %s\n", path.c_str(), line.c_str());
}

int run_eval(const EvalOptions& o) {
  CocoLoadOptions load_options;
  load_options.strict = o.strict;
  CocoLoadReport report;
  const CocoDataset gt = CocoDataset::load(o.gt_path, load_options, &report);
  print_warnings(report, o.gt_path);
  const CocoResults results = CocoResults::load(o.results_path, gt);

  const IouType iou_type = o.iou == "bbox" ? IouType::kBbox : IouType::kSegm;
  CocoEvalParams params = o.lvis ? lvis_eval_params(iou_type) : CocoEvalParams{};
  params.iou_type = iou_type;
  if (o.max_detections > 0) {
    if (!o.lvis)
      throw InputError("--max-dets applies to --lvis (COCO's summary uses 1, 10 and 100)");
    params.max_detections = {o.max_detections};
  }
  params.image_ids = o.image_ids;
  params.category_ids = o.category_ids;
  params.use_categories = !o.ignore_categories;
  params.num_threads = o.threads;
  const CocoEvalResult result = evaluate_coco(gt, results, params);

  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("iou_type").value(iou_type_name(result.iou_type));
    w.key("rules").value(o.lvis ? "lvis" : "coco");
    w.key("num_images")
        .value(static_cast<std::int64_t>(params.image_ids.empty() ? gt.images().size()
                                                                  : params.image_ids.size()));
    w.key("num_detections").value(static_cast<std::int64_t>(results.size()));
    w.key("stats").begin_array();
    if (o.lvis) {
      for (double s : result.lvis_stats) w.value(s);
    } else {
      for (double s : result.stats) w.value(s);
    }
    w.end_array();
    if (o.lvis) {
      w.key("names").begin_array();
      for (const char* name : kLvisStatNames) w.value(name);
      w.end_array();
    }
    if (o.per_class) {
      w.key("per_class").begin_object();
      for (const auto& [category_id, ap] : result.per_category_ap())
        w.key(std::to_string(category_id)).value(ap);
      w.end_object();
    }
    w.end_object();
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("Evaluated %zu detections on %zu images (IoU type %s%s)\n", results.size(),
              params.image_ids.empty() ? gt.images().size() : params.image_ids.size(),
              iou_type_name(result.iou_type), o.lvis ? ", LVIS's federated rules" : "");
  std::fputs(result.summary_text().c_str(), stdout);
  if (o.per_class) {
    std::printf("\nPer-category AP@[.50:.95] (-1: no ground truth)\n");
    for (const auto& [category_id, ap] : result.per_category_ap()) {
      const std::int32_t cls = gt.class_index(category_id);
      const std::string& name =
          cls >= 0 ? gt.categories()[static_cast<std::size_t>(cls)].name : std::string();
      std::printf("  %6lld  %-24s %7.4f\n", static_cast<long long>(category_id), name.c_str(), ap);
    }
  }
  return 0;
}

}  // namespace

CommandRunner add_eval_command(CLI::App& app) {
  auto options = std::make_shared<EvalOptions>();
  CLI::App* cmd =
      app.add_subcommand("eval", "COCO evaluation (pycocotools-equivalent) of a results JSON");
  cmd->add_option("--gt", options->gt_path, "ground-truth COCO annotations JSON")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--results", options->results_path, "results JSON (COCO result format)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--iou", options->iou, "IoU type")->check(CLI::IsMember({"segm", "bbox"}));
  cmd->add_flag("--per-class", options->per_class, "also report AP per category");
  cmd->add_flag("--json", options->json,
                "print one JSON object {\"stats\": [12 numbers], ...} instead of text");
  cmd->add_flag("--strict", options->strict,
                "treat degenerate ground truth (polygons < 3 points, ...) as errors");
  cmd->add_option("--image-ids", options->image_ids, "evaluate only these image ids")
      ->delimiter(',');
  cmd->add_option("--category-ids", options->category_ids, "evaluate only these category ids")
      ->delimiter(',');
  cmd->add_flag("--ignore-categories", options->ignore_categories,
                "match regardless of category (COCOeval useCats=0)");
  cmd->add_flag("--lvis", options->lvis,
                "LVIS v1's federated rules (neg_category_ids, not_exhaustive_category_ids, 300 "
                "detections per image) and its summary: AP, AP50, AP75, APs/m/l, APr/c/f, AR@300");
  cmd->add_option("--max-dets", options->max_detections,
                  "with --lvis: detections kept per image (default 300)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", options->threads, "worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  return [options]() { return run_eval(*options); };
}

}  // namespace centermask::cli
