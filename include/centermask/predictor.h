#pragma once
// Using a trained model from C++: the class a program links against (find_package(centermask)
// → centermask::centermask), and the one path through which `centermask predict`, `test`,
// `report`, `bench` and the Python package run models.
//
//   centermask::Predictor predictor("runs/demo/model_final.pt");      // CPU, fp32
//   for (const centermask::Instance& object : predictor.predict(cv::imread("street.jpg")))
//     std::printf("%s %.2f\n", predictor.class_names()[object.class_index].c_str(), object.score);
//
// Detections are in the image's own pixels, highest score first: class, score, box and mask
// (a patch of the image, MaskPatch). The header needs OpenCV's core only: LibTorch stays behind
// the implementation (model() hands the network out to those who want it).

#include <filesystem>
#include <functional>
#include <memory>
#include <opencv2/core/mat.hpp>
#include <optional>
#include <string>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/training_set.h"
#include "centermask/engine/config.h"
#include "centermask/engine/evaluation_report.h"
#include "centermask/structures/instances.h"

namespace centermask {

class MetaArchitectureImpl;  // modeling/meta_arch.h: the network, a LibTorch module

struct PredictorOptions {
  std::string device = "cpu";  ///< cpu, cuda or cuda:N
  /// The network's arithmetic: fp32, bf16, fp16 (CUDA) or auto (bf16 where the hardware has
  /// it, else fp32). Checked against the device: an error names it.
  std::string dtype = "fp32";
  /// Test settings; unset = the model's own (its training config's test section).
  std::optional<int> input_size;  ///< the side images are fitted into (a multiple of 32)
  std::optional<int> top_k;       ///< detections kept per image
  std::optional<double> score_threshold;
  std::optional<double> mask_threshold;      ///< on the mask probability, in (0, 1)
  std::optional<bool> mask_quality_scoring;  ///< score × the mask's mean probability
  std::optional<bool> flip_test;             ///< also the mirrored image, averaged
  std::optional<int> batch_size;             ///< images per forward pass over a set
  /// The network's tensor layout: auto (channels-last where it was measured faster: bf16 on
  /// the CPU), contiguous or channels_last.
  std::string memory_format = "auto";
  int workers = 0;  ///< loader threads over a set; 0 = all cores
};

class Predictor {
 public:
  /// A checkpoint (model_final.pt or last.pt): its config, class names and weights.
  /// InputError naming the file when it is missing, truncated or not a checkpoint, and naming
  /// the option when a setting is out of range or the device cannot run the dtype.
  explicit Predictor(const std::filesystem::path& checkpoint, const PredictorOptions& options = {});
  /// A model of `config` with untrained weights (seed 0) for `categories` (or `num_classes`
  /// unnamed ones when `categories` is empty): benchmarks and exporters of a configuration.
  static Predictor untrained(const TrainConfig& config, const std::vector<CocoCategory>& categories,
                             const PredictorOptions& options = {}, int num_classes = 80);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;

  /// One image (8-bit BGR, as cv::imread gives it). InputError for an empty image or another
  /// pixel type.
  std::vector<Instance> predict(const cv::Mat& image_bgr);
  /// Several images in one forward pass (each fitted into input_size).
  std::vector<std::vector<Instance>> predict(const std::vector<cv::Mat>& images_bgr);
  /// Every usable image of a set through the loader (evaluation's path, batch_size images a
  /// pass); `on_image` receives each image's index in the set and detections, in set order.
  InferenceRun predict_set(
      const std::shared_ptr<const TrainingSet>& set,
      const std::function<void(std::size_t, const std::vector<Instance>&)>& on_image = {});
  /// predict_set and COCO evaluation (segm and bbox; with class_agnostic_too also with
  /// categories ignored) over the set's usable images.
  EvaluationReport evaluate(const std::shared_ptr<const TrainingSet>& set,
                            bool class_agnostic_too = false);

  /// The options' test settings over the model's own, replacing the earlier ones (the device,
  /// dtype and workers stay): e.g. evaluate with every detection, then draw the confident.
  void set_test_settings(const PredictorOptions& options);

  /// The model's training config, its test section as this predictor runs it.
  const TrainConfig& config() const;
  /// The classes in class_index order (ids and names of the training set).
  const std::vector<CocoCategory>& categories() const;
  std::vector<std::string> class_names() const;
  /// "CenterMask (resnet18, S = 32, ...)".
  std::string description() const;
  /// Where and how the network runs: "cpu", "cuda:0"; "fp32", "bf16", "fp16".
  std::string device_name() const;
  std::string dtype_name() const;
  /// The network (LibTorch), in eval mode on the predictor's device.
  MetaArchitectureImpl& model();

 private:
  struct Impl;
  explicit Predictor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace centermask
