// `centermask synth`, `show` and `upper-bound` as a user runs them.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "centermask/common/json_reader.h"
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

TEST(CliSynthShow, DemoPresetGivesFewLargeObjectsAndExplicitOptionsWin) {
  testing::TempDir dir;
  const testing::CliRun demo =
      run_cli("synth --preset demo --out " + (dir / "demo").string() + " --train 12 --val 0");
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  EXPECT_NE(demo.output.find("flat style"), std::string::npos) << demo.output;
  const CocoDataset gt = CocoDataset::load(dir / "demo" / "train.json");
  std::vector<int> objects(gt.images().size(), 0);
  std::vector<double> sides;
  for (const CocoImage& image : gt.images()) {
    EXPECT_EQ(image.width, 192);
    EXPECT_EQ(image.height, 192);
  }
  for (const CocoAnnotation& a : gt.annotations()) {
    ++objects[static_cast<std::size_t>(a.image_index)];
    sides.push_back(std::max(a.bbox.width, a.bbox.height));
  }
  for (int n : objects) {
    EXPECT_GE(n, 1);
    EXPECT_LE(n, 4);
  }
  // Objects of 30-60 % of the side: the typical visible box is large (occlusion may still leave
  // a sliver of one).
  ASSERT_FALSE(sides.empty());
  std::nth_element(sides.begin(), sides.begin() + sides.size() / 2, sides.end());
  EXPECT_GE(sides[sides.size() / 2], 0.3 * 192);
  const testing::CliRun sized = run_cli("synth --preset demo --size 96 --out " +
                                        (dir / "sized").string() + " --train 2 --val 0");
  ASSERT_EQ(sized.exit_code, 0) << sized.output;
  EXPECT_EQ(CocoDataset::load(dir / "sized" / "train.json").images()[0].width, 96);
}

TEST(CliSynthShow, SynthNamesTheAllowedStyles) {
  testing::TempDir dir;
  const testing::CliRun run =
      run_cli("synth --style glossy --out " + (dir / "s").string() + " --train 1 --val 0");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("--style must be 'cluttered' or 'flat', got 'glossy'"),
            std::string::npos)
      << run.output;
  const testing::CliRun empty =
      run_cli("synth --style '' --out " + (dir / "e").string() + " --train 1 --val 0");
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_NE(empty.output.find("--style must be"), std::string::npos) << empty.output;
  const testing::CliRun cluttered = run_cli("synth --preset demo --style cluttered --out " +
                                            (dir / "c").string() + " --train 1 --val 0");
  ASSERT_EQ(cluttered.exit_code, 0) << cluttered.output;
  EXPECT_NE(cluttered.output.find("cluttered style"), std::string::npos) << cluttered.output;
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

// The upper bound swept over PolarMask's ray count (the paper's Fig. 7): one row per value,
// and more rays fit the demo preset's large shapes at least as well (measured: mean IoU 0.69
// with 18 rays, 0.75 with 72).
TEST(CliUpperBound, SweepMeasuresEachCombination) {
  testing::TempDir dir;
  const auto data = dir / "data";
  ASSERT_EQ(run_cli("synth --preset demo --out " + data.string() +
                    " --train 0 --val 3 --size 96 --seed 2")
                .exit_code,
            0);
  const std::string base = "upper-bound --gt " + (data / "val.json").string() + " --images " +
                           (data / "val").string() +
                           " --set model.meta_arch=polarmask --set model.backbone=resnet18"
                           " --input-size 128";
  const testing::CliRun run = run_cli(base + " --json --sweep model.polarmask.num_rays=18,72");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  json::Reader r(run.output, "stdout");
  r.begin_object();
  std::string_view key;
  std::vector<std::string> settings;
  std::vector<double> mean_iou;
  while (r.next_key(key)) {
    if (key != "rows") {
      r.skip_value();
      continue;
    }
    r.begin_array();
    while (r.next_element()) {
      r.begin_object();
      while (r.next_key(key)) {
        if (key == "settings") {
          r.begin_array();
          while (r.next_element()) settings.emplace_back(r.read_string());
        } else if (key == "mean_mask_iou") {
          r.begin_object();
          std::string_view range;
          while (r.next_key(range)) {
            const double value = r.read_double();
            if (range == "all") mean_iou.push_back(value);
          }
        } else {
          r.skip_value();
        }
      }
    }
  }
  EXPECT_EQ(settings, (std::vector<std::string>{"model.polarmask.num_rays=18",
                                                "model.polarmask.num_rays=72"}));
  ASSERT_EQ(mean_iou.size(), 2u);
  EXPECT_GT(mean_iou[0], 0.6);
  EXPECT_GT(mean_iou[1], mean_iou[0]);

  const testing::CliRun malformed = run_cli(base + " --sweep model.polarmask.num_rays");
  EXPECT_NE(malformed.exit_code, 0);
  EXPECT_NE(malformed.output.find("KEY=V1,V2"), std::string::npos) << malformed.output;
  // A bad value fails before anything is measured, naming its key.
  const testing::CliRun bad_value = run_cli(base + " --sweep model.polarmask.num_rays=36,25");
  EXPECT_NE(bad_value.exit_code, 0);
  EXPECT_NE(bad_value.output.find("model.polarmask.num_rays"), std::string::npos)
      << bad_value.output;
  EXPECT_EQ(bad_value.output.find("| settings"), std::string::npos) << bad_value.output;
}

// `convert` and `check-data` as a user runs them on a YOLO export: the class names from a
// data.yaml in each of its forms, or classes.txt; the summary; check-data's report and exit code.
TEST(CliSynthShow, ConvertReadsYoloClassNamesAndCheckDataReportsTheResult) {
  testing::TempDir dir;
  const testing::CliRun synth =
      run_cli("synth --out " + (dir / "data").string() + " --train 1 --val 0 --size 64 --seed 2");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  std::filesystem::create_directories(dir / "images");
  std::filesystem::path image;
  for (const auto& entry : std::filesystem::directory_iterator(dir / "data" / "train"))
    image = entry.path();
  std::filesystem::copy_file(image, dir / "images" / ("p" + image.extension().string()));
  testing::write_text(dir / "labels/p.txt", "1 0.1 0.1 0.6 0.1 0.4 0.7\n");
  const std::pair<const char*, const char*> class_files[] = {
      {"flow.yaml", "path: x\nnames: [leaf, 'bug']\n"},
      {"block.yaml", "names:\n  - leaf\n  - bug\nnc: 2\n"},
      {"map.yaml", "names:\n  0: leaf\n  1: bug\n"},
      {"classes.txt", "leaf\nbug\n\n"},
  };
  for (const auto& [name, text] : class_files) {
    testing::write_text(dir / name, text);
    const std::string out = (dir / (std::string(name) + ".json")).string();
    const testing::CliRun run = run_cli(
        "convert --from yolo-seg --images " + (dir / "images").string() + " --labels " +
        (dir / "labels").string() + " --classes " + (dir / name).string() + " --out " + out);
    ASSERT_EQ(run.exit_code, 0) << name << run.output;
    EXPECT_NE(run.output.find("1 images, 1 instances, 2 classes"), std::string::npos) << run.output;
    const CocoDataset d = CocoDataset::load(out);
    ASSERT_EQ(d.categories().size(), 2u) << name;
    EXPECT_EQ(d.categories()[1].name, "bug") << name;
    EXPECT_EQ(d.annotations()[0].category_id, 2) << name;
  }
  // A validation split on the way in: one image, so every 2nd goes nowhere and val is empty.
  const std::string yolo_in = "convert --from yolo-seg --images " + (dir / "images").string() +
                              " --labels " + (dir / "labels").string() + " --classes " +
                              (dir / "classes.txt").string() + " --out " +
                              (dir / "split_train.json").string();
  const testing::CliRun split =
      run_cli(yolo_in + " --val-every 2 --val-out " + (dir / "split_val.json").string());
  ASSERT_EQ(split.exit_code, 0) << split.output;
  EXPECT_EQ(CocoDataset::load(dir / "split_train.json").images().size(), 1u);
  EXPECT_EQ(CocoDataset::load(dir / "split_val.json").images().size(), 0u);
  EXPECT_NE(split.output.find("split_val.json: 0 images"), std::string::npos) << split.output;
  const testing::CliRun half = run_cli(yolo_in + " --overwrite --val-every 2");
  EXPECT_NE(half.exit_code, 0);
  EXPECT_NE(half.output.find("--val-every N and --val-out FILE go together"), std::string::npos)
      << half.output;
  testing::write_text(dir / "bad.yaml", "names:\n  0: leaf\n  2: bug\n");
  const testing::CliRun gap =
      run_cli("convert --from yolo-seg --images " + (dir / "images").string() + " --labels " +
              (dir / "labels").string() + " --classes " + (dir / "bad.yaml").string() + " --out " +
              (dir / "bad.json").string());
  EXPECT_NE(gap.exit_code, 0);
  EXPECT_NE(gap.output.find("bad.yaml"), std::string::npos) << gap.output;
  EXPECT_NE(gap.output.find("names.1"), std::string::npos) << gap.output;

  const std::string gt = (dir / "classes.txt.json").string();
  const testing::CliRun check =
      run_cli("check-data --gt " + gt + " --images " + (dir / "images").string());
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("per class: leaf 0, bug 1"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("every image is present"), std::string::npos) << check.output;

#ifdef CENTERMASK_TORCH_CLI
  // With a config, the ceiling at each size, tested at 1.25x: one large triangle is found at both
  // sizes (box AP 1), its mask is closer at the larger size; a config that cannot fit the set is
  // named.
  testing::write_text(dir / "model.yaml", "model:\n  backbone: resnet18\n");
  const testing::CliRun ceiling =
      run_cli("check-data --json --input-size 64,128 --threads 1 --gt " + gt + " --images " +
              (dir / "images").string() + " --config " + (dir / "model.yaml").string());
  ASSERT_EQ(ceiling.exit_code, 0) << ceiling.output;
  const std::string report = ceiling.output.substr(ceiling.output.find('{'));
  json::Reader r(report, "check-data --json");
  std::vector<std::array<double, 4>> rows;  // (input size, test size, mask AP, box AP)
  std::int64_t recommended = 0;
  r.begin_object();
  for (std::string_view key; r.next_key(key);) {
    if (key == "recommended_test_input_size") {
      recommended = r.read_int64();
    } else if (key == "ceiling") {
      r.begin_array();
      while (r.next_element()) {
        std::array<double, 4> row{};
        r.begin_object();
        for (std::string_view field; r.next_key(field);) {
          if (field == "input_size")
            row[0] = r.read_double();
          else if (field == "test_input_size")
            row[1] = r.read_double();
          else if (field == "mask_ap")
            row[2] = r.read_double();
          else if (field == "box_ap")
            row[3] = r.read_double();
          else
            r.skip_value();
        }
        rows.push_back(row);
      }
    } else {
      r.skip_value();
    }
  }
  ASSERT_EQ(rows.size(), 2u) << ceiling.output;
  EXPECT_EQ(rows[0][0], 64);
  EXPECT_EQ(rows[0][1], 96);  // 80 rounded to the stride 32
  EXPECT_EQ(rows[1][0], 128);
  EXPECT_EQ(rows[1][1], 160);
  for (const auto& row : rows) EXPECT_GT(row[3], 0.99) << row[0];
  EXPECT_GE(rows[1][2], rows[0][2]);
  EXPECT_TRUE(recommended == 96 || recommended == 160) << recommended;
  const testing::CliRun wrong_classes =
      run_cli("check-data --input-size 64 --threads 1 --gt " + gt + " --images " +
              (dir / "images").string() + " --config " + (dir / "model.yaml").string() +
              " --set model.num_classes=5");
  EXPECT_NE(wrong_classes.exit_code, 0);
  EXPECT_NE(wrong_classes.output.find("model.num_classes"), std::string::npos)
      << wrong_classes.output;
  EXPECT_NE(wrong_classes.output.find("the upper bound"), std::string::npos)
      << wrong_classes.output;
#endif
  std::filesystem::remove(dir / "images" / ("p" + image.extension().string()));
  const testing::CliRun missing =
      run_cli("check-data --gt " + gt + " --images " + (dir / "images").string());
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("missing images: 1"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace centermask
