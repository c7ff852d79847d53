#include "centermask/data/coco_dataset.h"

#include <gtest/gtest.h>

#include <cmath>

#include "centermask/common/error.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

// Non-contiguous category ids, an image without annotations, all three mask formats.
const char* kDataset = R"({
  "info": {"description": "test"},
  "images": [
    {"id": 7, "file_name": "a.jpg", "height": 20, "width": 30},
    {"id": 3, "file_name": "caf\u00e9.png", "height": 10, "width": 10},
    {"id": 9, "file_name": "empty.jpg", "height": 5, "width": 5}
  ],
  "annotations": [
    {"id": 1, "image_id": 7, "category_id": 90, "bbox": [1, 2, 10, 5], "area": 50, "iscrowd": 0,
     "segmentation": [[1, 2, 11, 2, 11, 7, 1, 7], [20, 10, 25, 10, 25, 15]]},
    {"id": 2, "image_id": 3, "category_id": 5, "bbox": [0, 0, 10, 10], "area": 4, "iscrowd": 1,
     "segmentation": {"size": [10, 10], "counts": [0, 2, 8, 2, 88]}},
    {"id": 3, "image_id": 7, "category_id": 5, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0,
     "segmentation": {"size": [20, 30], "counts": "01gb0"}}
  ],
  "categories": [{"id": 90, "name": "toothbrush"}, {"id": 5, "name": "car", "supercategory": "vehicle"}]
})";

std::string error_of(const std::string& json, CocoLoadOptions options = {}) {
  try {
    CocoDataset::parse(json, "gt.json", options);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(CocoDataset, ParsesRecordsAndMapsCategoriesToContiguousClasses) {
  const CocoDataset d = CocoDataset::parse(kDataset, "gt.json");
  ASSERT_EQ(d.images().size(), 3u);
  EXPECT_EQ(d.images()[1].file_name, "caf\xC3\xA9.png");
  ASSERT_EQ(d.num_classes(), 2u);
  EXPECT_EQ(d.categories()[0].id, 5);  // sorted by id
  EXPECT_EQ(d.categories()[0].supercategory, "vehicle");
  EXPECT_EQ(d.class_index(5), 0);
  EXPECT_EQ(d.class_index(90), 1);
  EXPECT_EQ(d.class_index(1), -1);
  EXPECT_EQ(d.image_index(9), 2);
  EXPECT_TRUE(d.annotations_of_image(2).empty());  // kept though it has no annotations
  ASSERT_EQ(d.annotations_of_image(0).size(), 2u);
  EXPECT_EQ(d.annotations()[0].class_index, 1);
  EXPECT_TRUE(d.annotations()[1].iscrowd);
  EXPECT_EQ(d.annotations()[0].segmentation_format, SegmentationFormat::kPolygons);
  EXPECT_EQ(d.polygons(0).size(), 2u);
  EXPECT_EQ(d.annotations()[1].segmentation_format, SegmentationFormat::kRle);
  EXPECT_EQ(d.annotations()[2].segmentation_format, SegmentationFormat::kCompressedRle);
}

TEST(CocoDataset, MasksHaveTheImageSize) {
  const CocoDataset d = CocoDataset::parse(kDataset, "gt.json");
  const Rle polygons = d.mask(0);
  EXPECT_EQ(polygons.height, 20);
  EXPECT_EQ(polygons.width, 30);
  EXPECT_EQ(rle_area(polygons), 50u + rle_area(rle_from_polygon(d.polygons(0)[1], 20, 30)));
  EXPECT_EQ(rle_area(d.mask(1)), 4u);
  EXPECT_EQ(d.mask(2).height, 20);
}

TEST(CocoDataset, SaveAndLoadRoundTrip) {
  const CocoDataset d = CocoDataset::parse(kDataset, "gt.json");
  testing::TempDir dir;
  d.save(dir / "out.json");
  const CocoDataset e = CocoDataset::load(dir / "out.json");
  ASSERT_EQ(e.annotations().size(), d.annotations().size());
  for (std::size_t i = 0; i < d.annotations().size(); ++i) {
    EXPECT_EQ(e.mask(i), d.mask(i));
    EXPECT_EQ(e.annotations()[i].bbox, d.annotations()[i].bbox);
    EXPECT_EQ(e.annotations()[i].segmentation_format, d.annotations()[i].segmentation_format);
  }
  EXPECT_EQ(e.images()[1].file_name, d.images()[1].file_name);
  EXPECT_EQ(e.to_json(), d.to_json());
  // Nothing but the target is left in the folder (the temp file was renamed).
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(CocoDataset, MalformedJsonNamesFileAndLine) {
  std::string message = error_of("{\"images\": [\n{\"id\": 1,, }]}");
  EXPECT_NE(message.find("gt.json: byte"), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  message = error_of(std::string(kDataset).substr(0, 300));
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
  message = error_of("[]");
  EXPECT_NE(message.find("results file"), std::string::npos) << message;
}

TEST(CocoDataset, MissingAndMistypedFieldsAreNamed) {
  EXPECT_NE(error_of(R"({"images": [{"id": 1, "width": 5}]})")
                .find("images[0]: required field \"height\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"images": [{"id": "1", "height": 5, "width": 5}]})")
                .find("images[0].id: expected a number, found a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"images": [{"id": 1, "height": 0, "width": 5}]})")
                .find("not a valid image dimension"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"annotations": [{"id": 1, "image_id": 1}]})").find("\"category_id\" is missing"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"({"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]})")
          .find("annotations[0].bbox: expected 4 numbers"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"({"annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": 5}]})")
          .find("annotations[0].segmentation"),
      std::string::npos);
}

TEST(CocoDataset, UnknownIdsAndDuplicatesAreErrors) {
  const std::string images =
      R"("images": [{"id": 1, "height": 5, "width": 5}], "categories": [{"id": 1, "name": "a"}])";
  EXPECT_NE(
      error_of("{" + images + R"(, "annotations": [{"id": 1, "image_id": 2, "category_id": 1}]})")
          .find("image_id 2 is not in \"images\""),
      std::string::npos);
  EXPECT_NE(
      error_of("{" + images + R"(, "annotations": [{"id": 1, "image_id": 1, "category_id": 3}]})")
          .find("category_id 3"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          "{" + images +
          R"(, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "area": 1}, {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "area": 1}]})")
          .find("duplicate annotation id"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"({"images": [{"id": 1, "height": 5, "width": 5}, {"id": 1, "height": 5, "width": 5}]})")
          .find("duplicate image id"),
      std::string::npos);
}

TEST(CocoDataset, RleProblemsAreErrors) {
  const std::string head =
      R"({"images": [{"id": 1, "height": 4, "width": 5}], "categories": [{"id": 1, "name": "a"}], "annotations": [{"id": 8, "image_id": 1, "category_id": 1, "bbox": [0,0,1,1], "area": 1, "segmentation": )";
  std::string message = error_of(head + R"({"size": [5, 4], "counts": [20]}}]})");
  EXPECT_NE(message.find("annotations[0] (id 8): segmentation.size is [5, 4] but image 1 is 4x5"),
            std::string::npos)
      << message;
  message = error_of(head + R"({"size": [4, 5], "counts": "!!"}}]})");
  EXPECT_NE(message.find("annotation id 8: segmentation.counts: corrupt compressed RLE"),
            std::string::npos)
      << message;
  message = error_of(head + R"({"size": [4, 5], "counts": [3, 4]}}]})");
  EXPECT_NE(message.find("cover 7 pixels"), std::string::npos) << message;
  message = error_of(head + R"({"counts": [20]}}]})");
  EXPECT_NE(message.find("without \"size\""), std::string::npos) << message;
}

TEST(CocoDataset, DegeneratePolygonsAreCountedOrStrictErrors) {
  const std::string json =
      R"({"images": [{"id": 1, "height": 10, "width": 10}], "categories": [{"id": 1, "name": "a"}], "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0,0,5,5], "area": 25, "segmentation": [[0, 0, 5, 5], [0, 0, 5, 0, 5, 5, 0, 5]]},
    {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0,0,5,5], "area": 25, "segmentation": [[1, 1]]},
    {"id": 3, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 4, 0, 4, 3, 0, 3]]}]})";
  CocoLoadReport report;
  const CocoDataset d = CocoDataset::parse(json, "gt.json", {}, &report);
  EXPECT_EQ(report.count("polygons with fewer than 3 points (dropped)"), 2u);
  EXPECT_EQ(report.count("annotations without a usable mask"), 1u);
  EXPECT_EQ(d.polygons(0).size(), 1u);
  EXPECT_EQ(d.annotations()[1].segmentation_format, SegmentationFormat::kNone);
  // Missing bbox and area are derived from the mask.
  EXPECT_EQ(d.annotations()[2].area, 12);
  EXPECT_EQ(d.annotations()[2].bbox, (BoxXYWH{0, 0, 4, 3}));
  EXPECT_EQ(report.count("annotations without \"area\" (computed from the mask)"), 1u);
  ASSERT_FALSE(report.lines().empty());
  EXPECT_NE(report.lines()[0].find("first: "), std::string::npos);

  const std::string message = error_of(json, CocoLoadOptions{true});
  EXPECT_NE(message.find("annotation id 1 polygon 0"), std::string::npos) << message;
}

TEST(CocoDataset, EmptyDatasetAndMissingFile) {
  const CocoDataset d = CocoDataset::parse("{}", "gt.json");
  EXPECT_TRUE(d.images().empty());
  try {
    CocoDataset::load("/nonexistent/gt.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/gt.json: cannot open"), std::string::npos);
  }
}

TEST(CocoDataset, LoadsRealCocoSubsetWhenShared) {
  const std::filesystem::path path = testing::shared_dir() / "data" / "coco_mini" / "val.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no ../shared/data/coco_mini";
  CocoLoadReport report;
  const CocoDataset d = CocoDataset::load(path, {}, &report);
  EXPECT_EQ(d.images().size(), 79u);
  EXPECT_EQ(d.num_classes(), 80u);
  std::size_t crowd = 0, close = 0;
  for (std::size_t a = 0; a < d.annotations().size(); ++a) {
    crowd += d.annotations()[a].iscrowd;
    // Rasterised areas stay close to COCO's recorded areas. Not always: COCO's area field
    // counts overlapping polygon parts twice, so this holds for the large majority only.
    const double area = static_cast<double>(rle_area(d.mask(a)));
    close += std::fabs(area - d.annotations()[a].area) <= 0.1 * d.annotations()[a].area + 30;
  }
  EXPECT_GT(crowd, 0u);
  EXPECT_GE(static_cast<double>(close), 0.95 * static_cast<double>(d.annotations().size()));
}

}  // namespace
}  // namespace centermask
