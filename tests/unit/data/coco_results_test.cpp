#include "centermask/data/coco_results.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>

#include "centermask/common/error.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

const char* kGroundTruth =
    R"({"images": [{"id": 1, "height": 10, "width": 10}, {"id": 2, "height": 4, "width": 6}],
  "categories": [{"id": 3, "name": "a"}], "annotations": []})";

CocoDataset ground_truth() { return CocoDataset::parse(kGroundTruth, "gt.json"); }

std::string mask_string(int h, int w, int x0, int y0, int bw, int bh) {
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(h * w), 0);
  for (int y = y0; y < y0 + bh; ++y)
    for (int x = x0; x < x0 + bw; ++x) pixels[static_cast<std::size_t>(y * w + x)] = 1;
  return rle_to_string(rle_encode(pixels.data(), h, w, static_cast<std::size_t>(w)));
}

std::string error_of(const std::string& json) {
  const CocoDataset gt = ground_truth();
  try {
    CocoResults::parse(json, "res.json", gt);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(CocoResults, AreaFollowsTheBoxWhenResultsHaveBoxes) {
  // pycocotools loadRes: the first result has a bbox, so every area is w*h of the box even
  // though the mask's area differs.
  const CocoDataset gt = ground_truth();
  const std::string m = mask_string(10, 10, 2, 2, 3, 3);
  const CocoResults r = CocoResults::parse(
      R"([{"image_id": 1, "category_id": 3, "score": 0.5, "bbox": [0, 0, 4, 5], "segmentation": {"size": [10, 10], "counts": ")" +
          m + R"("}}])",
      "res.json", gt);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r.detections()[0].area, 20);
  EXPECT_EQ(rle_area(r.mask(0)), 9u);
}

TEST(CocoResults, AreaAndBoxFollowTheMaskWithoutBoxes) {
  const CocoDataset gt = ground_truth();
  const std::string m = mask_string(10, 10, 2, 1, 3, 4);
  const CocoResults r = CocoResults::parse(
      R"([{"image_id": 1, "category_id": 3, "score": 0.5, "segmentation": {"size": [10, 10], "counts": ")" +
          m + R"("}}])",
      "res.json", gt);
  EXPECT_EQ(r.detections()[0].area, 12);
  EXPECT_EQ(r.detections()[0].bbox, (BoxXYWH{2, 1, 3, 4}));
}

TEST(CocoResults, AcceptsUncompressedRleAndPolygons) {
  const CocoDataset gt = ground_truth();
  const CocoResults r = CocoResults::parse(
      R"([{"image_id": 2, "category_id": 3, "score": 1, "segmentation": {"size": [4, 6], "counts": [4, 4, 16]}},
          {"image_id": 2, "category_id": 3, "score": 1, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}])",
      "res.json", gt);
  EXPECT_EQ(rle_area(r.mask(0)), 4u);
  EXPECT_EQ(rle_area(r.mask(1)), 4u);
}

TEST(CocoResults, EmptyListIsValid) {
  EXPECT_TRUE(CocoResults::parse("[]", "res.json", ground_truth()).empty());
}

TEST(CocoResults, SaveLoadRoundTrip) {
  const CocoDataset gt = ground_truth();
  CocoResults r;
  const Rle mask = rle_from_string(mask_string(4, 6, 1, 1, 2, 2), 4, 6);
  r.add(gt, 2, 3, 0.123456789, {1, 1, 2, 2}, &mask);
  r.add(gt, 1, 3, 0.5, {0.25, 0.5, 3, 4}, nullptr);
  EXPECT_FALSE(r.all_have_masks());
  testing::TempDir dir;
  r.save(dir / "res.json");
  const CocoResults back = CocoResults::load(dir / "res.json", gt);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.detections()[0].score, 0.123456789);
  EXPECT_EQ(back.detections()[1].bbox, (BoxXYWH{0.25, 0.5, 3, 4}));
  EXPECT_EQ(back.mask(0), mask);
  EXPECT_THROW(r.add(gt, 99, 3, 0.5, {}, nullptr), std::invalid_argument);
}

// With boxes, compressed masks stay strings until used: one with COCO's characters whose
// counts do not cover the image loads, and its decode names the file, byte and record.
TEST(CocoResults, CompressedMasksWithBoxesAreCheckedWhereDecoded) {
  const CocoDataset gt = ground_truth();
  const std::string good = mask_string(10, 10, 2, 2, 3, 3);
  const std::string json =
      R"([{"image_id": 1, "category_id": 3, "score": 0.9, "bbox": [2, 2, 3, 3], "segmentation": {"size": [10, 10], "counts": ")" +
      good + R"("}},
{"image_id": 1, "category_id": 3, "score": 0.8, "bbox": [0, 0, 1, 1], "segmentation": {"size": [10, 10], "counts": "0`1"}}])";
  // Ground truth in the same image and category, so that the evaluation needs the masks.
  const CocoDataset gt_with_object = CocoDataset::parse(
      R"({"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 3, "name": "a"}],
  "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 2, 3, 3], "area": 9,
                   "iscrowd": 0, "segmentation": [[2, 2, 5, 2, 5, 5, 2, 5]]}]})",
      "gt.json");
  const CocoResults r = CocoResults::parse(json, "res.json", gt_with_object);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(rle_area(r.mask(0)), 9u);
  std::string message;
  try {
    r.mask(1);
  } catch (const InputError& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("res.json: byte " + std::to_string(json.find("\n{") + 1) + " (line 2)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("results[1]: segmentation.counts: corrupt compressed RLE"),
            std::string::npos)
      << message;
  CocoEvalParams params;
  params.iou_type = IouType::kSegm;
  try {
    evaluate_coco(gt_with_object, r, params);
    ADD_FAILURE() << "evaluation of a corrupt mask did not fail";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
  // Characters outside COCO's alphabet, or a last count cut off, are found at load.
  for (const char* counts : {"0`1!", "0`1a"}) {
    EXPECT_NE(
        error_of(
            R"([{"image_id": 1, "category_id": 3, "score": 1, "bbox": [0,0,1,1], "segmentation": {"size": [10, 10], "counts": ")" +
            std::string(counts) + R"("}}])")
            .find("results[0]: segmentation.counts: corrupt compressed RLE"),
        std::string::npos)
        << counts;
  }
}

// COCO's alphabet holds the backslash, which JSON escapes: such strings (and any other
// escape of an alphabet character) decode to the same mask, with boxes and without.
TEST(CocoResults, EscapedCompressedMasksDecode) {
  const CocoDataset gt = ground_truth();
  // A count (or delta) of 12 + 32k starts with a backslash in COCO's string form.
  Rle expected;
  expected.height = 10;
  expected.width = 10;
  expected.counts = {2, 3, 44, 51};
  const std::string with_backslash = rle_to_string(expected);
  ASSERT_NE(with_backslash.find('\\'), std::string::npos) << with_backslash;
  ASSERT_NE(with_backslash[0], '\\');
  // Every backslash escaped as JSON requires, and the first character as a \u escape.
  std::string escaped = fmt::format("\\u{:04x}", static_cast<int>(with_backslash[0]));
  for (char c : with_backslash.substr(1))
    escaped += c == '\\' ? std::string("\\\\") : std::string(1, c);
  for (const char* box : {R"("bbox": [0, 0, 1, 1], )", ""}) {
    const CocoResults r = CocoResults::parse(
        R"([{"image_id": 1, "category_id": 3, "score": 0.5, )" + std::string(box) +
            R"("segmentation": {"size": [10, 10], "counts": ")" + escaped + R"("}}])",
        "res.json", gt);
    EXPECT_EQ(r.mask(0), expected) << box;
    EXPECT_EQ(r.compressed_mask(0), with_backslash) << box;
  }
}

// The masks point into the parsed text, which the results keep: they outlive the caller's
// string, and copies outlive the original.
TEST(CocoResults, MasksOutliveTheParsedTextAndTheOriginal) {
  const CocoDataset gt = ground_truth();
  const std::string m = mask_string(4, 6, 1, 1, 3, 2);
  auto text = std::make_unique<std::string>(
      R"([{"image_id": 2, "category_id": 3, "score": 0.5, "bbox": [1, 1, 3, 2], "segmentation": {"size": [4, 6], "counts": ")" +
      m + R"("}}])");
  auto original = std::make_unique<CocoResults>(CocoResults::parse(*text, "res.json", gt));
  text.reset();
  const CocoResults copy = *original;
  original.reset();
  EXPECT_EQ(rle_to_string(copy.mask(0)), m);
  Rle reused = rle_empty(100, 100);
  copy.mask_into(0, reused);
  EXPECT_EQ(reused, rle_from_string(m, 4, 6));
}

TEST(CocoResults, BadRecordsNameTheRecord) {
  EXPECT_NE(error_of(R"([{"image_id": 5, "category_id": 3, "score": 1, "bbox": [0,0,1,1]}])")
                .find("results[0]: image_id 5 is not in the ground truth"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 4, "score": 1, "bbox": [0,0,1,1]}])")
                .find("results[0]: category_id 4"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 3, "bbox": [0,0,1,1]}])")
                .find("\"score\" is missing"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 3, "score": NaN, "bbox": [0,0,1,1]}])")
                .find("score is not a finite"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 3, "score": 1, "bbox": [0,0,1]}])")
                .find("bbox has 3 numbers"),
            std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 3, "score": 1}])").find("neither"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          R"([{"image_id": 1, "category_id": 3, "score": 1, "segmentation": {"size": [4, 6], "counts": "0"}}])")
          .find("segmentation.size is [4, 6] but image 1 is 10x10"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"([{"image_id": 1, "category_id": 3, "score": 1, "segmentation": {"size": [10, 10], "counts": "!!!"}}])")
          .find("corrupt compressed RLE"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"([{"image_id": 1, "category_id": 3, "score": 1, "bbox": [0,0,1,1]}, {"image_id": 1, "category_id": 3, "score": 1, "segmentation": {"size": [10, 10], "counts": "0`1"}}])")
          .find("results[1]"),
      std::string::npos);
  EXPECT_NE(error_of(R"({"image_id": 1})").find("expected a list of results"), std::string::npos);
  EXPECT_NE(error_of(R"([{"image_id": 1, "category_id": 3, "score": 1, "bbox": [0,0,1,1]},)")
                .find("res.json: byte"),
            std::string::npos);
}

}  // namespace
}  // namespace centermask
