// The public facade (centermask/predictor.h), as a C++ program uses it: a checkpoint in,
// detections out; a batch predicts what its images do one by one; a set predicts what its
// images do alone; test settings override the model's and can be changed; bad options and
// files are named.

#include "centermask/predictor.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

class PredictorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::TinyTrainingData();
    run_ = new testing::TempDir();
    train(data_->config({"solver.epochs=1"}), run_->path() / "run", {});
  }
  static void TearDownTestSuite() {
    delete run_;
    delete data_;
  }
  static std::filesystem::path checkpoint() { return run_->path() / "run" / "model_final.pt"; }
  static std::vector<cv::Mat> pictures() {
    std::vector<cv::Mat> images;
    for (const auto& file : list_image_files(data_->root() / "val"))
      images.push_back(cv::imread(file.string(), cv::IMREAD_COLOR));
    return images;
  }
  static testing::TinyTrainingData* data_;
  static testing::TempDir* run_;
};
testing::TinyTrainingData* PredictorTest::data_ = nullptr;
testing::TempDir* PredictorTest::run_ = nullptr;

void expect_same_detections(const std::vector<Instance>& a, const std::vector<Instance>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].class_index, b[k].class_index) << k;
    EXPECT_NEAR(a[k].score, b[k].score, 1e-4) << k;
    EXPECT_NEAR(a[k].box.x0, b[k].box.x0, 1e-2) << k;
    EXPECT_NEAR(a[k].box.y1, b[k].box.y1, 1e-2) << k;
  }
}

TEST_F(PredictorTest, ABatchAndASetPredictWhatTheirImagesDoAlone) {
  PredictorOptions options;
  options.score_threshold = 0.0;
  Predictor predictor(checkpoint(), options);
  EXPECT_EQ(predictor.categories().size(), 6u);
  EXPECT_EQ(predictor.class_names()[0], predictor.categories()[0].name);
  EXPECT_EQ(predictor.device_name(), "cpu");
  EXPECT_EQ(predictor.dtype_name(), std::string("fp32"));
  EXPECT_NE(predictor.description().find("CenterMask (resnet18"), std::string::npos);
  EXPECT_EQ(predictor.config().test.input_size, 64);  // the model's own

  const std::vector<cv::Mat> images = pictures();
  const auto batch = predictor.predict(images);
  ASSERT_EQ(batch.size(), images.size());
  const auto set =
      open_image_files(list_image_files(data_->root() / "val"), predictor.categories());
  std::vector<std::vector<Instance>> by_set(images.size());
  const InferenceRun run = predictor.predict_set(
      set, [&](std::size_t i, const std::vector<Instance>& found) { by_set[i] = found; });
  EXPECT_EQ(run.images, static_cast<std::int64_t>(images.size()));
  for (std::size_t i = 0; i < images.size(); ++i) {
    SCOPED_TRACE(i);
    const std::vector<Instance> alone = predictor.predict(images[i]);
    ASSERT_GT(alone.size(), 0u);
    expect_same_detections(batch[i], alone);
    expect_same_detections(by_set[i], alone);
  }
}

TEST_F(PredictorTest, TestSettingsOverrideTheModelsAndCanBeChanged) {
  PredictorOptions options;
  options.score_threshold = 0.0;
  options.top_k = 7;
  Predictor predictor(checkpoint(), options);
  const cv::Mat image = pictures()[0];
  EXPECT_EQ(predictor.predict(image).size(), 7u);
  EXPECT_EQ(predictor.config().test.top_k, 7);
  // Replaced, not added to: top_k is the model's again (100), the threshold the new one.
  PredictorOptions confident;
  confident.score_threshold = 0.99;
  predictor.set_test_settings(confident);
  EXPECT_EQ(predictor.config().test.top_k, 100);
  for (const Instance& d : predictor.predict(image)) EXPECT_GE(d.score, 0.99f);
}

TEST_F(PredictorTest, BadOptionsImagesAndFilesAreNamed) {
  PredictorOptions options;
  options.mask_threshold = 1.5;
  std::string message = testing::error_message_of([&] { Predictor(checkpoint(), options); });
  EXPECT_NE(message.find("mask_threshold must be in (0, 1), got 1.5"), std::string::npos)
      << message;
  options = {};
  options.input_size = 100;
  message = testing::error_message_of([&] { Predictor(checkpoint(), options); });
  EXPECT_NE(message.find("input_size must be a positive multiple of 32"), std::string::npos)
      << message;
  options = {};
  options.dtype = "int8";
  message = testing::error_message_of([&] { Predictor(checkpoint(), options); });
  EXPECT_NE(message.find("dtype int8"), std::string::npos) << message;
  message = testing::error_message_of([] { Predictor(run_->path() / "none.pt"); });
  EXPECT_NE(message.find("none.pt"), std::string::npos) << message;
  Predictor predictor(checkpoint());
  message = testing::error_message_of([&] { predictor.predict(cv::Mat()); });
  EXPECT_NE(message.find("non-empty 8-bit 3-channel"), std::string::npos) << message;
}

TEST_F(PredictorTest, AnUntrainedModelOfAConfigPredicts) {
  Predictor untrained = Predictor::untrained(data_->config({}), {}, {}, 3);
  EXPECT_EQ(untrained.categories().size(), 3u);
  EXPECT_EQ(untrained.class_names()[2], "class 3");
  const auto found = untrained.predict(pictures()[0]);
  for (const Instance& d : found) EXPECT_LT(d.class_index, 3);
}

}  // namespace
}  // namespace centermask
