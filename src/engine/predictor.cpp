#include "centermask/predictor.h"

#include <fmt/format.h>

#include "centermask/common/error.h"
#include "centermask/engine/inference.h"
#include "centermask/modeling/method_registry.h"

namespace centermask {

struct Predictor::Impl {
  TrainedModel trained;
  TestConfig trained_test;  ///< the checkpoint's own test settings
  InferenceOptions inference;
};

namespace {

// The options' test settings over the model's own, each checked.
void apply_options(const PredictorOptions& o, TestConfig* test) {
  const auto fail = [](const std::string& what) { throw InputError("predictor options: " + what); };
  if (o.input_size) {
    if (*o.input_size < 32 || *o.input_size % 32 != 0)
      fail(fmt::format("input_size must be a positive multiple of 32, got {}", *o.input_size));
    test->input_size = *o.input_size;
  }
  if (o.top_k) {
    if (*o.top_k < 1) fail(fmt::format("top_k must be at least 1, got {}", *o.top_k));
    test->top_k = *o.top_k;
  }
  if (o.score_threshold) {
    if (!(*o.score_threshold >= 0 && *o.score_threshold <= 1))
      fail(fmt::format("score_threshold must be in [0, 1], got {}", *o.score_threshold));
    test->score_threshold = *o.score_threshold;
  }
  if (o.mask_threshold) {
    if (!(*o.mask_threshold > 0 && *o.mask_threshold < 1))
      fail(fmt::format("mask_threshold must be in (0, 1), got {}", *o.mask_threshold));
    test->mask_threshold = *o.mask_threshold;
  }
  if (o.batch_size) {
    if (*o.batch_size < 1)
      fail(fmt::format("batch_size must be at least 1, got {}", *o.batch_size));
    test->batch_size = *o.batch_size;
  }
  if (o.mask_quality_scoring) test->mask_quality_scoring = *o.mask_quality_scoring;
  if (o.flip_test) test->flip_test = *o.flip_test;
  if (o.workers < 0) fail(fmt::format("workers must be ≥ 0 (0 = all cores), got {}", o.workers));
}

InferenceOptions inference_options(const PredictorOptions& o, const torch::Device& device,
                                   TestConfig* test) {
  apply_options(o, test);
  InferenceOptions inference;
  inference.test = *test;
  inference.device = device;
  inference.precision = parse_inference_precision(o.dtype, device, "dtype");
  inference.workers = o.workers;
  inference.memory_format = parse_memory_format(o.memory_format, "memory_format");
  return inference;
}

}  // namespace

Predictor::Predictor(const std::filesystem::path& checkpoint, const PredictorOptions& options) {
  const torch::Device device = resolve_device(options.device);
  // The options are checked before the (large) checkpoint is read.
  TestConfig settings;
  apply_options(options, &settings);
  parse_inference_precision(options.dtype, device, "dtype");
  auto impl = std::make_unique<Impl>();
  impl->trained = load_trained_model(checkpoint, device);
  impl->trained_test = impl->trained.config.test;
  impl->inference = inference_options(options, device, &impl->trained.config.test);
  impl_ = std::move(impl);
}

Predictor::Predictor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Predictor Predictor::untrained(const TrainConfig& config,
                               const std::vector<CocoCategory>& categories,
                               const PredictorOptions& options, int num_classes) {
  const torch::Device device = resolve_device(options.device);
  auto impl = std::make_unique<Impl>();
  impl->trained.config = config;
  impl->trained.categories = categories;
  if (categories.empty())
    for (int c = 0; c < num_classes; ++c)
      impl->trained.categories.push_back({c + 1, fmt::format("class {}", c + 1), ""});
  impl->trained.config.model.num_classes = static_cast<int>(impl->trained.categories.size());
  impl->trained_test = impl->trained.config.test;
  impl->inference = inference_options(options, device, &impl->trained.config.test);
  torch::manual_seed(0);
  impl->trained.model = build_meta_architecture(impl->trained.config.model);
  impl->trained.model->to(device);
  impl->trained.model->eval();
  return Predictor(std::move(impl));
}

Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

std::vector<Instance> Predictor::predict(const cv::Mat& image_bgr) {
  return predict_image(*impl_->trained.model, image_bgr, impl_->inference);
}

std::vector<std::vector<Instance>> Predictor::predict(const std::vector<cv::Mat>& images_bgr) {
  return predict_images(*impl_->trained.model, images_bgr, impl_->inference);
}

InferenceRun Predictor::predict_set(
    const std::shared_ptr<const TrainingSet>& set,
    const std::function<void(std::size_t, const std::vector<Instance>&)>& on_image) {
  InferenceOptions inference = impl_->inference;
  inference.on_image = on_image;
  return centermask::predict_set(*impl_->trained.model, set, inference);
}

EvaluationReport Predictor::evaluate(const std::shared_ptr<const TrainingSet>& set,
                                     bool class_agnostic_too) {
  return evaluate_model(*impl_->trained.model, set, impl_->inference, class_agnostic_too);
}

void Predictor::set_test_settings(const PredictorOptions& options) {
  TestConfig test = impl_->trained_test;
  apply_options(options, &test);
  impl_->trained.config.test = test;
  impl_->inference.test = test;
}

const TrainConfig& Predictor::config() const { return impl_->trained.config; }
const std::vector<CocoCategory>& Predictor::categories() const { return impl_->trained.categories; }

std::vector<std::string> Predictor::class_names() const {
  std::vector<std::string> names;
  for (const CocoCategory& c : impl_->trained.categories) names.push_back(c.name);
  return names;
}

std::string Predictor::description() const { return describe_model(impl_->trained.config.model); }

MetaArchitectureImpl& Predictor::model() { return *impl_->trained.model; }

std::string Predictor::device_name() const { return impl_->inference.device.str(); }
std::string Predictor::dtype_name() const {
  return inference_precision_name(impl_->inference.precision);
}

}  // namespace centermask
