// Our evaluator against pycocotools: every case under tests/data/coco_eval was scored by the
// reference COCOeval (expected.json). All 12 stats and every per-category AP must agree
// within 1e-12, for segm and bbox: both compute the same double-precision sums in the same
// order, and expected.json holds pycocotools' values to 17 significant digits, so any larger
// difference is a difference of semantics (a match, a threshold, an interpolation), not of
// rounding. The Python package's test holds the same files to the same 1e-12.

#include <gtest/gtest.h>

#include <cmath>

#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

constexpr double kTolerance = 1e-12;

struct Expected {
  std::vector<double> stats;
  std::map<std::int64_t, double> per_class_ap;
};

// expected.json: {"segm": {"stats": [...], "per_class_AP": {"1": ...}}, "bbox": {...}, ...}
std::map<std::string, Expected> read_expected(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  json::Reader r(text, path.string());
  std::map<std::string, Expected> out;
  r.begin_object();
  std::string_view key;
  while (r.next_key(key)) {
    if (key != "segm" && key != "bbox") {
      r.skip_value();
      continue;
    }
    Expected& e = out[std::string(key)];
    r.begin_object();
    std::string_view field;
    while (r.next_key(field)) {
      if (field == "stats") {
        r.begin_array();
        while (r.next_element()) e.stats.push_back(r.read_double());
      } else if (field == "per_class_AP") {
        r.begin_object();
        std::string_view id;
        while (r.next_key(id)) {
          const std::int64_t category_id = std::stoll(std::string(id));
          e.per_class_ap[category_id] = r.read_double();
        }
      } else {
        r.skip_value();
      }
    }
  }
  return out;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& entry :
       std::filesystem::directory_iterator(testing::test_data_dir() / "coco_eval")) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class CocoEvalGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CocoEvalGoldenTest, MatchesPycocotools) {
  const std::filesystem::path dir = testing::test_data_dir() / "coco_eval" / GetParam();
  const CocoDataset gt = CocoDataset::load(dir / "gt.json");
  const CocoResults results = CocoResults::load(dir / "results.json", gt);
  const auto expected = read_expected(dir / "expected.json");
  ASSERT_FALSE(expected.empty());
  for (const auto& [iou_name, want] : expected) {
    SCOPED_TRACE(iou_name);
    CocoEvalParams params;
    params.iou_type = iou_name == "segm" ? IouType::kSegm : IouType::kBbox;
    const CocoEvalResult got = evaluate_coco(gt, results, params);
    ASSERT_EQ(want.stats.size(), 12u);
    for (std::size_t i = 0; i < 12; ++i) {
      EXPECT_NEAR(got.stats[i], want.stats[i], kTolerance) << "stat " << i;
    }
    const auto per_class = got.per_category_ap();
    ASSERT_EQ(per_class.size(), want.per_class_ap.size());
    for (const auto& [category_id, ap] : per_class) {
      auto it = want.per_class_ap.find(category_id);
      ASSERT_NE(it, want.per_class_ap.end()) << "category " << category_id;
      EXPECT_NEAR(ap, it->second, kTolerance) << "category " << category_id;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, CocoEvalGoldenTest, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           return param_info.param;
                         });

// The same cases from ../shared, when present, so that new reference cases added there are
// checked too (skips cleanly in a user's clone, which has no ../shared).
TEST(CocoEvalGoldenShared, SharedCasesAreInTheProjectCopy) {
  const std::filesystem::path shared = testing::shared_dir() / "testdata" / "coco_eval";
  if (!std::filesystem::is_directory(shared)) GTEST_SKIP() << "no ../shared/testdata/coco_eval";
  for (const auto& entry : std::filesystem::directory_iterator(shared)) {
    if (!entry.is_directory()) continue;
    const std::filesystem::path ours =
        testing::test_data_dir() / "coco_eval" / entry.path().filename();
    EXPECT_TRUE(std::filesystem::exists(ours / "expected.json"))
        << entry.path().filename() << " is in ../shared but not in tests/data/coco_eval: copy it";
  }
}

}  // namespace
}  // namespace centermask
