// `centermask synth` and `centermask show` as a user runs them.

#include <gtest/gtest.h>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

testing::CliRun run_cli(const std::string& args) {
  return testing::run_program(CENTERMASK_CLI, args);
}

std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    n += entry.is_regular_file() ? 1 : 0;
  return n;
}

TEST(CliSynthShow, SynthWritesADatasetAndShowDrawsIt) {
  testing::TempDir dir;
  const auto data = dir / "data";
  const testing::CliRun synth =
      run_cli("synth --out " + data.string() + " --train 6 --val 3 --size 80 --seed 5");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  EXPECT_NE(synth.output.find("train 6 images"), std::string::npos) << synth.output;
  EXPECT_EQ(count_files(data / "train"), 6u);
  EXPECT_EQ(count_files(data / "val"), 3u);

  const testing::CliRun show =
      run_cli("show --gt " + (data / "val.json").string() + " --images " + (data / "val").string() +
              " --out " + (dir / "pictures").string());
  ASSERT_EQ(show.exit_code, 0) << show.output;
  EXPECT_NE(show.output.find("Wrote 3 pictures"), std::string::npos) << show.output;
  EXPECT_EQ(count_files(dir / "pictures"), 3u);

  // Predictions beside the ground truth: use the ground truth itself as "results".
  const CocoDataset gt = CocoDataset::load(data / "val.json");
  CocoResults results;
  for (std::size_t a = 0; a < gt.annotations().size(); ++a) {
    const Rle mask = gt.mask(a);
    results.add(gt, gt.annotations()[a].image_id, gt.annotations()[a].category_id, 0.9,
                gt.annotations()[a].bbox, &mask);
  }
  results.save(dir / "results.json");
  const testing::CliRun side =
      run_cli("show --gt " + (data / "val.json").string() + " --images " + (data / "val").string() +
              " --results " + (dir / "results.json").string() + " --out " +
              (dir / "side").string() + " --image-ids 2");
  ASSERT_EQ(side.exit_code, 0) << side.output;
  EXPECT_NE(side.output.find("Wrote 1 pictures"), std::string::npos) << side.output;
  EXPECT_NE(side.output.find("right: predictions"), std::string::npos) << side.output;
}

TEST(CliSynthShow, SynthRefusesAFolderWithFiles) {
  testing::TempDir dir;
  testing::write_text(dir / "keep.txt", "mine");
  const testing::CliRun run = run_cli("synth --out " + dir.path().string() + " --train 2 --val 0");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("not empty"), std::string::npos) << run.output;
  EXPECT_EQ(testing::read_text(dir / "keep.txt"), "mine");
}

TEST(CliSynthShow, ShowNamesAMissingFile) {
  testing::TempDir dir;
  const testing::CliRun run = run_cli("show --gt " + (dir / "nope.json").string() + " --images " +
                                      dir.path().string() + " --out " + (dir / "o").string());
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("nope.json"), std::string::npos) << run.output;
}

TEST(CliSynthShow, ShowSkipsAMissingImageWithAWarning) {
  testing::TempDir dir;
  const auto data = dir / "data";
  ASSERT_EQ(run_cli("synth --out " + data.string() + " --train 0 --val 2 --size 48").exit_code, 0);
  std::filesystem::remove(data / "val" / "000001.png");
  const testing::CliRun run = run_cli("show --gt " + (data / "val.json").string() + " --images " +
                                      (data / "val").string() + " --out " + (dir / "o").string());
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("000001.png"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("Wrote 1 pictures"), std::string::npos) << run.output;
  const testing::CliRun strict =
      run_cli("show --strict --gt " + (data / "val.json").string() + " --images " +
              (data / "val").string() + " --out " + (dir / "o2").string());
  EXPECT_EQ(strict.exit_code, 1) << strict.output;
}

}  // namespace
}  // namespace centermask
