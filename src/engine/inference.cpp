#include "centermask/engine/inference.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>

#include "centermask/common/error.h"
#include "centermask/common/stage_timer.h"
#include "centermask/data/image_io.h"
#include "centermask/data/loader.h"
#include "centermask/data/transforms.h"
#include "centermask/engine/checkpoint.h"
#include "centermask/modeling/method_registry.h"

namespace centermask {

namespace {

// Puts the model's weights in the layout `options` asks for, if they are not in it yet.
void use_layout_of(MetaArchitectureImpl& model, const InferenceOptions& options) {
  if (!use_channels_last(options.memory_format, options.precision, options.device)) return;
  for (const torch::Tensor& p : model.parameters())
    if (p.dim() == 4 && !p.is_contiguous(torch::MemoryFormat::ChannelsLast)) {
      convert_to_channels_last(model);
      return;
    }
}

// A flip test the method does not have is an error, not a silently single pass.
void check_flip_test(const MetaArchitectureImpl& model, const InferenceOptions& options) {
  if (options.test.flip_test && !model.supports_flip_test())
    throw std::invalid_argument(fmt::format(
        "test.flip_test (--flip-test on): {} has no flip test (it is CenterMask's, from "
        "CenterNet); turn it off",
        model.method_name()));
}

}  // namespace

TrainedModel load_trained_model(const std::filesystem::path& weights, torch::Device device) {
  CheckpointReader reader(weights);
  TrainedModel trained;
  trained.config =
      parse_train_config(reader.contents().config_yaml, weights.string() + " (its saved config)");
  trained.categories = reader.contents().categories;
  if (trained.config.model.num_classes != static_cast<int>(trained.categories.size()))
    throw InputError(fmt::format("{}: model.num_classes is {} but it lists {} categories",
                                 weights.string(), trained.config.model.num_classes,
                                 trained.categories.size()));
  trained.model = build_meta_architecture(trained.config.model);
  reader.load_model(*trained.model);
  trained.model->to(device);
  trained.model->eval();
  return trained;
}

bool same_categories(const std::vector<CocoCategory>& a, const std::vector<CocoCategory>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].id != b[i].id || a[i].name != b[i].name) return false;
  return true;
}

std::string describe_categories(const std::vector<CocoCategory>& categories) {
  std::string out;
  for (const CocoCategory& c : categories)
    out += (out.empty() ? "" : ", ") + fmt::format("{}:{}", c.id, c.name);
  return out;
}

std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& input) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(input, ec)) return {input};
  if (!std::filesystem::is_directory(input, ec))
    throw InputError(input.string() + ": no such image file or folder");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(input, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" ||
        ext == ".tiff" || ext == ".webp")
      files.push_back(entry.path());
  }
  if (ec) throw InputError(input.string() + ": cannot list the folder: " + ec.message());
  if (files.empty())
    throw InputError(input.string() +
                     ": holds no image files (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp)");
  std::sort(files.begin(), files.end());
  return files;
}

std::shared_ptr<const TrainingSet> open_image_files(const std::vector<std::filesystem::path>& files,
                                                    const std::vector<CocoCategory>& categories) {
  CocoDatasetBuilder builder("<images>");
  for (const CocoCategory& c : categories) builder.add_category(c);
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::optional<ImageSize> size = probe_image_size(files[i]);
    if (!size) {  // not PNG/JPEG (or a damaged header): decoding names the file if it fails
      const cv::Mat decoded = read_image_bgr(files[i]);
      size = ImageSize{decoded.rows, decoded.cols};
    }
    CocoImage image;
    image.id = static_cast<std::int64_t>(i) + 1;
    image.file_name = std::filesystem::absolute(files[i]).string();
    image.height = size->height;
    image.width = size->width;
    builder.add_image(image);
  }
  auto dataset = std::make_shared<const CocoDataset>(std::move(builder).build());
  TrainingSetOptions options;
  options.strict = true;
  CocoLoadReport report;
  return TrainingSet::open(dataset, "/", options, &report);
}

void append_coco_results(const CocoDataset& dataset, std::int64_t image_id,
                         const std::vector<Instance>& instances, CocoResults* results) {
  const std::int32_t image_index = dataset.image_index(image_id);
  if (image_index < 0) throw std::logic_error("append_coco_results: unknown image id");
  const CocoImage& image = dataset.images()[static_cast<std::size_t>(image_index)];
  for (const Instance& instance : instances) {
    const BoxXYWH box{instance.box.x0, instance.box.y0, instance.box.width(),
                      instance.box.height()};
    const std::int64_t category_id =
        dataset.categories().at(static_cast<std::size_t>(instance.class_index)).id;
    if (instance.has_mask) {
      const Rle mask = patch_to_rle(instance.mask, image.height, image.width);
      results->add(dataset, image_id, category_id, instance.score, box, &mask);
    } else {
      results->add(dataset, image_id, category_id, instance.score, box, nullptr);
    }
  }
}

PredictOptions predict_options(const TestConfig& test) {
  PredictOptions options;
  options.top_k = test.top_k;
  options.mask_threshold = static_cast<float>(test.mask_threshold);
  options.score_threshold = static_cast<float>(test.score_threshold);
  options.mask_quality_scoring = test.mask_quality_scoring;
  return options;
}

InferenceRun predict_set(MetaArchitectureImpl& model, const std::shared_ptr<const TrainingSet>& set,
                         const InferenceOptions& options) {
  check_flip_test(model, options);
  if (static_cast<std::size_t>(model.num_classes()) != set->num_classes())
    throw InputError(fmt::format("the model predicts {} classes but the dataset has {} categories",
                                 model.num_classes(), set->num_classes()));
  const auto start = std::chrono::steady_clock::now();
  LoaderOptions loader_options;
  loader_options.training = false;
  loader_options.batch_size = options.test.batch_size;
  loader_options.workers = options.workers;
  loader_options.test_transform.input_height = options.test.input_size;
  loader_options.test_transform.input_width = options.test.input_size;
  DataLoader loader(set, loader_options);
  const PredictOptions decode = predict_options(options.test);

  use_layout_of(model, options);
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  InferenceRun run;
  loader.start_epoch(0);
  std::size_t usable_index = 0;
  while (std::optional<Batch> batch = loader.next()) {
    torch::Tensor images =
        torch::from_blob(batch->images.data(), {batch->size, 3, batch->height, batch->width})
            .to(options.device);
    const AutocastScope precision(options.precision, options.device);
    const auto outputs = model.run_network(images, options.test.flip_test);
    const auto detections = model.detect(*outputs, batch->infos, decode);
    for (std::size_t i = 0; i < detections.size(); ++i, ++usable_index) {
      append_coco_results(set->dataset(), batch->infos[i].image_id, detections[i], &run.results);
      if (options.on_image) options.on_image(usable_index, detections[i]);
    }
    run.images += batch->size;
  }
  model.train(was_training);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

std::vector<std::vector<Instance>> predict_images(MetaArchitectureImpl& model,
                                                  const std::vector<cv::Mat>& images_bgr,
                                                  const InferenceOptions& options) {
  check_flip_test(model, options);
  if (images_bgr.empty()) return {};
  for (std::size_t i = 0; i < images_bgr.size(); ++i) {
    const cv::Mat& image = images_bgr[i];
    if (image.empty() || image.type() != CV_8UC3)
      throw InputError(fmt::format(
          "predict: expected a non-empty 8-bit 3-channel BGR image, got {}x{} with {} channels of "
          "{} bytes{}",
          image.cols, image.rows, image.channels(), image.elemSize1(),
          images_bgr.size() > 1 ? fmt::format(" (image {} of {})", i, images_bgr.size()) : ""));
  }
  // The loader's test path (data/loader.cpp): the same transform and normalisation, so an
  // image predicts as the same picture read from a file would. Every image is fitted into the
  // same input_size square, so they make one batch.
  TestTransformOptions transform;
  transform.input_height = transform.input_width = options.test.input_size;
  const auto n = static_cast<std::int64_t>(images_bgr.size());
  const std::size_t image_floats = 3 * static_cast<std::size_t>(transform.input_height) *
                                   static_cast<std::size_t>(transform.input_width);
  std::vector<float> chw(static_cast<std::size_t>(n) * image_floats);
  std::vector<ImageInfo> infos;
  {
    const ScopedStage stage("preprocess");
    for (std::size_t i = 0; i < images_bgr.size(); ++i) {
      const TransformedSample sample = transform_for_test(images_bgr[i], transform);
      write_network_input(sample, transform.normalization, chw.data() + i * image_floats);
      infos.push_back(sample.info);
    }
  }
  use_layout_of(model, options);
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor images =
      torch::from_blob(chw.data(), {n, 3, transform.input_height, transform.input_width})
          .to(options.device);
  std::vector<std::vector<Instance>> detections;
  {
    const AutocastScope precision(options.precision, options.device);
    const auto outputs = model.run_network(images, options.test.flip_test);
    detections = model.detect(*outputs, infos, predict_options(options.test));
  }
  model.train(was_training);
  return detections;
}

std::vector<Instance> predict_image(MetaArchitectureImpl& model, const cv::Mat& image_bgr,
                                    const InferenceOptions& options) {
  return std::move(predict_images(model, {image_bgr}, options).at(0));
}

EvaluationReport evaluate_model(MetaArchitectureImpl& model,
                                const std::shared_ptr<const TrainingSet>& set,
                                const InferenceOptions& options, bool class_agnostic_too) {
  EvaluationReport report;
  report.run = predict_set(model, set, options);
  CocoEvalParams params;
  // Score only the images that were predicted: an image missing on disk is the data's
  // problem (reported when the set was opened), not a miss of the model.
  if (set->size() != set->dataset().images().size()) {
    for (std::size_t i = 0; i < set->size(); ++i)
      params.image_ids.push_back(
          set->dataset().images()[static_cast<std::size_t>(set->dataset_image_index(i))].id);
  }
  params.iou_type = IouType::kSegm;
  report.segm = evaluate_coco(set->dataset(), report.run.results, params);
  params.iou_type = IouType::kBbox;
  report.bbox = evaluate_coco(set->dataset(), report.run.results, params);
  if (class_agnostic_too) {
    params.use_categories = false;
    params.iou_type = IouType::kSegm;
    report.segm_agnostic = evaluate_coco(set->dataset(), report.run.results, params);
    params.iou_type = IouType::kBbox;
    report.bbox_agnostic = evaluate_coco(set->dataset(), report.run.results, params);
  }
  return report;
}

}  // namespace centermask
