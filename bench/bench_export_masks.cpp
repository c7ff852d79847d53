// How close an exported graph's pasted masks come to `centermask predict`'s, by mask size M:
// a trained checkpoint exported with --postprocess on at each M, run in ONNX Runtime (the npm
// package onnxruntime-node, through node) on every picture of the given folders, its detections
// pasted with the deploy header and matched to Predictor::predict's (class, score within 1e-4,
// box within 0.5 px). Prints one line per M: detections, how many masks are under IoU 0.99, and
// the IoU's 1st / 5th percentile and median.
//   bench_export_masks --weights RUN/model_final.pt --images DIR [--images DIR] [--input-size N]
//                      [--mask-sizes 28,56,112] [--max-images 30] [--top-k 30]

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "centermask/common/error.h"
#include "centermask/deploy/exported_detections.h"
#include "centermask/export/network_export.h"
#include "centermask/predictor.h"
#include "export/deploy_check.h"

int main(int argc, char** argv) {
  std::string weights;
  std::vector<std::string> folders;
  int input_size = 0, max_images = 30, top_k = 30;
  std::vector<int> mask_sizes = {28, 56, 112};
  CLI::App app{"exported masks against predict's, by mask size"};
  app.add_option("--weights", weights, "a trained checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--images", folders, "folders of pictures")->required();
  app.add_option("--input-size", input_size, "the export's side (default: the model's)");
  app.add_option("--mask-sizes", mask_sizes, "M values")->delimiter(',');
  app.add_option("--max-images", max_images, "pictures per folder");
  app.add_option("--top-k", top_k, "detections per picture");
  CLI11_PARSE(app, argc, argv);
  try {
    if (!centermask::onnxruntime_available())
      throw centermask::InputError("node or onnxruntime-node missing (scripts/install-deps.sh)");
    centermask::PredictorOptions predictor_options;
    predictor_options.top_k = top_k;
    predictor_options.flip_test = false;  // the graph runs one pass
    if (input_size > 0) predictor_options.input_size = input_size;
    centermask::Predictor predictor(weights, predictor_options);
    const int side = predictor.config().test.input_size;
    std::vector<std::pair<std::string, cv::Mat>> pictures;
    for (const std::string& folder : folders) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::directory_iterator(folder))
        files.push_back(entry.path());
      std::sort(files.begin(), files.end());
      for (int i = 0; i < max_images && i < static_cast<int>(files.size()); ++i) {
        cv::Mat image = cv::imread(files[static_cast<std::size_t>(i)].string());
        if (!image.empty())
          pictures.emplace_back(files[static_cast<std::size_t>(i)].string(), image);
      }
    }
    const std::filesystem::path work =
        std::filesystem::temp_directory_path() / fmt::format("bench_export_masks_{}", getpid());
    std::filesystem::create_directories(work);
    std::printf("%s at %d px, %zu pictures, top %d, mask threshold %.2f\n",
                predictor.description().c_str(), side, pictures.size(), top_k,
                predictor.config().test.mask_threshold);
    for (const int m : mask_sizes) {
      centermask::ExportOptions options;
      options.input_height = options.input_width = side;
      options.mask_size = m;
      options.predict = centermask::PredictOptions{
          top_k, static_cast<float>(predictor.config().test.score_threshold),
          static_cast<float>(predictor.config().test.mask_threshold),
          predictor.config().test.mask_quality_scoring};
      const centermask::ExportReport report =
          centermask::export_network(predictor.model(), work / "model.onnx", options, {});
      std::vector<double> ious;
      std::int64_t unmatched = 0;
      for (const auto& [name, image] : pictures) {
        const centermask::deploy::InputTransform fit =
            centermask::deploy::fit_into(image, side, side);
        std::vector<float> input = centermask::deploy::network_input(image, fit);
        const auto outputs =
            centermask::run_onnxruntime(work, torch::from_blob(input.data(), {1, 3, side, side}),
                                        report, CENTERMASK_SOURCE_DIR);
        const std::vector<centermask::deploy::Detection> theirs = centermask::deploy::detections(
            centermask::exported_view(outputs, m), 0, fit, predictor.config().test.mask_threshold);
        const std::vector<centermask::Instance> ours = predictor.predict(image);
        const std::vector<int> match = centermask::match_detections(ours, theirs);
        for (std::size_t i = 0; i < ours.size(); ++i) {
          if (match[i] < 0) {
            ++unmatched;
            continue;
          }
          ious.push_back(centermask::compare_masks(ours[i].mask,
                                                   theirs[static_cast<std::size_t>(match[i])].mask)
                             .iou);
        }
      }
      std::sort(ious.begin(), ious.end());
      const auto at = [&](double q) {
        return ious.empty() ? 0.0 : ious[static_cast<std::size_t>(q * (ious.size() - 1))];
      };
      const auto below = std::lower_bound(ious.begin(), ious.end(), 0.99) - ious.begin();
      std::printf(
          "M %3d: %zu detections matched (%lld not), IoU < 0.99: %lld (%.1f %%); IoU p1 %.4f, "
          "p5 %.4f, median %.4f\n",
          m, ious.size(), static_cast<long long>(unmatched), static_cast<long long>(below),
          ious.empty() ? 0.0
                       : 100.0 * static_cast<double>(below) / static_cast<double>(ious.size()),
          at(0.01), at(0.05), at(0.5));
    }
    std::filesystem::remove_all(work);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
