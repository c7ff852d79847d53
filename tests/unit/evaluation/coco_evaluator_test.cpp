#include "centermask/evaluation/coco_evaluator.h"

#include <gtest/gtest.h>

#include <random>

#include "centermask/common/error.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

struct Case {
  CocoDataset gt;
  CocoResults results;
};

Case load_case(const std::string& name) {
  const std::filesystem::path dir = testing::test_data_dir() / "coco_eval" / name;
  CocoDataset gt = CocoDataset::load(dir / "gt.json");
  CocoResults results = CocoResults::load(dir / "results.json", gt);
  return {std::move(gt), std::move(results)};
}

// Re-adds detections in a different order (the evaluator must not depend on file order
// except for exact score ties, which these cases do not have within a cell).
CocoResults shuffled(const CocoResults& in, const CocoDataset& gt, unsigned seed) {
  std::vector<std::size_t> order(in.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(seed));
  CocoResults out;
  for (std::size_t i : order) {
    const CocoDetection& d = in.detections()[i];
    const Rle mask = in.mask(i);
    out.add(gt, d.image_id, d.category_id, d.score, d.bbox, d.has_mask ? &mask : nullptr);
  }
  return out;
}

TEST(CocoEvaluator, PerfectDetectionsScoreOne) {
  const Case c = load_case("perfect");
  for (IouType type : {IouType::kSegm, IouType::kBbox}) {
    CocoEvalParams params;
    params.iou_type = type;
    const CocoEvalResult r = evaluate_coco(c.gt, c.results, params);
    for (double s : r.stats) EXPECT_NEAR(s, 1.0, 1e-12);
  }
}

TEST(CocoEvaluator, IndependentOfResultOrderAndThreadCount) {
  const Case c = load_case("coco_mini_val");
  CocoEvalParams one_thread;
  one_thread.num_threads = 1;
  const CocoEvalResult reference = evaluate_coco(c.gt, c.results, one_thread);
  CocoEvalParams two_threads;
  two_threads.num_threads = 2;
  EXPECT_EQ(evaluate_coco(c.gt, c.results, two_threads).precision, reference.precision);
  const CocoResults reordered = shuffled(c.results, c.gt, 3);
  const CocoEvalResult r = evaluate_coco(c.gt, reordered, one_thread);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_NEAR(r.stats[i], reference.stats[i], 1e-12);
}

TEST(CocoEvaluator, EmptyResultsScoreZeroWhereThereIsGroundTruth) {
  const Case c = load_case("coco_mini_val");
  const CocoEvalResult r = evaluate_coco(c.gt, CocoResults{}, {});
  for (double s : r.stats) EXPECT_EQ(s, 0.0);
  for (const auto& [id, ap] : r.per_category_ap()) EXPECT_TRUE(ap == 0.0 || ap == -1.0) << id;
}

TEST(CocoEvaluator, SubsetsOfImagesAndCategories) {
  const Case c = load_case("miss_one");
  // Images 2 and 3 have every object found; image 1 misses its category-1 object, so on
  // image 1 alone category 1 scores 0 and category 2 scores 1.
  CocoEvalParams params;
  params.image_ids = {3, 2};
  EXPECT_NEAR(evaluate_coco(c.gt, c.results, params).stats[0], 1.0, 1e-12);
  params.image_ids = {1};
  EXPECT_NEAR(evaluate_coco(c.gt, c.results, params).stats[0], 0.5, 1e-12);
  params.image_ids = {};
  params.category_ids = {2};
  const CocoEvalResult only_cat2 = evaluate_coco(c.gt, c.results, params);
  ASSERT_EQ(only_cat2.category_ids, std::vector<std::int64_t>{2});
  EXPECT_EQ(only_cat2.per_category_ap().size(), 1u);
  params.category_ids = {42};
  EXPECT_THROW(evaluate_coco(c.gt, c.results, params), InputError);
  params.category_ids = {};
  params.image_ids = {12345};
  EXPECT_THROW(evaluate_coco(c.gt, c.results, params), InputError);
}

TEST(CocoEvaluator, IgnoringCategoriesMatchesAcrossClasses) {
  // Swap every detection's category: per-category AP collapses, category-agnostic AP does not.
  const Case c = load_case("perfect");
  CocoResults swapped;
  for (std::size_t i = 0; i < c.results.size(); ++i) {
    const CocoDetection& d = c.results.detections()[i];
    const Rle mask = c.results.mask(i);
    swapped.add(c.gt, d.image_id, d.category_id == 1 ? 2 : 1, d.score, d.bbox, &mask);
  }
  EXPECT_LT(evaluate_coco(c.gt, swapped, {}).stats[0], 0.1);
  CocoEvalParams agnostic;
  agnostic.use_categories = false;
  const CocoEvalResult r = evaluate_coco(c.gt, swapped, agnostic);
  EXPECT_NEAR(r.stats[0], 1.0, 1e-12);
  EXPECT_EQ(r.category_ids, std::vector<std::int64_t>{-1});
}

TEST(CocoEvaluator, SegmNeedsMasks) {
  const Case c = load_case("perfect");
  CocoResults boxes_only;
  boxes_only.add(c.gt, 1, 1, 0.9, {5, 5, 20, 20}, nullptr);
  EXPECT_THROW(evaluate_coco(c.gt, boxes_only, {}), InputError);
  CocoEvalParams bbox;
  bbox.iou_type = IouType::kBbox;
  EXPECT_NO_THROW(evaluate_coco(c.gt, boxes_only, bbox));
}

TEST(CocoEvaluator, MaxDetectionsCutsLowScores) {
  // fp_top: a false positive outranks a true positive. pycocotools' reference (expected.json)
  // has AR@1 = 0.8333 and AR@100 = 1.0; evaluating with maxDets {1} alone must reproduce the
  // AR@1 figure in every recall statistic of the "all" area.
  const Case c = load_case("fp_top");
  const CocoEvalResult full = evaluate_coco(c.gt, c.results, {});
  EXPECT_NEAR(full.stats[6], 0.8333333333333333, 1e-12);
  EXPECT_NEAR(full.stats[8], 1.0, 1e-12);
  CocoEvalParams params;
  params.max_detections = {1};
  const CocoEvalResult r = evaluate_coco(c.gt, c.results, params);
  EXPECT_NEAR(r.stats[6], full.stats[6], 1e-12);
  EXPECT_NEAR(r.stats[8], full.stats[6], 1e-12);
  EXPECT_EQ(r.max_detections, std::vector<int>{1});
}

TEST(CocoEvaluator, SummaryTextHasPycocotoolsLayout) {
  const Case c = load_case("iou_0625");
  const std::string text = evaluate_coco(c.gt, c.results, {}).summary_text();
  EXPECT_NE(
      text.find(
          " Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.300\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          " Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000\n"),
      std::string::npos)
      << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 12);
}

}  // namespace
}  // namespace centermask
