// `centermask show`: draws a dataset's ground truth (and, with --results, predictions beside
// it) into PNG files, one per image.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <opencv2/core.hpp>
#include <system_error>

#include "centermask/common/error.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/data/image_io.h"
#include "centermask/data/training_set.h"
#include "centermask/visualization/draw_instances.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct ShowOptions {
  std::string gt_path;
  std::string image_dir;
  std::string out_dir;
  std::string results_path;
  double score_threshold = 0.3;
  int limit = 20;
  std::vector<std::int64_t> image_ids;
  bool strict = false;
  bool no_boxes = false;
};

Instance instance_from_results(const CocoResults& results, std::size_t i) {
  const CocoDetection& d = results.detections()[i];
  Instance inst;
  inst.class_index = d.class_index;
  inst.score = static_cast<float>(d.score);
  inst.box = {static_cast<float>(d.bbox.x), static_cast<float>(d.bbox.y), static_cast<float>(d.bbox.x + d.bbox.width),
              static_cast<float>(d.bbox.y + d.bbox.height)};
  if (d.has_mask) {
    const Rle rle = results.mask(i);
    inst.has_mask = true;
    // Only the mask's own box is needed for drawing.
    const BoxXYWH b = rle_bbox(rle);
    inst.mask = rle_to_patch(rle, static_cast<int>(b.x), static_cast<int>(b.y), static_cast<int>(b.x + b.width),
                             static_cast<int>(b.y + b.height));
    if (d.bbox.width <= 0) inst.box = {static_cast<float>(b.x), static_cast<float>(b.y), static_cast<float>(b.x + b.width), static_cast<float>(b.y + b.height)};
  }
  return inst;
}

int run_show(const ShowOptions& o) {
  CocoLoadOptions load_options;
  load_options.strict = o.strict;
  CocoLoadReport report;
  auto gt = std::make_shared<const CocoDataset>(CocoDataset::load(o.gt_path, load_options, &report));
  std::optional<CocoResults> results;
  if (!o.results_path.empty()) results = CocoResults::load(o.results_path, *gt);

  TrainingSetOptions set_options;
  set_options.strict = o.strict;
  // Only the images drawn need to exist; checking all of a large set would be wasted work.
  set_options.check_image_files = false;
  const auto set = TrainingSet::open(gt, o.image_dir, set_options, &report);
  for (const std::string& line : report.lines()) std::fprintf(stderr, "warning: %s: %s\n", o.gt_path.c_str(), line.c_str());

  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < set->size(); ++i) {
    const std::int64_t id = gt->images()[static_cast<std::size_t>(set->dataset_image_index(i))].id;
    if (!o.image_ids.empty() && std::find(o.image_ids.begin(), o.image_ids.end(), id) == o.image_ids.end()) continue;
    chosen.push_back(i);
    if (o.image_ids.empty() && o.limit > 0 && static_cast<int>(chosen.size()) >= o.limit) break;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw InputError(describe_input_problem(o.out_dir, "", "cannot create folder: " + ec.message()));

  std::vector<std::vector<std::size_t>> detections_by_image(gt->images().size());
  if (results) {
    for (std::size_t d = 0; d < results->size(); ++d) {
      const CocoDetection& det = results->detections()[d];
      if (det.score >= o.score_threshold) detections_by_image[static_cast<std::size_t>(det.image_index)].push_back(d);
    }
  }
  const auto names = set->class_names();
  DrawOptions draw;
  draw.draw_boxes = !o.no_boxes;
  std::size_t written = 0, skipped = 0;
  for (std::size_t i : chosen) {
    LoadedImage loaded;
    try {
      loaded = set->load(i);
    } catch (const InputError& e) {
      if (o.strict) throw;
      std::fprintf(stderr, "warning: skipped: %s\n", e.what());
      ++skipped;
      continue;
    }
    cv::Mat picture = draw_instances(loaded.image, loaded.instances, names, draw);
    if (results) {
      std::vector<Instance> predicted;
      for (std::size_t d : detections_by_image[static_cast<std::size_t>(set->dataset_image_index(i))])
        predicted.push_back(instance_from_results(*results, d));
      std::sort(predicted.begin(), predicted.end(), [](const Instance& a, const Instance& b) { return a.score < b.score; });
      DrawOptions pred_draw = draw;
      pred_draw.draw_scores = true;
      cv::Mat right = draw_instances(loaded.image, predicted, names, pred_draw);
      cv::Mat gap(picture.rows, 8, CV_8UC3, cv::Scalar(255, 255, 255));
      cv::hconcat(std::vector<cv::Mat>{picture, gap, right}, picture);
    }
    const std::filesystem::path out = std::filesystem::path(o.out_dir) / (loaded.path.stem().string() + ".png");
    write_image(out, picture);
    ++written;
  }
  std::printf("Wrote %zu pictures to %s%s%s\n", written, o.out_dir.c_str(),
              results ? " (left: ground truth, right: predictions with score >= " : "",
              results ? fmt::format("{})", o.score_threshold).c_str() : "");
  if (skipped) std::printf("Skipped %zu images that did not load (see warnings)\n", skipped);
  return 0;
}

}  // namespace

CommandRunner add_show_command(CLI::App& app) {
  auto options = std::make_shared<ShowOptions>();
  CLI::App* cmd = app.add_subcommand("show", "Draw ground truth (and predictions) over images into PNG files");
  cmd->add_option("--gt", options->gt_path, "COCO annotation JSON")->required();
  cmd->add_option("--images", options->image_dir, "Folder the JSON's file_name entries are relative to")->required();
  cmd->add_option("--out", options->out_dir, "Folder for the PNG files")->required();
  cmd->add_option("--results", options->results_path, "COCO results JSON: drawn beside the ground truth");
  cmd->add_option("--score-thr", options->score_threshold, "Least score of a drawn prediction")->capture_default_str();
  cmd->add_option("--limit", options->limit, "Draw at most this many images (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--image-ids", options->image_ids, "Draw only these image ids")->delimiter(',');
  cmd->add_flag("--strict", options->strict, "Treat every data problem as an error");
  cmd->add_flag("--no-boxes", options->no_boxes, "Draw masks and labels without boxes");
  return [options] { return run_show(*options); };
}

}  // namespace centermask::cli
