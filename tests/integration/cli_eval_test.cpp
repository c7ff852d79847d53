// The `centermask eval` command as a user runs it: output, exit codes and error messages.

#include <gtest/gtest.h>

#include <array>
#include <cstdio>

#include "centermask/common/json_reader.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

using testing::CliRun;

CliRun run_cli(const std::string& args) { return testing::run_program(CENTERMASK_CLI, args); }

std::string case_args(const std::string& name) {
  const auto dir = testing::test_data_dir() / "coco_eval" / name;
  return "eval --gt " + (dir / "gt.json").string() + " --results " +
         (dir / "results.json").string();
}

TEST(CliEval, PrintsTheTwelveLineSummary) {
  const CliRun run = run_cli(case_args("coco_mini_val"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find(
                "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.393"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '@'), 12);
}

TEST(CliEval, JsonOutputHasStatsAndPerClass) {
  const CliRun run = run_cli(case_args("miss_one") + " --iou bbox --json --per-class");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  json::Reader r(run.output, "stdout");
  r.begin_object();
  std::string_view key;
  std::vector<double> stats;
  std::size_t classes = 0;
  while (r.next_key(key)) {
    if (key == "stats") {
      r.begin_array();
      while (r.next_element()) stats.push_back(r.read_double());
    } else if (key == "per_class") {
      r.begin_object();
      std::string_view id;
      while (r.next_key(id)) {
        r.read_double();
        ++classes;
      }
    } else {
      r.skip_value();
    }
  }
  ASSERT_EQ(stats.size(), 12u);
  EXPECT_NEAR(stats[0], 0.8316831683168316, 1e-12);
  EXPECT_EQ(classes, 2u);
}

TEST(CliEval, EmptyResultsScoreZero) {
  const CliRun run = run_cli(case_args("empty"));
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("maxDets=100 ] = 0.000"), std::string::npos);
}

TEST(CliEval, BadInputsExitNonZeroNamingFileAndRecord) {
  testing::TempDir dir;
  const auto gt = (testing::test_data_dir() / "coco_eval" / "perfect" / "gt.json").string();
  testing::write_text(dir / "broken.json",
                      "[{\"image_id\": 1,\n \"category_id\": 1, \"score\": }]");
  CliRun run = run_cli("eval --gt " + gt + " --results " + (dir / "broken.json").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("broken.json: byte"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("line 2"), std::string::npos) << run.output;

  testing::write_text(
      dir / "unknown.json",
      R"([{"image_id": 77, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}])");
  run = run_cli("eval --iou bbox --gt " + gt + " --results " + (dir / "unknown.json").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("results[0]: image_id 77 is not in the ground truth"),
            std::string::npos)
      << run.output;

  testing::write_text(dir / "boxes.json",
                      R"([{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}])");
  run = run_cli("eval --gt " + gt + " --results " + (dir / "boxes.json").string());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("bbox IoU type"), std::string::npos) << run.output;

  run = run_cli("eval --gt " + (dir / "missing.json").string() + " --results " +
                (dir / "boxes.json").string());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.output.find("missing.json"), std::string::npos) << run.output;

  run = run_cli("eval --gt " + gt + " --results " + (dir / "boxes.json").string() + " --iou mask");
  EXPECT_EQ(run.exit_code, 2) << run.output;
}

}  // namespace
}  // namespace centermask
