// Checkpoints round-trip weights, optimizer state, progress, config and categories; damaged
// files, other architectures and a full disk are errors that name the file and keep what was
// there before.

#include "centermask/engine/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

#include "centermask/common/error.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

CenterMaskOptions small_model(const char* backbone = "resnet18", int classes = 3) {
  CenterMaskOptions options;
  options.num_classes = classes;
  options.backbone.name = backbone;
  options.shape_size = 8;
  return options;
}

const std::vector<CocoCategory> kCategories = {
    {1, "disc", "shape"}, {7, "ring", "shape"}, {9, "star", ""}};

// A few Adam steps so that the optimizer has state worth saving.
void take_steps(CenterMaskImpl& model, torch::optim::Optimizer& optimizer, int steps) {
  for (int i = 0; i < steps; ++i) {
    optimizer.zero_grad();
    const CenterMaskOutputs out = model.forward(torch::randn({2, 3, 64, 64}));
    (out.heatmap_logits.square().mean() + out.size.abs().mean() + out.shape_hidden.mean() +
     out.saliency_logits.mean())
        .backward();
    optimizer.step();
  }
}

TEST(Checkpoint, RoundTripsWeightsOptimizerProgressConfigAndCategories) {
  testing::TempDir dir;
  torch::manual_seed(1);
  CenterMask model(small_model());
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  take_steps(*model, optimizer, 2);
  const TrainProgress progress{17, 3, 5, 12.5};
  save_checkpoint(dir / "a.pt", *model, &optimizer, "model:\n  x: 1\n", kCategories, progress);

  const CheckpointReader reader(dir / "a.pt");
  EXPECT_EQ(reader.contents().config_yaml, "model:\n  x: 1\n");
  ASSERT_EQ(reader.contents().categories.size(), 3u);
  EXPECT_EQ(reader.contents().categories[1].id, 7);
  EXPECT_EQ(reader.contents().categories[1].name, "ring");
  EXPECT_EQ(reader.contents().categories[0].supercategory, "shape");
  EXPECT_EQ(reader.contents().progress.iteration, 17);
  EXPECT_EQ(reader.contents().progress.epoch, 3);
  EXPECT_EQ(reader.contents().progress.batch_in_epoch, 5);
  EXPECT_DOUBLE_EQ(reader.contents().progress.train_seconds, 12.5);
  EXPECT_TRUE(reader.contents().has_optimizer);

  torch::manual_seed(2);
  CenterMask restored(small_model());
  torch::optim::Adam restored_optimizer(restored->parameters(), torch::optim::AdamOptions(1e-3));
  reader.load_model(*restored);
  reader.load_optimizer(restored_optimizer);
  const auto a = model->named_parameters(), b = restored->named_parameters();
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  const auto ab = model->named_buffers(), bb = restored->named_buffers();
  for (const auto& item : ab) EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();

  // The same next step from both: identical optimizer state gives identical weights.
  torch::manual_seed(3);
  take_steps(*model, optimizer, 1);
  torch::manual_seed(3);
  take_steps(*restored, restored_optimizer, 1);
  for (const auto& item : model->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), restored->named_parameters()[item.key()])) << item.key();
}

TEST(Checkpoint, WeightsOnlyFilesLoadForPredictionButNotForResume) {
  testing::TempDir dir;
  CenterMask model(small_model());
  save_checkpoint(dir / "w.pt", *model, nullptr, "", kCategories, {});
  const CheckpointReader reader(dir / "w.pt");
  EXPECT_FALSE(reader.contents().has_optimizer);
  CenterMask other(small_model());
  reader.load_model(*other);
  torch::optim::Adam optimizer(other->parameters());
  const std::string message = testing::error_message_of([&] { reader.load_optimizer(optimizer); });
  EXPECT_NE(message.find("no optimizer state"), std::string::npos) << message;
}

TEST(Checkpoint, DamagedFilesAndOtherArchitecturesAreRefusedByName) {
  testing::TempDir dir;
  CenterMask model(small_model());
  save_checkpoint(dir / "good.pt", *model, nullptr, "", kCategories, {});
  const std::string bytes = testing::read_text(dir / "good.pt");

  testing::write_text(dir / "truncated.pt", bytes.substr(0, bytes.size() / 2));
  std::string message =
      testing::error_message_of([&] { CheckpointReader reader(dir / "truncated.pt"); });
  EXPECT_NE(message.find("truncated.pt: not a readable checkpoint"), std::string::npos) << message;

  testing::write_text(dir / "empty.pt", "");
  message = testing::error_message_of([&] { CheckpointReader reader(dir / "empty.pt"); });
  EXPECT_NE(message.find("empty.pt"), std::string::npos) << message;

  testing::write_text(dir / "text.pt", "{\"not\": \"a checkpoint\"}");
  message = testing::error_message_of([&] { CheckpointReader reader(dir / "text.pt"); });
  EXPECT_NE(message.find("text.pt: not a readable checkpoint"), std::string::npos) << message;

  message = testing::error_message_of([&] { CheckpointReader reader(dir / "missing.pt"); });
  EXPECT_NE(message.find("missing.pt: no such checkpoint file"), std::string::npos) << message;

  const CheckpointReader reader(dir / "good.pt");
  CenterMask deeper(small_model("resnet34"));
  message = testing::error_message_of([&] { reader.load_model(*deeper); });
  EXPECT_NE(message.find("good.pt: model: no weight 'backbone.layer1.2"), std::string::npos)
      << message;
  CenterMask more_classes(small_model("resnet18", 5));
  message = testing::error_message_of([&] { reader.load_model(*more_classes); });
  EXPECT_NE(message.find("has shape 3x64x1x1 in the checkpoint but 5x64x1x1"), std::string::npos)
      << message;
  CenterMask dla(small_model("dla34"));
  message = testing::error_message_of([&] { reader.load_model(*dla); });
  EXPECT_NE(message.find("another architecture"), std::string::npos) << message;
}

TEST(Checkpoint, AFullDiskLeavesThePreviousCheckpointIntact) {
  testing::TempDir dir;
  CenterMask model(small_model());
  save_checkpoint(dir / "last.pt", *model, nullptr, "first", kCategories, {1, 0, 1, 0});

  // The file-size limit makes writes fail with EFBIG past 64 KiB, as a full disk fails them
  // with ENOSPC; the checkpoint is megabytes, so the save fails part way.
  rlimit previous{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &previous), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = previous;
  small.rlim_cur = 64 << 10;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string message = testing::error_message_of([&] {
    save_checkpoint(dir / "last.pt", *model, nullptr, "second", kCategories, {2, 0, 2, 0});
  });
  setrlimit(RLIMIT_FSIZE, &previous);
  std::signal(SIGXFSZ, old_handler);

  EXPECT_NE(message.find("last.pt"), std::string::npos) << message;
  EXPECT_NE(message.find("write failed"), std::string::npos) << message;
  const CheckpointReader reader(dir / "last.pt");
  EXPECT_EQ(reader.contents().config_yaml, "first");
  EXPECT_EQ(reader.contents().progress.iteration, 1);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    files += !entry.is_directory();
  EXPECT_EQ(files, 1u) << "the temporary file was not removed";
}

}  // namespace
}  // namespace centermask
