// LVIS v1's federated evaluation (CocoEvalParams::rules = kLvis) on hand-made cases whose
// answers are worked out below, each beside what COCO's rules give for the same files: the
// rules, not the arithmetic, are what these cases test.

#include <gtest/gtest.h>

#include <string>

#include "centermask/common/error.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "centermask/structures/rle.h"

namespace centermask {
namespace {

// Three categories, one per frequency group; 100 × 100 images. Boxes are [x, y, w, h].
std::string lvis_gt(const std::string& images, const std::string& annotations) {
  return R"({"categories": [
    {"id": 1, "name": "frequent_thing", "frequency": "f"},
    {"id": 2, "name": "common_thing", "frequency": "c"},
    {"id": 3, "name": "rare_thing", "frequency": "r"}],
  "images": [)" +
         images + R"(], "annotations": [)" + annotations + "]}";
}

std::string image(int id, const std::string& negative, const std::string& not_exhaustive) {
  return R"({"id": )" + std::to_string(id) +
         R"(, "width": 100, "height": 100, "neg_category_ids": [)" + negative +
         R"(], "not_exhaustive_category_ids": [)" + not_exhaustive + "]}";
}

std::string box_annotation(int id, int image_id, int category_id, const std::string& box,
                           double area) {
  return R"({"id": )" + std::to_string(id) + R"(, "image_id": )" + std::to_string(image_id) +
         R"(, "category_id": )" + std::to_string(category_id) + R"(, "bbox": [)" + box +
         R"(], "area": )" + std::to_string(area) + "}";
}

std::string detection(int image_id, int category_id, const std::string& box, double score) {
  return R"({"image_id": )" + std::to_string(image_id) + R"(, "category_id": )" +
         std::to_string(category_id) + R"(, "bbox": [)" + box + R"(], "score": )" +
         std::to_string(score) + "}";
}

CocoEvalResult evaluate(const CocoDataset& gt, const std::string& results_json, EvalRules rules,
                        std::vector<int> max_detections = {}) {
  const CocoResults results = CocoResults::parse(results_json, "results.json", gt);
  CocoEvalParams params =
      rules == EvalRules::kLvis ? lvis_eval_params(IouType::kBbox) : CocoEvalParams{};
  params.iou_type = IouType::kBbox;
  if (!max_detections.empty()) params.max_detections = max_detections;
  return evaluate_coco(gt, results, params);
}

// Image 1 holds a frequent thing (small) and is verified free of common things; image 2 holds
// a common thing (medium) and a rare thing (small). Detections:
//   image 1, rare 0.95     — rare things are neither present nor verified absent in image 1:
//                            LVIS drops it; COCO counts it as a false positive.
//   image 1, frequent 0.9  — exact: a true positive.
//   image 1, common 0.8    — image 1 is verified free of common things: a false positive.
//   image 2, common 0.7    — exact: a true positive.
//   image 2, rare 0.6      — exact: a true positive.
// Common: a false positive above its true positive: precision 0 then 1/2, whose envelope is
// 1/2 at every recall level: AP 1/2. Frequent and rare: AP 1. So AP = (1 + 1/2 + 1) / 3 at
// every threshold (the boxes are exact); APr = 1, APc = 1/2, APf = 1. By size: small ground
// truth is the frequent and the rare thing (AP 1 each; the common one's is medium, ignored,
// and its category then has nothing to count); at medium only the common thing counts, and
// its false positive (a 10 × 10 box, small, unmatched) is ignored there: APm = 1. No large
// object: APl and ARl -1. Every object is found: AR 1.
TEST(LvisEvaluator, CountsDetectionsOnlyForCategoriesTheImageIsAnnotatedFor) {
  const CocoDataset gt =
      CocoDataset::parse(lvis_gt(image(1, "2", "") + "," + image(2, "", ""),
                                 box_annotation(1, 1, 1, "10, 10, 20, 20", 400) + "," +
                                     box_annotation(2, 2, 2, "50, 50, 40, 40", 1600) + "," +
                                     box_annotation(3, 2, 3, "5, 5, 30, 30", 900)),
                         "lvis.json");
  const std::string results =
      "[" + detection(1, 3, "60, 60, 10, 10", 0.95) + "," + detection(1, 1, "10, 10, 20, 20", 0.9) +
      "," + detection(1, 2, "0, 0, 10, 10", 0.8) + "," + detection(2, 2, "50, 50, 40, 40", 0.7) +
      "," + detection(2, 3, "5, 5, 30, 30", 0.6) + "]";
  const CocoEvalResult lvis = evaluate(gt, results, EvalRules::kLvis);
  ASSERT_EQ(lvis.lvis_stats.size(), static_cast<std::size_t>(kNumLvisStats));
  const double expected[kNumLvisStats] = {2.5 / 3, 2.5 / 3, 2.5 / 3, 1, 1, -1, 1,
                                          0.5,     1,       1,       1, 1, -1};
  for (int i = 0; i < kNumLvisStats; ++i)
    EXPECT_NEAR(lvis.lvis_stats[static_cast<std::size_t>(i)], expected[i], 1e-12)
        << kLvisStatNames[i];
  for (double s : lvis.stats) EXPECT_EQ(s, -1.0);  // COCO's stats do not apply
  const auto per_category = lvis.per_category_ap();
  ASSERT_EQ(per_category.size(), 3u);
  EXPECT_NEAR(per_category[2].second, 1.0, 1e-12);  // the rare thing's detection was dropped

  // COCO's rules keep the rare detection in image 1: a false positive above the true one.
  const CocoEvalResult coco = evaluate(gt, results, EvalRules::kCoco);
  EXPECT_NEAR(coco.per_category_ap()[2].second, 0.5, 1e-12);
  EXPECT_NEAR(coco.stats[0], 2.0 / 3, 1e-12);

  // The summary is LVISEval.print_results()'s.
  const std::string summary = lvis.summary_text();
  EXPECT_NE(summary.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=300 "
                         "catIds=  r] = 1.000"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("area=     l | maxDets=300 catIds=all] = -1.000"), std::string::npos)
      << summary;
}

// A category present but not annotated exhaustively: its unmatched detections are ignored
// (LVIS does not know they are wrong), its matched ones still count.
TEST(LvisEvaluator, NotExhaustiveCategoriesHaveNoFalsePositives) {
  const std::string annotations = box_annotation(1, 1, 1, "10, 10, 40, 40", 1600);
  const std::string results = "[" + detection(1, 1, "60, 60, 30, 30", 0.9) + "," +
                              detection(1, 1, "10, 10, 40, 40", 0.8) + "]";
  const CocoDataset exhaustive =
      CocoDataset::parse(lvis_gt(image(1, "", ""), annotations), "lvis.json");
  const CocoDataset not_exhaustive =
      CocoDataset::parse(lvis_gt(image(1, "", "1"), annotations), "lvis.json");
  // Exhaustive: false positive, then true positive: AP 1/2 (as the first case's common thing).
  EXPECT_NEAR(evaluate(exhaustive, results, EvalRules::kLvis).lvis_stats[0], 0.5, 1e-12);
  EXPECT_NEAR(evaluate(not_exhaustive, results, EvalRules::kLvis).lvis_stats[0], 1.0, 1e-12);
  // An unannotated detection alone in a not-exhaustive category: nothing counts, AP stays 0.
  const CocoDataset missed =
      CocoDataset::parse(lvis_gt(image(1, "", "1"), annotations), "lvis.json");
  EXPECT_NEAR(evaluate(missed, "[" + detection(1, 1, "60, 60, 30, 30", 0.9) + "]", EvalRules::kLvis)
                  .lvis_stats[0],
              0.0, 1e-12);
}

// Each image keeps its 300 highest-scoring detections across categories, before the federated
// filter: 300 confident detections of a category the image is not annotated for (dropped
// afterwards) still push out the true positive at score 0.1, so recall and AP are 0. With room
// for 301 it stays, the only detection left of its category: AP 1.
TEST(LvisEvaluator, EachImageKeepsItsHighestScoringDetectionsAcrossCategories) {
  const CocoDataset gt = CocoDataset::parse(
      lvis_gt(image(1, "", ""), box_annotation(1, 1, 1, "10, 10, 40, 40", 1600)), "lvis.json");
  std::string results = "[" + detection(1, 1, "10, 10, 40, 40", 0.1);
  for (int i = 0; i < 300; ++i) results += "," + detection(1, 2, "60, 60, 30, 30", 0.5 + i * 1e-3);
  results += "]";
  EXPECT_NEAR(evaluate(gt, results, EvalRules::kLvis).lvis_stats[0], 0.0, 1e-12);
  EXPECT_NEAR(evaluate(gt, results, EvalRules::kLvis, {301}).lvis_stats[0], 1.0, 1e-12);
  // COCO's 100 per category per image do not touch it.
  EXPECT_NEAR(evaluate(gt, results, EvalRules::kCoco).per_category_ap()[0].second, 1.0, 1e-12);

  // Within the frequent category: 300 false positives above the true one, all kept with 301:
  // precision 1/301 at recall 1, the envelope 1/301 everywhere.
  std::string same_category = "[" + detection(1, 1, "10, 10, 40, 40", 0.1);
  for (int i = 0; i < 300; ++i)
    same_category += "," + detection(1, 1, "60, 60, 30, 30", 0.5 + i * 1e-3);
  same_category += "]";
  EXPECT_NEAR(evaluate(gt, same_category, EvalRules::kLvis, {301}).lvis_stats[0], 1.0 / 301, 1e-12);
  EXPECT_NEAR(evaluate(gt, same_category, EvalRules::kLvis).lvis_stats[0], 0.0, 1e-12);
}

// The same federated rules on masks (iou_type segm): LVIS scores masks, not boxes. The first
// case again, with polygon ground truth and mask detections, and one change: image 1's frequent
// thing is a right triangle, and its first detection (0.9) is the *other* half of the same box
// (IoU of the two halves ≈ 0.05: a false positive at every threshold) before the exact
// triangle (0.85). On masks the frequent category becomes false positive, true positive: AP
// 1/2 like the common one, so AP = (1/2 + 1/2 + 1) / 3 = 2/3, APf = 1/2. On the boxes derived
// from the same masks both halves have the triangle's box: true positive, then a duplicate,
// AP 1 — the bbox figures stay the first case's.
TEST(LvisEvaluator, MasksAreScoredByTheirPixelsUnderTheSameFederatedRules) {
  std::vector<double> triangle = {10, 10, 30, 10, 10, 30};
  std::vector<double> other_half = {30, 10, 30, 30, 10, 30};
  std::vector<double> square = {50, 50, 90, 50, 90, 90, 50, 90};
  std::vector<double> rare_square = {5, 5, 35, 5, 35, 35, 5, 35};
  std::vector<double> corner = {0, 0, 10, 0, 10, 10, 0, 10};
  const auto rle_of = [](std::vector<double>& polygon) {
    return rle_from_polygon(Span<double>(polygon.data(), polygon.size()), 100, 100);
  };
  const auto polygon_annotation = [&](int id, int image_id, int category_id,
                                      std::vector<double>& polygon) {
    std::string xy;
    for (double v : polygon) xy += (xy.empty() ? "" : ", ") + std::to_string(v);
    const BoxXYWH box = rle_bbox(rle_of(polygon));
    return R"({"id": )" + std::to_string(id) + R"(, "image_id": )" + std::to_string(image_id) +
           R"(, "category_id": )" + std::to_string(category_id) + R"(, "segmentation": [[)" + xy +
           R"(]], "bbox": [)" + std::to_string(box.x) + ", " + std::to_string(box.y) + ", " +
           std::to_string(box.width) + ", " + std::to_string(box.height) + R"(], "area": )" +
           std::to_string(rle_area(rle_of(polygon))) + "}";
  };
  const auto mask_detection = [&](int image_id, int category_id, std::vector<double>& polygon,
                                  double score) {
    std::string counts;
    for (char c : rle_to_string(rle_of(polygon)))
      counts += c == '\\' ? std::string("\\\\") : std::string(1, c);
    return R"({"image_id": )" + std::to_string(image_id) + R"(, "category_id": )" +
           std::to_string(category_id) + R"(, "segmentation": {"size": [100, 100], "counts": ")" +
           counts + R"("}, "score": )" + std::to_string(score) + "}";
  };
  // The two halves overlap only along the diagonal.
  EXPECT_LT(rle_iou(rle_of(other_half), rle_of(triangle), false), 0.1);
  const CocoDataset gt = CocoDataset::parse(
      lvis_gt(image(1, "2", "") + "," + image(2, "", ""),
              polygon_annotation(1, 1, 1, triangle) + "," + polygon_annotation(2, 2, 2, square) +
                  "," + polygon_annotation(3, 2, 3, rare_square)),
      "lvis.json");
  const std::string results_json =
      "[" + mask_detection(1, 3, corner, 0.95) + "," + mask_detection(1, 1, other_half, 0.9) + "," +
      mask_detection(1, 1, triangle, 0.85) + "," + mask_detection(1, 2, corner, 0.8) + "," +
      mask_detection(2, 2, square, 0.7) + "," + mask_detection(2, 3, rare_square, 0.6) + "]";
  const CocoResults results = CocoResults::parse(results_json, "results.json", gt);
  const CocoEvalResult segm = evaluate_coco(gt, results, lvis_eval_params(IouType::kSegm));
  ASSERT_EQ(segm.lvis_stats.size(), static_cast<std::size_t>(kNumLvisStats));
  // AP, AP50, AP75, APs, APm, APl, APr, APc, APf, AR, ARs, ARm, ARl. By size: the small ground
  // truth is the triangle (AP 1/2) and the rare square (AP 1): APs 3/4; the medium one the
  // common square (its false positive, a small 10 × 10 mask, is outside the range): APm 1.
  const double expected[kNumLvisStats] = {2.0 / 3, 2.0 / 3, 2.0 / 3, 0.75, 1, -1, 1,
                                          0.5,     0.5,     1,       1,    1, -1};
  for (int i = 0; i < kNumLvisStats; ++i)
    EXPECT_NEAR(segm.lvis_stats[static_cast<std::size_t>(i)], expected[i], 1e-12)
        << kLvisStatNames[i];
  // The rare detection in image 1 (not annotated for rare things) is dropped on masks too.
  EXPECT_NEAR(segm.per_category_ap()[2].second, 1.0, 1e-12);

  // The halves' boxes can differ from the triangle's by a pixel of rasterisation, so at IoU
  // 0.5 (not 0.95) they are the same box.
  const CocoEvalResult bbox = evaluate_coco(gt, results, lvis_eval_params(IouType::kBbox));
  EXPECT_NEAR(bbox.lvis_stats[1], 2.5 / 3, 1e-12);  // AP50: the first case's
}

TEST(LvisEvaluator, FilesWithoutLvisFieldsAreRefusedNamingTheField) {
  const std::string annotations = box_annotation(1, 1, 1, "10, 10, 40, 40", 1600);
  const std::string results = "[" + detection(1, 1, "10, 10, 40, 40", 0.9) + "]";
  const CocoDataset coco_file = CocoDataset::parse(
      R"({"categories": [{"id": 1, "name": "a", "frequency": "f"}],
          "images": [{"id": 7, "width": 100, "height": 100, "neg_category_ids": []}],
          "annotations": [)" +
          box_annotation(1, 7, 1, "10, 10, 40, 40", 1600) + "]}",
      "coco.json");
  try {
    evaluate(coco_file, "[" + detection(7, 1, "10, 10, 40, 40", 0.9) + "]", EvalRules::kLvis);
    FAIL() << "a file without not_exhaustive_category_ids was evaluated under LVIS's rules";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("images[0] (id 7) has no \"not_exhaustive_category_ids\""),
              std::string::npos)
        << e.what();
  }
  const CocoDataset no_frequency =
      CocoDataset::parse(R"({"categories": [{"id": 1, "name": "a"}], "images": [)" +
                             image(1, "", "") + R"(], "annotations": [)" + annotations + "]}",
                         "lvis.json");
  try {
    evaluate(no_frequency, results, EvalRules::kLvis);
    FAIL() << "a category without frequency was evaluated under LVIS's rules";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("(id 1, \"a\") has frequency \"\""), std::string::npos)
        << e.what();
  }
  // COCO's rules need none of it.
  EXPECT_NEAR(evaluate(no_frequency, results, EvalRules::kCoco).stats[0], 1.0, 1e-12);
}

TEST(LvisEvaluator, TheFederatedListsAndFrequencyRoundTripThroughJson) {
  const CocoDataset gt =
      CocoDataset::parse(lvis_gt(image(1, "2, 3", "1") + "," + image(2, "", ""),
                                 box_annotation(1, 1, 1, "10, 10, 40, 40", 1600)),
                         "lvis.json");
  const CocoDataset again = CocoDataset::parse(gt.to_json(), "again.json");
  ASSERT_EQ(again.images().size(), 2u);
  EXPECT_EQ(*again.images()[0].neg_category_ids, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(*again.images()[0].not_exhaustive_category_ids, (std::vector<std::int64_t>{1}));
  EXPECT_TRUE(again.images()[1].neg_category_ids->empty());
  EXPECT_EQ(again.categories()[2].frequency, "r");
  // A COCO file has none of them, and writes none.
  const CocoDataset coco = CocoDataset::parse(
      R"({"categories": [{"id": 1, "name": "a"}], "images": [{"id": 1, "width": 5, "height": 5}],
          "annotations": []})",
      "coco.json");
  EXPECT_FALSE(coco.images()[0].neg_category_ids.has_value());
  EXPECT_EQ(coco.to_json().find("neg_category_ids"), std::string::npos);
  EXPECT_EQ(coco.to_json().find("frequency"), std::string::npos);
}

}  // namespace
}  // namespace centermask
