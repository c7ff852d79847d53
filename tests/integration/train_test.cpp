// The training engine end to end on a tiny synthetic dataset: a run folder with config, log,
// checkpoints and metrics; exact resume (the same loss curve as an uninterrupted run);
// divergence, class-count and empty-data errors that name what is wrong.

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/core.hpp>

#include "centermask/common/error.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/engine/checkpoint.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/engine/weight_average.h"
#include "centermask/modeling/backbone_weights.h"
#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"
#include "support/test_paths.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { data_ = new testing::TinyTrainingData(); }
  static void TearDownTestSuite() { delete data_; }
  static testing::TinyTrainingData* data_;
  testing::TempDir dir_;
};
testing::TinyTrainingData* TrainTest::data_ = nullptr;

TEST_F(TrainTest, TrainsIntoARunFolderAndEvaluates) {
  const TrainConfig config = data_->config({});
  const TrainOutcome outcome = train(config, dir_ / "run", {});
  EXPECT_EQ(outcome.status, TrainStatus::kFinished);
  EXPECT_EQ(outcome.iteration, 6);
  // Whether it learns is learning_test's; here: the evaluation ran and is the one written.
  testing::expect_outcome_is_the_written_evaluation(dir_ / "run", outcome.mask_ap, outcome.box_ap);
  for (const char* name : {"config.yaml", "log.jsonl", "last.pt", "model_final.pt", "metrics.json"})
    EXPECT_TRUE(std::filesystem::exists(dir_ / "run" / name)) << name;

  // The log: one train line per iteration (log_every_iters 1) and the final evaluation.
  const auto losses = testing::logged_losses(dir_ / "run" / "log.jsonl");
  EXPECT_EQ(losses.size(), 6u);
  const std::string log = testing::read_text(dir_ / "run" / "log.jsonl");
  EXPECT_NE(log.find("\"type\":\"eval\",\"iter\":6"), std::string::npos);
  EXPECT_NE(testing::read_text(dir_ / "run" / "metrics.json").find("\"segm\":{\"AP\":"),
            std::string::npos);

  // The saved config is resolved (classes from the dataset) and is enough to predict.
  const TrainedModel trained = load_trained_model(dir_ / "run" / "model_final.pt", torch::kCPU);
  EXPECT_EQ(trained.config.model.num_classes, 6);
  EXPECT_EQ(trained.categories.size(), 6u);
  EXPECT_EQ(trained.categories[0].name, synthetic_class_names()[0]);

  // A second run into the same folder is refused unless asked for.
  const std::string refused = testing::error_message_of([&] { train(config, dir_ / "run", {}); });
  EXPECT_NE(refused.find("holds an earlier run"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--resume"), std::string::npos) << refused;
  TrainerOptions overwrite;
  overwrite.overwrite = true;
  // A mistake in the new run's inputs is found before the earlier run is removed.
  const std::string bad = testing::error_message_of(
      [&] { train(data_->config({"model.num_classes=3"}), dir_ / "run", overwrite); });
  EXPECT_NE(bad.find("model.num_classes"), std::string::npos) << bad;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "run" / "model_final.pt"));
  EXPECT_EQ(train(config, dir_ / "run", overwrite).iteration, 6);
}

TEST_F(TrainTest, AResumedRunContinuesTheSameCurve) {
  train(data_->config({}), dir_ / "straight", {});
  const auto straight = testing::logged_losses(dir_ / "straight" / "log.jsonl");

  // Stop after 2 of the 3 batches of the first epoch, then resume to the full length.
  train(data_->config({"solver.epochs=0.67"}), dir_ / "resumed", {});
  ASSERT_EQ(CheckpointReader(dir_ / "resumed" / "last.pt").contents().progress.batch_in_epoch, 2);
  TrainerOptions resume;
  resume.resume = true;
  const TrainOutcome outcome =
      train(load_run_config(dir_ / "resumed", {"solver.epochs=2"}), dir_ / "resumed", resume);
  EXPECT_EQ(outcome.iteration, 6);
  const auto resumed = testing::logged_losses(dir_ / "resumed" / "log.jsonl");
  ASSERT_EQ(resumed.size(), straight.size());
  for (const auto& [iteration, loss] : straight)
    EXPECT_NEAR(resumed.at(iteration), loss, 1e-5 * std::abs(loss)) << "iteration " << iteration;

  // A resumed run cannot change the model it is resuming.
  const std::string message = testing::error_message_of(
      [&] { load_run_config(dir_ / "resumed", {"model.centermask.shape_size=12"}); });
  EXPECT_NE(message.find("cannot change model.* keys"), std::string::npos) << message;
}

// With solver.ema_decay the run delivers the averaged weights (model_final.pt differs from the
// trained weights in last.pt), and a resumed run continues the average exactly.
TEST_F(TrainTest, TheWeightAverageIsDeliveredAndResumedExactly) {
  const std::vector<std::string> averaging = {"solver.ema_decay=0.5"};
  train(data_->config(averaging), dir_ / "straight", {});
  auto resumed_config = averaging;
  resumed_config.push_back("solver.epochs=0.67");
  train(data_->config(resumed_config), dir_ / "resumed", {});
  TrainerOptions resume;
  resume.resume = true;
  train(load_run_config(dir_ / "resumed", {"solver.epochs=2"}), dir_ / "resumed", resume);
  EXPECT_NE(
      testing::read_text(dir_ / "straight" / "log.jsonl").find("weights averaged with decay 0.5"),
      std::string::npos);

  auto weights_of = [](const std::filesystem::path& file) {
    TrainedModel trained = load_trained_model(file, torch::kCPU);
    return named_weights(*trained.model);
  };
  const auto straight = weights_of(dir_ / "straight" / "model_final.pt");
  const auto resumed = weights_of(dir_ / "resumed" / "model_final.pt");
  const auto trained = weights_of(dir_ / "straight" / "last.pt");
  ASSERT_EQ(straight.size(), resumed.size());
  bool averaged_differs = false;
  for (std::size_t i = 0; i < straight.size(); ++i) {
    const torch::Tensor& a = straight[i].second;
    EXPECT_TRUE(torch::allclose(a, resumed[i].second, 1e-4, 1e-6)) << straight[i].first;
    if (a.is_floating_point() && !torch::equal(a, trained[i].second)) averaged_differs = true;
  }
  EXPECT_TRUE(averaged_differs);
}

// The second method through the same engine: PolarMask trains, logs its own terms, resumes on
// the same curve, evaluates, and its checkpoint is not taken for CenterMask's.
TEST_F(TrainTest, PolarMaskTrainsResumesAndEvaluatesThroughTheSameEngine) {
  std::string yaml = data_->config_yaml();
  const std::string centermask_keys = "  centermask:\n    head_channels: 16\n    shape_size: 8\n";
  ASSERT_NE(yaml.find(centermask_keys), std::string::npos);
  yaml.replace(yaml.find(centermask_keys), centermask_keys.size(),
               "  meta_arch: polarmask\n  polarmask:\n    fpn_channels: 16\n"
               "    head_tower_convs: 1\n    head_norm_groups: 4\n");
  const TrainOutcome straight_outcome =
      train(parse_train_config(yaml, "polar.yaml"), dir_ / "straight", {});
  EXPECT_EQ(straight_outcome.iteration, 6);
  testing::expect_outcome_is_the_written_evaluation(dir_ / "straight", straight_outcome.mask_ap,
                                                    straight_outcome.box_ap);
  const std::string log = testing::read_text(dir_ / "straight" / "log.jsonl");
  EXPECT_NE(log.find("\"classification\":"), std::string::npos) << log.substr(0, 400);
  EXPECT_NE(log.find("\"type\":\"eval\""), std::string::npos);
  const auto straight = testing::logged_losses(dir_ / "straight" / "log.jsonl");

  train(parse_train_config(yaml, "polar.yaml", {"solver.epochs=0.67"}), dir_ / "resumed", {});
  TrainerOptions resume;
  resume.resume = true;
  train(load_run_config(dir_ / "resumed", {"solver.epochs=2"}), dir_ / "resumed", resume);
  const auto resumed = testing::logged_losses(dir_ / "resumed" / "log.jsonl");
  ASSERT_EQ(resumed.size(), straight.size());
  for (const auto& [iteration, loss] : straight)
    EXPECT_NEAR(resumed.at(iteration), loss, 1e-5 * std::abs(loss)) << "iteration " << iteration;

  const TrainedModel trained =
      load_trained_model(dir_ / "straight" / "model_final.pt", torch::kCPU);
  EXPECT_EQ(trained.model->method_name(), "polarmask");
  EXPECT_EQ(trained.config.model.meta_arch, "polarmask");
  const std::string other = testing::error_message_of(
      [&] { load_run_config(dir_ / "resumed", {"model.meta_arch=centermask"}); });
  EXPECT_NE(other.find("model."), std::string::npos) << other;
}

// The third method: CenterMask-FCOS trains, logs its terms, resumes on the same curve, and the
// resumed model predicts what the straight one does.
TEST_F(TrainTest, CenterMaskFcosTrainsResumesAndPredictsAsTheStraightRun) {
  std::string yaml = data_->config_yaml();
  const std::string centermask_keys = "  centermask:\n    head_channels: 16\n    shape_size: 8\n";
  ASSERT_NE(yaml.find(centermask_keys), std::string::npos);
  yaml.replace(yaml.find(centermask_keys), centermask_keys.size(),
               "  meta_arch: centermask_fcos\n  centermask_fcos:\n    shape_size: 8\n"
               "    fpn_channels: 16\n    head_tower_convs: 1\n    head_norm_groups: 4\n"
               "    saliency_convs: 1\n    saliency_channels: 16\n");
  const TrainOutcome outcome = train(parse_train_config(yaml, "fcos.yaml"), dir_ / "straight", {});
  EXPECT_EQ(outcome.iteration, 6);
  testing::expect_outcome_is_the_written_evaluation(dir_ / "straight", outcome.mask_ap,
                                                    outcome.box_ap);
  const std::string log = testing::read_text(dir_ / "straight" / "log.jsonl");
  EXPECT_NE(log.find("\"centerness\":"), std::string::npos) << log.substr(0, 400);
  const auto straight = testing::logged_losses(dir_ / "straight" / "log.jsonl");

  train(parse_train_config(yaml, "fcos.yaml", {"solver.epochs=0.67"}), dir_ / "resumed", {});
  TrainerOptions resume;
  resume.resume = true;
  train(load_run_config(dir_ / "resumed", {"solver.epochs=2"}), dir_ / "resumed", resume);
  const auto resumed = testing::logged_losses(dir_ / "resumed" / "log.jsonl");
  ASSERT_EQ(resumed.size(), straight.size());
  for (const auto& [iteration, loss] : straight)
    EXPECT_NEAR(resumed.at(iteration), loss, 1e-5 * std::abs(loss)) << "iteration " << iteration;

  TrainedModel a = load_trained_model(dir_ / "straight" / "model_final.pt", torch::kCPU);
  TrainedModel b = load_trained_model(dir_ / "resumed" / "model_final.pt", torch::kCPU);
  EXPECT_EQ(b.model->method_name(), "centermask_fcos");
  a.model->eval();
  b.model->eval();
  torch::NoGradGuard no_grad;
  torch::manual_seed(9);
  const torch::Tensor image = torch::randn({1, 3, 64, 64});
  ImageInfo info;
  info.original_height = info.input_height = 64;
  info.original_width = info.input_width = 64;
  PredictOptions predict;
  predict.mask_threshold = 0.2f;
  const auto outputs_a = a.model->run_network(image);
  const auto outputs_b = b.model->run_network(image);
  // The outputs themselves (a 6-iteration model may detect nothing above FCOS's 0.05).
  const auto& typed_a = method_cast<CenterMaskFcosMethodOutputs>(*outputs_a, "test").outputs;
  const auto& typed_b = method_cast<CenterMaskFcosMethodOutputs>(*outputs_b, "test").outputs;
  for (std::size_t level = 0; level < typed_a.fcos.class_logits.size(); ++level)
    EXPECT_TRUE(torch::allclose(typed_a.fcos.class_logits[level], typed_b.fcos.class_logits[level],
                                1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(typed_a.saliency_logits, typed_b.saliency_logits, 1e-4, 1e-5));
  const auto from_a = a.model->detect(*outputs_a, {info}, predict);
  const auto from_b = b.model->detect(*outputs_b, {info}, predict);
  ASSERT_EQ(from_a[0].size(), from_b[0].size());
  for (std::size_t i = 0; i < from_a[0].size(); ++i) {
    EXPECT_NEAR(from_a[0][i].score, from_b[0][i].score, 1e-4);
    EXPECT_NEAR(from_a[0][i].box.x1, from_b[0][i].box.x1, 1e-2);
    EXPECT_EQ(from_a[0][i].mask.area(), from_b[0][i].mask.area());
  }
  // CenterMask's flip test is not CenterMask-FCOS's: asked for, it is an error, not a
  // silently single pass.
  InferenceOptions flipped;
  flipped.test.flip_test = true;
  const std::string flip_error = testing::error_message_of(
      [&] { predict_image(*a.model, cv::Mat(64, 64, CV_8UC3, cv::Scalar(90, 120, 30)), flipped); });
  EXPECT_NE(flip_error.find("test.flip_test"), std::string::npos) << flip_error;
  EXPECT_NE(flip_error.find("centermask_fcos"), std::string::npos) << flip_error;
}

TEST_F(TrainTest, DivergenceNamesTheIterationAndTermAndKeepsTheLastGoodCheckpoint) {
  const TrainConfig config =
      data_->config({"solver.optimizer=sgd", "solver.lr=1e30", "solver.momentum=0",
                     "runtime.checkpoint_every_iters=1", "solver.epochs=4"});
  std::string message;
  try {
    train(config, dir_ / "run", {});
  } catch (const TrainingDiverged& e) {
    message = e.what();
  }
  ASSERT_NE(message.find("iteration "), std::string::npos) << message;
  // It names what went wrong: a loss term, or the network output that made the loss refuse
  // to compute (CenterMask's BCE on NaN probabilities).
  EXPECT_TRUE(message.find("loss term '") != std::string::npos ||
              message.find("output is not finite") != std::string::npos)
      << message;
  EXPECT_NE(message.find("stopped without saving"), std::string::npos) << message;
  EXPECT_NE(message.find("last.pt (kept)"), std::string::npos) << message;
  const int diverged_at = std::stoi(message.substr(message.find("iteration ") + 10));
  const CheckpointReader last(dir_ / "run" / "last.pt");
  EXPECT_EQ(last.contents().progress.iteration, diverged_at - 1);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run" / "model_final.pt"));
}

TEST_F(TrainTest, MixedPrecisionBf16TrainsWithTheSameLossesToBf16sPrecision) {
  try {
    parse_inference_precision("bf16", torch::kCPU, "solver.precision");
  } catch (const InputError& e) {
    GTEST_SKIP() << "this CPU has no bf16: " << e.what();
  }
  const TrainOutcome plain = train(data_->config({}), dir_ / "fp32", {});
  const TrainOutcome mixed = train(data_->config({"solver.precision=bf16"}), dir_ / "bf16", {});
  EXPECT_EQ(mixed.iteration, plain.iteration);
  const auto plain_losses = testing::logged_losses(dir_ / "fp32" / "log.jsonl");
  const auto mixed_losses = testing::logged_losses(dir_ / "bf16" / "log.jsonl");
  ASSERT_EQ(mixed_losses.size(), plain_losses.size());
  // The same weights and batch: the first loss differs only by bf16's rounding of the
  // network's arithmetic (8 significant bits); later ones follow the same descent.
  const double first_plain = plain_losses.begin()->second;
  EXPECT_NEAR(mixed_losses.begin()->second, first_plain, 0.02 * first_plain);
  for (const auto& [iteration, loss] : mixed_losses) EXPECT_TRUE(std::isfinite(loss)) << iteration;
  const std::string log = testing::read_text(dir_ / "bf16" / "log.jsonl");
  EXPECT_NE(log.find("mixed precision (solver.precision bf16)"), std::string::npos) << log;
  // The weights stay float32: the checkpoint predicts like any other.
  const TrainedModel trained = load_trained_model(dir_ / "bf16" / "model_final.pt", torch::kCPU);
  for (const auto& p : trained.model->parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat32);
}

TEST_F(TrainTest, AutoPrecisionIsBf16ExactlyWhereTheCpuHasItAndSaysWhichItChose) {
  bool cpu_has_bf16 = true;
  try {
    parse_inference_precision("bf16", torch::kCPU, "solver.precision");
  } catch (const InputError&) {
    cpu_has_bf16 = false;
  }
  EXPECT_EQ(parse_inference_precision("auto", torch::kCPU, "solver.precision"),
            cpu_has_bf16 ? InferencePrecision::kBFloat16 : InferencePrecision::kFloat32);
  train(data_->config({"solver.precision=auto", "solver.epochs=1"}), dir_ / "auto", {});
  const std::string log = testing::read_text(dir_ / "auto" / "log.jsonl");
  const bool said_bf16 =
      log.find("mixed precision (solver.precision auto): the network runs in bf16") !=
      std::string::npos;
  EXPECT_EQ(said_bf16, cpu_has_bf16) << log;
}

// runtime.memory_format: channels-last changes where values lie, not what is computed: the
// same first loss as the default layout (to the rounding of other convolution kernels), an
// exact resume, and weights that load into an ordinary model.
TEST_F(TrainTest, ChannelsLastTrainsTheSameCurveAndResumesExactly) {
  const TrainConfig plain_config = data_->config({"runtime.memory_format=contiguous"});
  train(plain_config, dir_ / "plain", {});
  const std::vector<std::string> channels_last = {"runtime.memory_format=channels_last"};
  train(data_->config(channels_last), dir_ / "straight", {});
  auto stopped = channels_last;
  stopped.push_back("solver.epochs=0.67");
  train(data_->config(stopped), dir_ / "resumed", {});
  TrainerOptions resume;
  resume.resume = true;
  train(load_run_config(dir_ / "resumed", {"solver.epochs=2"}), dir_ / "resumed", resume);

  const auto plain = testing::logged_losses(dir_ / "plain" / "log.jsonl");
  const auto straight = testing::logged_losses(dir_ / "straight" / "log.jsonl");
  const auto resumed = testing::logged_losses(dir_ / "resumed" / "log.jsonl");
  ASSERT_EQ(straight.size(), plain.size());
  ASSERT_EQ(resumed.size(), plain.size());
  // The first step sees the same weights and batch: only the kernels' rounding differs
  // (measured 1.7e-7 relative). Each later step starts from weights one update apart, and the
  // difference grows about tenfold a step, as between any two runs that sum in other orders
  // (Adam divides each gradient by its own scale, so tiny gradients' rounding moves weights by
  // up to the lr): measured 1.5e-5, 1.0e-4, 4.4e-3, 5.8e-3, 1.5e-2 for steps 2–6 on this data.
  // Steps 2 and 3 are held to 1e-3 and 1e-2 (≥ 60x the measured drift): what they check is
  // that the first updates in channels-last are the same updates; steps 4–6 have drifted as far
  // as chaotic rounding takes them and are held only to 10 %.
  const std::vector<double> tolerance = {1e-5, 1e-3, 1e-2, 0.1, 0.1, 0.1};
  std::size_t step = 0;
  for (const auto& [iteration, loss] : straight) {
    const double expected = plain.at(iteration);
    EXPECT_NEAR(loss, expected, tolerance.at(step++) * std::abs(expected))
        << "iteration " << iteration;
    EXPECT_NEAR(resumed.at(iteration), loss, 1e-5 * std::abs(loss)) << "iteration " << iteration;
  }
  EXPECT_NE(testing::read_text(dir_ / "straight" / "log.jsonl")
                .find("tensors channels-last (runtime.memory_format channels_last)"),
            std::string::npos);
  EXPECT_EQ(testing::read_text(dir_ / "plain" / "log.jsonl").find("channels-last"),
            std::string::npos);
  const TrainedModel trained =
      load_trained_model(dir_ / "straight" / "model_final.pt", torch::kCPU);
  for (const auto& p : trained.model->parameters()) EXPECT_TRUE(p.is_contiguous());
}

TEST_F(TrainTest, ChannelsLastIsChosenOnlyWhereAskedOrForBf16OnTheCpu) {
  const torch::Device cpu(torch::kCPU), gpu(torch::kCUDA, 0);
  using P = InferencePrecision;
  EXPECT_TRUE(use_channels_last(MemoryFormatChoice::kAuto, P::kBFloat16, cpu));
  EXPECT_FALSE(use_channels_last(MemoryFormatChoice::kAuto, P::kFloat32, cpu));
  EXPECT_FALSE(use_channels_last(MemoryFormatChoice::kAuto, P::kBFloat16, gpu));
  EXPECT_FALSE(use_channels_last(MemoryFormatChoice::kContiguous, P::kBFloat16, cpu));
  EXPECT_TRUE(use_channels_last(MemoryFormatChoice::kChannelsLast, P::kFloat32, cpu));

  // The conversion keeps every value and shape and the model's outputs.
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 5, 3).padding(1)),
                            torch::nn::BatchNorm2d(5),
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(5, 2, 1)));
  net->eval();
  const torch::Tensor input = torch::randn({2, 3, 7, 9});
  const torch::Tensor before = net->forward(input);
  const std::vector<torch::Tensor> weights_before = [&] {
    std::vector<torch::Tensor> copies;
    for (const auto& p : net->parameters()) copies.push_back(p.clone());
    return copies;
  }();
  convert_to_channels_last(*net);
  const auto parameters = net->parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(parameters[i], weights_before[i]));
    if (parameters[i].dim() == 4) {
      EXPECT_TRUE(parameters[i].is_contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  EXPECT_TRUE(torch::allclose(net->forward(input.contiguous(torch::MemoryFormat::ChannelsLast)),
                              before, 1e-5, 1e-6));
}

TEST_F(TrainTest, BackboneWeightsStartANewRunAndAFileThatDoesNotFitLeavesTheFolderAlone) {
  train(data_->config({"solver.epochs=1"}), dir_ / "source", {});
  const TrainedModel source = load_trained_model(dir_ / "source" / "model_final.pt", torch::kCPU);
  const std::string file = (dir_ / "source.pth").string();
  write_state_dict(file, state_dict_of(*source.model));
  // A learning rate of ~0 and frozen BatchNorm: the new run ends with the weights it loaded.
  train(data_->config({"solver.epochs=1", "solver.lr=1e-12", "solver.batch_norm=frozen",
                       "model.backbone_weights=" + file}),
        dir_ / "started", {});
  const std::string log = testing::read_text(dir_ / "started" / "log.jsonl");
  EXPECT_NE(log.find("tensors loaded (CenterMask-C++ names); 0 left at their initialisation"),
            std::string::npos)
      << log;
  const TrainedModel started = load_trained_model(dir_ / "started" / "model_final.pt", torch::kCPU);
  std::map<std::string, torch::Tensor> expected;
  for (auto& [name, tensor] : state_dict_of(source.model->backbone_module()))
    expected.emplace(name, tensor);
  std::size_t compared = 0;
  for (const auto& [name, tensor] : state_dict_of(started.model->backbone_module())) {
    EXPECT_TRUE(
        torch::allclose(tensor.to(torch::kDouble), expected.at(name).to(torch::kDouble), 0, 1e-9))
        << name;
    ++compared;
  }
  EXPECT_EQ(compared, expected.size());

  // Another width: refused by file and name before the run folder exists.
  const std::string message = testing::error_message_of([&] {
    train(data_->config({"model.backbone_width=8", "model.backbone_weights=" + file}),
          dir_ / "refused", {});
  });
  EXPECT_NE(message.find("source.pth"), std::string::npos) << message;
  EXPECT_NE(message.find("stem.0.weight"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "refused"));
}

TEST_F(TrainTest, Fp16WithoutCudaIsRefusedByKeyBeforeTheRunFolderIsTouched) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available: fp16 is allowed";
  const std::string message = testing::error_message_of(
      [&] { train(data_->config({"solver.precision=fp16"}), dir_ / "run", {}); });
  EXPECT_NE(message.find("solver.precision"), std::string::npos) << message;
  EXPECT_NE(message.find("fp16"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "run" / "config.yaml"));
  const std::string unknown = testing::error_message_of(
      [&] { train(data_->config({"solver.precision=int8"}), dir_ / "run", {}); });
  EXPECT_NE(unknown.find("solver.precision"), std::string::npos) << unknown;
}

TEST_F(TrainTest, FrozenBatchNormMakesEachImagesOutputsIndependentOfItsBatch) {
  const TrainConfig config = data_->config({"model.num_classes=6"});
  torch::manual_seed(3);
  const std::shared_ptr<MetaArchitectureImpl> model = build_meta_architecture(config.model);
  const torch::Tensor images = torch::randn({4, 3, 64, 64});
  // Running statistics that are not the identity, so that using them shows.
  set_training_mode(*model, BatchNormMode::kBatch);
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 3; ++i) model->run_network(images * (i + 1));
  }
  const auto outputs_of = [&](const torch::Tensor& batch) {
    const auto out = model->run_network(batch);
    const auto& o = method_cast<CenterMaskMethodOutputs>(*out, "CenterMask").outputs;
    return std::vector<torch::Tensor>{o.heatmap_logits, o.offset, o.size, o.shape_hidden,
                                      o.saliency_logits};
  };
  set_training_mode(*model, BatchNormMode::kFrozen);
  const auto whole = outputs_of(images);
  const auto first = outputs_of(images.slice(0, 0, 2));
  const auto second = outputs_of(images.slice(0, 2, 4));
  for (std::size_t i = 0; i < whole.size(); ++i)
    EXPECT_TRUE(torch::allclose(whole[i], torch::cat({first[i], second[i]}), 1e-4, 1e-5)) << i;
  // Batch statistics: the same images in another batch give other outputs.
  set_training_mode(*model, BatchNormMode::kBatch);
  const auto batch_whole = outputs_of(images);
  const auto batch_first = outputs_of(images.slice(0, 0, 2));
  EXPECT_FALSE(torch::allclose(batch_whole[0].slice(0, 0, 2), batch_first[0], 1e-4, 1e-5));
}

TEST_F(TrainTest, UnusableDataIsNamed) {
  std::string message = testing::error_message_of(
      [&] { train(data_->config({"model.num_classes=3"}), dir_ / "a", {}); });
  EXPECT_NE(message.find("model.num_classes is 3 but data.train_json"), std::string::npos)
      << message;
  EXPECT_NE(message.find("has 6 categories"), std::string::npos) << message;

  std::filesystem::create_directories(dir_ / "empty");
  message = testing::error_message_of([&] {
    train(data_->config({"data.train_images=" + (dir_ / "empty").string()}), dir_ / "b", {});
  });
  EXPECT_NE(message.find("data.train_json"), std::string::npos) << message;
  EXPECT_NE(message.find("no usable images"), std::string::npos) << message;

  message = testing::error_message_of(
      [&] { train(data_->config({"runtime.device=cuda:7"}), dir_ / "c", {}); });
  if (!torch::cuda::is_available()) {
    EXPECT_NE(message.find("runtime.device"), std::string::npos) << message;
  }

  TrainerOptions resume;
  resume.resume = true;
  message = testing::error_message_of([&] { train(data_->config({}), dir_ / "nothing", resume); });
  EXPECT_NE(message.find("no checkpoint to resume from"), std::string::npos) << message;
}

}  // namespace
}  // namespace centermask
