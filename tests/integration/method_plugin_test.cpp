// The engine is closed to change and open to new methods: a fourth method defined only in
// tests/methods/box_masks/ and registered with one register_method() call trains, resumes on
// the same loss curve, predicts, tests, ablates and has an upper bound through the commands
// themselves (centermask::cli::run, in this process, where the method is registered), with its
// own config keys, which other methods' configs cannot set.

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "box_masks.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/structures/rle.h"
#include "commands.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

// Runs `centermask ARGS...` in this process.
int run_command(std::vector<std::string> args) {
  args.insert(args.begin(), "centermask");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return cli::run(static_cast<int>(args.size()), argv.data());
}

class MethodPluginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    register_method(box_masks::registration());  // the one line that adds the method
    data_ = new testing::TinyTrainingData();
    std::string yaml = data_->config_yaml();
    const std::string centermask_keys = "  centermask:\n    head_channels: 16\n    shape_size: 8\n";
    yaml.replace(yaml.find(centermask_keys), centermask_keys.size(),
                 "  meta_arch: box_masks\n  box_masks:\n    head_channels: 8\n");
    testing::write_text(config_path(), yaml);
  }
  static void TearDownTestSuite() { delete data_; }
  static std::string config_path() { return (data_->root() / "box_masks.yaml").string(); }
  static std::string root() { return data_->root().string(); }
  static testing::TinyTrainingData* data_;
  testing::TempDir dir_;
};
testing::TinyTrainingData* MethodPluginTest::data_ = nullptr;

TEST_F(MethodPluginTest, TrainsResumesPredictsTestsAndAblatesThroughTheCommands) {
  const std::string straight = (dir_ / "straight").string(), resumed = (dir_ / "resumed").string();
  ASSERT_EQ(run_command({"train", "--config", config_path(), "--out", straight}), 0);
  // Stopped after 2 of 6 iterations, then resumed to the end: the same curve.
  ASSERT_EQ(run_command({"train", "--config", config_path(), "--out", resumed, "--set",
                         "solver.epochs=0.67"}),
            0);
  ASSERT_EQ(run_command({"train", "--resume", "--out", resumed, "--set", "solver.epochs=2"}), 0);
  const auto a = testing::logged_losses(dir_ / "straight" / "log.jsonl");
  const auto b = testing::logged_losses(dir_ / "resumed" / "log.jsonl");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), a.size());
  for (const auto& [iteration, loss] : a)
    EXPECT_NEAR(b.at(iteration), loss, 1e-5 * std::abs(loss)) << "iteration " << iteration;
  // Its own loss terms in the log, its own keys in the saved config.
  const std::string log = testing::read_text(dir_ / "straight" / "log.jsonl");
  EXPECT_NE(log.find("\"heatmap\":"), std::string::npos) << log.substr(0, 300);
  EXPECT_NE(log.find("\"size\":"), std::string::npos);
  const std::string saved = testing::read_text(dir_ / "straight" / "config.yaml");
  EXPECT_NE(saved.find("  meta_arch: box_masks\n"), std::string::npos) << saved;
  EXPECT_NE(saved.find("  box_masks:\n    head_channels: 8\n"), std::string::npos) << saved;
  EXPECT_EQ(saved.find("centermask:"), std::string::npos) << saved;

  // predict: each mask is its box.
  const std::string weights = straight + "/model_final.pt";
  ASSERT_EQ(run_command({"predict", "--weights", weights, "--input", root() + "/val", "--out",
                         (dir_ / "pred").string(), "--score-thr", "0", "--no-overlays"}),
            0);
  const CocoDataset images = CocoDataset::load(dir_ / "pred" / "images.json");
  const CocoResults results = CocoResults::load(dir_ / "pred" / "results.json", images);
  ASSERT_GT(results.size(), 0u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BoxXYWH box = rle_bbox(results.mask(i));
    EXPECT_EQ(static_cast<double>(rle_area(results.mask(i))), box.width * box.height) << i;
  }

  // test: its stats are `eval`'s of the results it wrote.
  const std::string gt = root() + "/val.json";
  ASSERT_EQ(run_command({"test", "--weights", weights, "--gt", gt, "--images", root() + "/val",
                         "--out", (dir_ / "r.json").string()}),
            0);
  EXPECT_EQ(CocoResults::load(dir_ / "r.json", CocoDataset::load(gt)).size() > 0, true);

  // upper-bound: perfect outputs decoded by its own detect(): boxes as exact as centers on 4-px
  // cells allow (most objects found at IoU 0.5), masks only boxes (less than that).
  ::testing::internal::CaptureStdout();
  const int bound = run_command({"upper-bound", "--gt", gt, "--images", root() + "/val", "--config",
                                 config_path(), "--json"});
  const std::string report = ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(bound, 0) << report;
  const auto first_stat = [&](const std::string& section) {
    const std::size_t at = report.find("[", report.find("\"" + section + "\":{\"stats\":"));
    return std::stod(report.substr(at + 1));
  };
  EXPECT_NE(report.find("\"meta_arch\":\"box_masks\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"options\":{\"head_channels\":8"), std::string::npos) << report;
  EXPECT_GT(std::stod(report.substr(report.find(",", report.find("\"bbox\"")) + 1)), 0.5)
      << report;  // box AP50
  EXPECT_LT(first_stat("segm"), first_stat("bbox")) << report;

  // ablate: its own variants.
  ASSERT_EQ(run_command({"ablate", "--config", config_path(), "--out", (dir_ / "ablation").string(),
                         "--set", "solver.epochs=0.34"}),
            0);
  const std::string table = testing::read_text(dir_ / "ablation" / "ablation.md");
  EXPECT_NE(table.find("| full |"), std::string::npos) << table;
  EXPECT_NE(table.find("| no_size_loss |"), std::string::npos) << table;
}

TEST_F(MethodPluginTest, ItsKeysAreItsOwn) {
  // Listed with every key, with its default.
  const TrainConfig config = load_train_config(config_path());
  bool listed = false;
  for (const auto& [key, doc] : config_keys())
    listed |= key == "model.box_masks.loss_weights.size" &&
              doc.find("(default 0.1)") != std::string::npos;
  EXPECT_TRUE(listed);
  EXPECT_EQ(config.model.method_options<box_masks::BoxMasksOptions>().head_channels, 8);
  // Another method's key in its config, and its key in another's, are refused by name.
  std::string message = testing::error_message_of(
      [] { load_train_config(config_path(), {"model.centermask.shape_size=16"}); });
  EXPECT_NE(message.find("model.centermask.shape_size: an option of centermask, but "
                         "model.meta_arch is box_masks"),
            std::string::npos)
      << message;
  message = testing::error_message_of([] {
    load_train_config(config_path(),
                      {"model.meta_arch=centermask", "model.box_masks.head_channels=8"});
  });
  EXPECT_NE(message.find("model.box_masks.head_channels: an option of box_masks"),
            std::string::npos)
      << message;
  message = testing::error_message_of(
      [] { load_train_config(config_path(), {"model.box_masks.head_channels=0"}); });
  EXPECT_NE(message.find("--set model.box_masks.head_channels=0: model.box_masks.head_channels: "
                         "must be ≥ 1"),
            std::string::npos)
      << message;
  EXPECT_NE(describe_known_meta_architectures().find("box_masks"), std::string::npos);
}

}  // namespace
}  // namespace centermask
