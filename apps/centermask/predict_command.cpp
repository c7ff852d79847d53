// `centermask predict`: runs a trained model on an image or a folder of images and writes
// COCO results JSON plus overlay pictures. The checkpoint carries its config and categories,
// so no config file is needed.

#include <fmt/format.h>

#include <cstdio>

#include "centermask/common/error.h"
#include "centermask/data/image_io.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/visualization/draw_instances.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct PredictOptions {
  ModelRunOptions model;
  std::string input;
  std::string out_dir = "predictions";
  double score_threshold = 0.3;
  bool overlays = true;
};

int run_predict(const PredictOptions& o) {
  configure_runtime(o.model.threads);
  const torch::Device device = resolve_device(o.model.device);
  const InferencePrecision precision = parse_inference_precision(o.model.dtype, device);
  // The inputs first: listing them is cheap, loading the model is not.
  const std::vector<std::filesystem::path> files = list_image_files(o.input);
  TrainedModel trained = load_trained_model(o.model.weights, device);
  const auto set = open_image_files(files, trained.categories);

  const std::filesystem::path out_dir = o.out_dir;
  const std::filesystem::path overlay_dir = out_dir / "overlays";
  std::error_code ec;
  std::filesystem::create_directories(o.overlays ? overlay_dir : out_dir, ec);
  if (ec) throw InputError(o.out_dir + ": cannot create the folder: " + ec.message());

  std::vector<std::string> class_names;
  for (const CocoCategory& c : trained.categories) class_names.push_back(c.name);
  InferenceOptions inference;
  inference.test = trained.config.test;
  inference.test.score_threshold = o.score_threshold;
  apply_model_run_overrides(o.model, &inference.test);
  inference.device = device;
  inference.precision = precision;
  std::int64_t detections = 0;
  DrawOptions draw;
  draw.draw_scores = true;
  inference.on_image = [&](std::size_t i, const std::vector<Instance>& instances) {
    detections += static_cast<std::int64_t>(instances.size());
    if (!o.overlays) return;
    const LoadedImage image = set->load(i);
    write_image(overlay_dir / (image.path.stem().string() + ".png"),
                draw_instances(image.image, instances, class_names, draw));
  };
  const InferenceRun run = predict_set(*trained.model, set, inference);
  run.results.save(out_dir / "results.json");
  // The image ids of results.json: a COCO file with the images and categories (no
  // annotations), so the results can be read back by any COCO tool.
  set->dataset().save(out_dir / "images.json");
  std::printf("%lld detections with score >= %.2f on %lld images (%.1f images/s)\n",
              static_cast<long long>(detections), o.score_threshold,
              static_cast<long long>(run.images),
              run.seconds > 0 ? static_cast<double>(run.images) / run.seconds : 0.0);
  std::printf("results: %s (image ids: %s)\n", (out_dir / "results.json").c_str(),
              (out_dir / "images.json").c_str());
  if (o.overlays) std::printf("pictures: %s/\n", overlay_dir.c_str());
  return 0;
}

}  // namespace

CommandRunner add_predict_command(CLI::App& app) {
  auto options = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "run a trained model on images: COCO results JSON and overlay pictures");
  add_model_run_options(cmd, &options->model);
  cmd->add_option("--input", options->input, "an image or a folder of images")->required();
  cmd->add_option("--out", options->out_dir, "output folder (results.json, overlays/)");
  cmd->add_option("--score-thr", options->score_threshold, "keep detections at or above")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("!--no-overlays", options->overlays, "write only results.json");
  return [options]() { return run_predict(*options); };
}

}  // namespace centermask::cli
