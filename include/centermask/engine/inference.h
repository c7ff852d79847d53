#pragma once
// Running a trained model over a dataset: the same code for periodic evaluation during
// training, `centermask test` and `centermask predict` (whose folder of images becomes a
// dataset without annotations), so the numbers a run logs are the numbers `test` prints.
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <opencv2/core.hpp>
#include <optional>
#include <vector>

#include "centermask/data/coco_results.h"
#include "centermask/data/training_set.h"
#include "centermask/engine/config.h"
#include "centermask/engine/evaluation_report.h"
#include "centermask/engine/runtime.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "centermask/modeling/meta_arch.h"

namespace centermask {

struct InferenceOptions {
  TestConfig test;
  torch::Device device = torch::kCPU;
  InferencePrecision precision = InferencePrecision::kFloat32;
  /// The network's layout (use_channels_last): auto = channels-last in bf16 on the CPU (the
  /// recipe's model at 512²: 18.3 → 11.7 ms), converted once on the first call.
  MemoryFormatChoice memory_format = MemoryFormatChoice::kAuto;
  int workers = 0;  ///< loader threads; 0 = all cores
  /// Called for every image with its usable index in the set and its detections (original
  /// pixels), in set order: e.g. to draw overlays.
  std::function<void(std::size_t, const std::vector<Instance>&)> on_image;
};

/// Predicts every usable image of `set` (in eval mode, without gradients; the model's mode is
/// restored afterwards). The model's class count must equal the set's.
InferenceRun predict_set(MetaArchitectureImpl& model, const std::shared_ptr<const TrainingSet>& set,
                         const InferenceOptions& options);

/// One image (H × W × 3, 8-bit BGR as OpenCV reads it) through the same test transform,
/// network and decoding as predict_set: detections in the image's pixels, highest score first
/// (video frames, the Python package). InputError for an empty image or another pixel type.
std::vector<Instance> predict_image(MetaArchitectureImpl& model, const cv::Mat& image_bgr,
                                    const InferenceOptions& options);
/// Several images in one forward pass, each fitted into the test input size as predict_image
/// fits one; detections per image.
std::vector<std::vector<Instance>> predict_images(MetaArchitectureImpl& model,
                                                  const std::vector<cv::Mat>& images_bgr,
                                                  const InferenceOptions& options);

/// predict_set, then COCO evaluation (segm and bbox) over the set's usable images; with
/// `class_agnostic_too` also the class-agnostic evaluation.
EvaluationReport evaluate_model(MetaArchitectureImpl& model,
                                const std::shared_ptr<const TrainingSet>& set,
                                const InferenceOptions& options, bool class_agnostic_too = false);

/// The test config's settings as the method interface takes them.
PredictOptions predict_options(const TestConfig& test);

/// A model restored from a checkpoint with the config and categories it was trained with.
struct TrainedModel {
  std::shared_ptr<MetaArchitectureImpl> model;  ///< the method the checkpoint's config names
  TrainConfig config;
  std::vector<CocoCategory> categories;
};
/// InputError naming the file when it is missing, truncated or not a checkpoint of ours.
TrainedModel load_trained_model(const std::filesystem::path& weights, torch::Device device);

/// An image file, or every image file (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp) directly in
/// a folder, sorted by name. InputError when there is none.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& image_or_folder);

/// Images without annotations as a checked set (ids 1..N in the given order, sizes read from
/// the files), so prediction on a folder runs through the same loader as evaluation. An
/// unreadable file is an InputError naming it.
std::shared_ptr<const TrainingSet> open_image_files(const std::vector<std::filesystem::path>& files,
                                                    const std::vector<CocoCategory>& categories);

/// Whether two category lists name the same classes in the same order (ids and names): what a
/// model's class indices need to mean the same thing on another dataset.
bool same_categories(const std::vector<CocoCategory>& a, const std::vector<CocoCategory>& b);
/// "1:person, 2:bicycle, ..." for messages.
std::string describe_categories(const std::vector<CocoCategory>& categories);

/// Detections of one image as COCO results (category ids from the dataset, masks as RLE of
/// the image's size).
void append_coco_results(const CocoDataset& dataset, std::int64_t image_id,
                         const std::vector<Instance>& instances, CocoResults* results);

}  // namespace centermask
