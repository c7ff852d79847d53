// The paper's backbones through the same commands as the others (slow: Hourglass-104 has 188M
// parameters): DLA-34 with its deformable convolutions and Hourglass-104 train a step, write a
// checkpoint, evaluate, predict a folder and test a dataset.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "support/cli_runner.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

testing::CliRun run_cli(const std::string& args) {
  return testing::run_program(CENTERMASK_CLI, args);
}

class CliBackbones : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(CliBackbones, TrainPredictAndTestThroughTheSameCommands) {
  const auto& [backbone, input_size] = GetParam();
  testing::TinyTrainingData data;
  testing::TempDir dir;
  testing::write_text(data.root() / "tiny.yaml", data.config_yaml());
  // One step of batch 2; the fixed-width backbones take the default width (64).
  const std::string sets = " --set model.backbone=" + backbone +
                           " --set model.backbone_width=64 --set solver.batch_size=2"
                           " --set solver.epochs=0.17 --set data.input_size=" +
                           std::to_string(input_size) +
                           " --set test.input_size=" + std::to_string(input_size);
  const testing::CliRun trained = run_cli("train --config " + (data.root() / "tiny.yaml").string() +
                                          " --out " + (dir / "run").string() + sets);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("(" + backbone + ")"), std::string::npos) << trained.output;
  const std::string weights = (dir / "run" / "model_final.pt").string();
  ASSERT_TRUE(std::filesystem::exists(weights));

  const testing::CliRun predicted =
      run_cli("predict --weights " + weights + " --input " + (data.root() / "val").string() +
              " --out " + (dir / "pred").string());
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "pred" / "results.json"));

  const testing::CliRun tested =
      run_cli("test --weights " + weights + " --gt " + (data.root() / "val.json").string() +
              " --images " + (data.root() / "val").string() + " --json");
  ASSERT_EQ(tested.exit_code, 0) << tested.output;
  EXPECT_NE(tested.output.find("\"num_images\":4"), std::string::npos) << tested.output;

  // A size the backbone cannot take is refused by name, not run.
  const testing::CliRun odd =
      run_cli("predict --weights " + weights + " --input " + (data.root() / "val").string() +
              " --out " + (dir / "odd").string() + " --input-size 96");
  if (input_size % 128 == 0) {
    EXPECT_NE(odd.exit_code, 0) << odd.output;
    EXPECT_NE(odd.output.find("multiple of 128"), std::string::npos) << odd.output;
  }
}

INSTANTIATE_TEST_SUITE_P(PaperBackbones, CliBackbones,
                         ::testing::Values(std::pair<std::string, int>{"dla34", 64},
                                           std::pair<std::string, int>{"hourglass104", 256}),
                         [](const ::testing::TestParamInfo<std::pair<std::string, int>>& backbone) {
                           return backbone.param.first;
                         });

}  // namespace
}  // namespace centermask
