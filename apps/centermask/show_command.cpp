// `centermask show`: draws a dataset's ground truth (and, with --results, predictions beside
// it) into PNG files, one per image.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <system_error>

#include "centermask/common/error.h"
#include "centermask/common/random.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/data/image_io.h"
#include "centermask/data/training_set.h"
#include "centermask/data/transforms.h"
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
  int augment_draws = 0;  ///< > 0: draw this many training augmentations per image instead
  int input_size = 0;     ///< input side for --augment (0 = the image's longer side)
  std::uint64_t seed = 0;
};

// What the network sees in training: the augmented input (colour jitter included, before
// normalisation) with the warped instances, so augmentation bugs are visible.
cv::Mat augmented_picture(const LoadedImage& loaded, const ShowOptions& o, int draw,
                          const std::vector<std::string>& names, const DrawOptions& style) {
  TrainAugmentOptions augment;
  const int side = o.input_size > 0
                       ? o.input_size
                       : (std::max(loaded.image.rows, loaded.image.cols) + 31) / 32 * 32;
  augment.input_height = augment.input_width = side;
  Rng rng(derive_seed(
      o.seed, {static_cast<std::uint64_t>(loaded.image_id), static_cast<std::uint64_t>(draw)}));
  const TransformedSample sample =
      transform_for_training(loaded.image, loaded.instances, augment, rng);
  std::vector<float> chw(3 * static_cast<std::size_t>(side) * static_cast<std::size_t>(side));
  write_network_input(sample, augment.normalization, chw.data());
  cv::Mat seen(side, side, CV_8UC3);
  const std::size_t plane = static_cast<std::size_t>(side) * static_cast<std::size_t>(side);
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v =
            chw[static_cast<std::size_t>(c) * plane + static_cast<std::size_t>(y * side + x)];
        seen.at<cv::Vec3b>(y, x)[c] = cv::saturate_cast<std::uint8_t>(
            (v * augment.normalization.std_bgr[c] + augment.normalization.mean_bgr[c]) * 255.0f);
      }
  return draw_instances(seen, sample.instances, names, style);
}

Instance instance_from_results(const CocoResults& results, std::size_t i) {
  const CocoDetection& d = results.detections()[i];
  Instance inst;
  inst.class_index = d.class_index;
  inst.score = static_cast<float>(d.score);
  inst.box = {static_cast<float>(d.bbox.x), static_cast<float>(d.bbox.y),
              static_cast<float>(d.bbox.x + d.bbox.width),
              static_cast<float>(d.bbox.y + d.bbox.height)};
  if (d.has_mask) {
    const Rle rle = results.mask(i);
    inst.has_mask = true;
    // Only the mask's own box is needed for drawing.
    const BoxXYWH b = rle_bbox(rle);
    inst.mask = rle_to_patch(rle, static_cast<int>(b.x), static_cast<int>(b.y),
                             static_cast<int>(b.x + b.width), static_cast<int>(b.y + b.height));
    if (d.bbox.width <= 0)
      inst.box = {static_cast<float>(b.x), static_cast<float>(b.y),
                  static_cast<float>(b.x + b.width), static_cast<float>(b.y + b.height)};
  }
  return inst;
}

int run_show(const ShowOptions& o) {
  CocoLoadOptions load_options;
  load_options.strict = o.strict;
  CocoLoadReport report;
  auto gt =
      std::make_shared<const CocoDataset>(CocoDataset::load(o.gt_path, load_options, &report));
  std::optional<CocoResults> results;
  if (!o.results_path.empty()) results = CocoResults::load(o.results_path, *gt);

  TrainingSetOptions set_options;
  set_options.strict = o.strict;
  // Only the images drawn need to exist; checking all of a large set would be wasted work.
  set_options.check_image_files = false;
  const auto set = TrainingSet::open(gt, o.image_dir, set_options, &report);
  for (const std::string& line : report.lines())
    std::fprintf(stderr, "warning: %s: %s\n", o.gt_path.c_str(), line.c_str());

  std::vector<std::size_t> chosen;
  for (std::size_t i = 0; i < set->size(); ++i) {
    const std::int64_t id = gt->images()[static_cast<std::size_t>(set->dataset_image_index(i))].id;
    if (!o.image_ids.empty() &&
        std::find(o.image_ids.begin(), o.image_ids.end(), id) == o.image_ids.end())
      continue;
    chosen.push_back(i);
    if (o.image_ids.empty() && o.limit > 0 && static_cast<int>(chosen.size()) >= o.limit) break;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec)
    throw InputError(
        describe_input_problem(o.out_dir, "", "cannot create folder: " + ec.message()));

  std::vector<std::vector<std::size_t>> detections_by_image(gt->images().size());
  if (results) {
    for (std::size_t d = 0; d < results->size(); ++d) {
      const CocoDetection& det = results->detections()[d];
      if (det.score >= o.score_threshold)
        detections_by_image[static_cast<std::size_t>(det.image_index)].push_back(d);
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
    for (int d = 0; d < o.augment_draws; ++d) {
      cv::Mat augmented = augmented_picture(loaded, o, d, names, draw);
      if (augmented.rows != picture.rows) {
        const double f = static_cast<double>(picture.rows) / augmented.rows;
        cv::resize(augmented, augmented, cv::Size(), f, f, cv::INTER_NEAREST);
      }
      cv::Mat gap(picture.rows, 8, CV_8UC3, cv::Scalar(255, 255, 255));
      cv::hconcat(std::vector<cv::Mat>{picture, gap, augmented}, picture);
    }
    if (results) {
      std::vector<Instance> predicted;
      for (std::size_t d :
           detections_by_image[static_cast<std::size_t>(set->dataset_image_index(i))])
        predicted.push_back(instance_from_results(*results, d));
      std::sort(predicted.begin(), predicted.end(),
                [](const Instance& a, const Instance& b) { return a.score < b.score; });
      DrawOptions pred_draw = draw;
      pred_draw.draw_scores = true;
      cv::Mat right = draw_instances(loaded.image, predicted, names, pred_draw);
      cv::Mat gap(picture.rows, 8, CV_8UC3, cv::Scalar(255, 255, 255));
      cv::hconcat(std::vector<cv::Mat>{picture, gap, right}, picture);
    }
    const std::filesystem::path out =
        std::filesystem::path(o.out_dir) / (loaded.path.stem().string() + ".png");
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
  CLI::App* cmd =
      app.add_subcommand("show", "Draw ground truth (and predictions) over images into PNG files");
  cmd->add_option("--gt", options->gt_path, "COCO annotation JSON")->required();
  cmd->add_option("--images", options->image_dir,
                  "Folder the JSON's file_name entries are relative to")
      ->required();
  cmd->add_option("--out", options->out_dir, "Folder for the PNG files")->required();
  cmd->add_option("--results", options->results_path,
                  "COCO results JSON: drawn beside the ground truth");
  cmd->add_option("--score-thr", options->score_threshold, "Least score of a drawn prediction")
      ->capture_default_str();
  cmd->add_option("--limit", options->limit, "Draw at most this many images (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--image-ids", options->image_ids, "Draw only these image ids")->delimiter(',');
  cmd->add_flag("--strict", options->strict, "Treat every data problem as an error");
  cmd->add_flag("--no-boxes", options->no_boxes, "Draw masks and labels without boxes");
  cmd->add_option("--augment", options->augment_draws,
                  "Also draw this many training augmentations of each image")
      ->check(CLI::Range(0, 16));
  cmd->add_option("--input-size", options->input_size,
                  "Network input side for --augment (default: image side rounded up to 32)");
  cmd->add_option("--seed", options->seed, "Seed of the --augment draws");
  return [options] { return run_show(*options); };
}

}  // namespace centermask::cli
