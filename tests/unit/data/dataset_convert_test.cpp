// The converters (labelme, YOLO segmentation, instance-id PNGs) and check-data on files written
// here: masks come back exactly as drawn, classes and grouping as the formats define them, and
// every malformed file is named with its field or line.

#include "centermask/data/dataset_convert.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "centermask/common/error.h"
#include "centermask/data/data_check.h"
#include "centermask/structures/rle.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

void write_blank_image(const std::filesystem::path& path, int height, int width) {
  std::filesystem::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), cv::Mat(height, width, CV_8UC3, cv::Scalar(40, 80, 120))));
}

Rle polygons_mask(const std::vector<std::vector<double>>& polygons, int height, int width) {
  std::vector<Span<double>> spans;
  for (const auto& p : polygons) spans.emplace_back(p.data(), p.size());
  return rle_from_polygons(spans, height, width);
}

// The dataset written and read back, as a user's next command would read it.
CocoDataset saved_and_loaded(const CocoDataset& dataset, const testing::TempDir& dir) {
  std::filesystem::create_directories(dir / "coco");  // not beside the labelme files
  dataset.save(dir / "coco" / "out.json");
  return CocoDataset::load(dir / "coco" / "out.json");
}

TEST(ConvertLabelme, PolygonsRectanglesAndGroupsBecomeInstancesOfSortedClasses) {
  const testing::TempDir dir;
  write_blank_image(dir / "a.png", 30, 40);
  write_blank_image(dir / "b.png", 30, 40);
  testing::write_text(dir / "a.json", R"({"version": "5.2.1", "flags": {}, "shapes": [
    {"label": "dog", "points": [[2, 2], [20, 3], [10, 25]], "group_id": null, "shape_type": "polygon"},
    {"label": "cat", "points": [[25, 5], [35, 15]], "group_id": null, "shape_type": "rectangle"},
    {"label": "dog", "points": [[30, 20], [38, 20], [34, 28]], "group_id": 7, "shape_type": "polygon"},
    {"label": "dog", "points": [[22, 20], [28, 20], [25, 27]], "group_id": 7, "shape_type": "polygon"},
    {"label": "dog", "points": [[1, 1], [5, 5]], "group_id": null, "shape_type": "line"},
    {"label": "__ignore__", "points": [[1, 1], [5, 1], [5, 5]], "group_id": null}
  ], "imagePath": "a.png", "imageData": "aGVsbG8=", "imageHeight": 30, "imageWidth": 40})");
  // No size in the file: read from the image's header.
  testing::write_text(dir / "b.json", R"({"shapes": [], "imagePath": "..\\)" +
                                          dir.path().filename().string() + R"(\\b.png"})");
  ConversionSummary summary;
  const CocoDataset d = saved_and_loaded(convert_labelme(dir.path(), {}, &summary), dir);
  ASSERT_EQ(d.categories().size(), 2u);
  EXPECT_EQ(d.categories()[0].name, "cat");  // sorted
  EXPECT_EQ(d.categories()[1].name, "dog");
  ASSERT_EQ(d.images().size(), 2u);
  EXPECT_EQ(d.images()[1].height, 30);
  EXPECT_EQ(d.images()[1].width, 40);
  EXPECT_EQ(summary.images_without_annotations, 1u);
  EXPECT_EQ(summary.skipped.at("labelme shape_type 'line' (not an area)"), 1u);
  EXPECT_EQ(summary.skipped.at("labelme label '__ignore__'"), 1u);
  ASSERT_EQ(d.annotations().size(), 3u);  // the two shapes of group 7 are one instance
  EXPECT_EQ(d.mask(0), polygons_mask({{2, 2, 20, 3, 10, 25}}, 30, 40));
  EXPECT_EQ(d.annotations()[1].category_id, 1);
  EXPECT_EQ(d.mask(1), polygons_mask({{25, 5, 35, 5, 35, 15, 25, 15}}, 30, 40));
  EXPECT_EQ(d.mask(2), polygons_mask({{30, 20, 38, 20, 34, 28}, {22, 20, 28, 20, 25, 27}}, 30, 40));
  EXPECT_DOUBLE_EQ(d.annotations()[2].area, static_cast<double>(rle_area(d.mask(2))));
  // Classes given: their order; a label outside them is named.
  const CocoDataset ordered = convert_labelme(dir.path(), {"dog", "cat"});
  EXPECT_EQ(ordered.categories()[0].name, "dog");
  const std::string unknown =
      testing::error_message_of([&] { convert_labelme(dir.path(), {"dog"}); });
  EXPECT_NE(unknown.find("a.json"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("shapes[1].label"), std::string::npos) << unknown;
}

TEST(ConvertLabelme, MalformedFilesAreNamedWithTheirField) {
  const testing::TempDir dir;
  testing::write_text(
      dir / "x.json",
      R"({"shapes": [{"label": "a", "points": [[1, 2, 3]]}], "imagePath": "x.png"})");
  std::string message = testing::error_message_of([&] { convert_labelme(dir.path(), {}); });
  EXPECT_NE(message.find("x.json"), std::string::npos) << message;
  EXPECT_NE(message.find("points"), std::string::npos) << message;
  testing::write_text(dir / "x.json", R"({"shapes": [], "imagePath": "missing.png"})");
  message = testing::error_message_of([&] { convert_labelme(dir.path(), {}); });
  EXPECT_NE(message.find("imagePath"), std::string::npos) << message;
  testing::write_text(dir / "x.json", R"({"shapes": [)");
  message = testing::error_message_of([&] { convert_labelme(dir.path(), {}); });
  EXPECT_NE(message.find("x.json: byte"), std::string::npos) << message;
  const testing::TempDir empty;
  message = testing::error_message_of([&] { convert_labelme(empty.path(), {}); });
  EXPECT_NE(message.find("no labelme .json files"), std::string::npos) << message;
}

TEST(ConvertYolo, NormalisedPolygonsRoundTripToPixelMasks) {
  const testing::TempDir dir;
  write_blank_image(dir / "images/p.jpg", 50, 100);
  write_blank_image(dir / "images/q.png", 50, 100);  // no label file: an image without objects
  testing::write_text(dir / "labels/p.txt",
                      "1 0.1 0.2 0.5 0.2 0.3 0.9\n\n0 0.6 0.1 0.9 0.1 0.9 0.5 0.6 0.5\n");
  ConversionSummary summary;
  const CocoDataset d = saved_and_loaded(
      convert_yolo_segmentation(dir / "images", dir / "labels", {"box", "tri"}, &summary), dir);
  ASSERT_EQ(d.annotations().size(), 2u);
  EXPECT_EQ(summary.images_without_annotations, 1u);
  EXPECT_EQ(d.images()[0].file_name, "p.jpg");
  EXPECT_EQ(d.annotations()[0].category_id, 2);
  EXPECT_EQ(d.mask(0), polygons_mask({{10, 10, 50, 10, 30, 45}}, 50, 100));
  EXPECT_EQ(d.mask(1), polygons_mask({{60, 5, 90, 5, 90, 25, 60, 25}}, 50, 100));

  testing::write_text(dir / "labels/p.txt", "0 0.5 0.5 0.2 0.2\n");
  std::string message = testing::error_message_of([&] {
    convert_yolo_segmentation(dir / "images", dir / "labels", {"box", "tri"});
  });
  EXPECT_NE(message.find("p.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  EXPECT_NE(message.find("is a box"), std::string::npos) << message;
  testing::write_text(dir / "labels/p.txt",
                      "0 0.1 0.1 0.5 0.1 0.5 0.5\n2 0.1 0.1 0.5 0.1 0.5 0.5\n");
  message = testing::error_message_of([&] {
    convert_yolo_segmentation(dir / "images", dir / "labels", {"box", "tri"});
  });
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  EXPECT_NE(message.find("class 2"), std::string::npos) << message;
  testing::write_text(dir / "labels/p.txt", "0 0.1 0.1 1.5 0.1 0.5 0.5\n");
  message = testing::error_message_of([&] {
    convert_yolo_segmentation(dir / "images", dir / "labels", {"box", "tri"});
  });
  EXPECT_NE(message.find("outside [0, 1]"), std::string::npos) << message;
}

TEST(ConvertInstancePngs, IdsBecomeMasksExactlyWithClassesFromTheDivisor) {
  const testing::TempDir dir;
  write_blank_image(dir / "images/s.png", 20, 30);
  cv::Mat ids(20, 30, CV_16UC1, cv::Scalar(0));
  ids(cv::Rect(2, 3, 5, 4)).setTo(26001);    // car 1
  ids(cv::Rect(10, 3, 6, 6)).setTo(26002);   // car 2
  ids(cv::Rect(20, 10, 4, 8)).setTo(24001);  // person 1
  ids(cv::Rect(0, 18, 30, 2)).setTo(7);      // a region (below the divisor): skipped
  ids.at<std::uint16_t>(0, 29) = 255;        // ignored
  std::filesystem::create_directories(dir / "masks");
  ASSERT_TRUE(cv::imwrite((dir / "masks/s.png").string(), ids));
  InstancePngOptions options;
  options.id_divisor = 1000;
  options.class_names_by_value = {{24, "person"}, {26, "car"}};
  options.ignore_value = 255;
  ConversionSummary summary;
  const CocoDataset d = saved_and_loaded(
      convert_instance_pngs(dir / "images", dir / "masks", options, &summary), dir);
  ASSERT_EQ(d.annotations().size(), 3u);
  EXPECT_EQ(summary.skipped.at("values below --id-divisor (regions, not instances)"), 1u);
  const std::int32_t values[] = {24001, 26001, 26002};  // ascending values
  const char* classes[] = {"person", "car", "car"};
  for (std::size_t i = 0; i < 3; ++i) {
    cv::Mat bitmap = ids == values[i];
    EXPECT_EQ(d.mask(i), rle_encode(bitmap.data, 20, 30, bitmap.step)) << i;
    EXPECT_EQ(d.categories()[static_cast<std::size_t>(d.annotations()[i].class_index)].name,
              classes[i]);
  }
  // A mask of another size than its image is named.
  ASSERT_TRUE(cv::imwrite((dir / "masks/s.png").string(), cv::Mat(10, 30, CV_8UC1, cv::Scalar(1))));
  const std::string message = testing::error_message_of(
      [&] { convert_instance_pngs(dir / "images", dir / "masks", options); });
  EXPECT_NE(message.find("s.png"), std::string::npos) << message;
  EXPECT_NE(message.find("is 10x30"), std::string::npos) << message;
}

// The validation split: every N-th image by file name (not by id or file order), each with
// its own annotations in every mask format, masks and categories unchanged, nothing lost.
TEST(SplitEveryNth, TakesEveryNthFileNameWithItsObjectsAndKeepsMasksAndCategories) {
  CocoDatasetBuilder builder;
  builder.add_category({3, "cat", "animal"});
  builder.add_category({7, "dog", "animal"});
  // Ids in reverse of the names' order, so that a split by id or by position would differ.
  const std::vector<std::string> names = {"g.jpg", "f.jpg", "e.jpg", "d.jpg",
                                          "c.jpg", "b.jpg", "a.jpg"};
  for (std::size_t i = 0; i < names.size(); ++i)
    builder.add_image({static_cast<std::int64_t>(i + 1), names[i], 20, 30});
  const std::vector<double> triangle = {2, 2, 20, 3, 10, 15};
  const Rle square = polygons_mask({{5, 5, 15, 5, 15, 15, 5, 15}}, 20, 30);
  std::int64_t next_id = 100;
  for (std::int64_t image = 1; image <= 7; ++image) {
    CocoAnnotation meta;
    meta.image_id = image;
    meta.category_id = image % 2 ? 3 : 7;
    meta.bbox = {2, 2, 18, 13};
    meta.area = 100;
    meta.id = next_id++;
    builder.add_annotation_polygons(meta, {Span<double>(triangle.data(), triangle.size())});
    meta.id = next_id++;
    builder.add_annotation_rle(meta, square);
    if (image == 5) {  // compressed RLE and a box without a mask, on one image only
      meta.id = next_id++;
      builder.add_annotation_compressed_rle(meta, rle_to_string(square), 20, 30);
      meta.id = next_id++;
      builder.add_annotation_without_mask(meta);
    }
  }
  const CocoDataset all = std::move(builder).build();
  const DatasetSplit split = split_every_nth(all, 3);
  // Sorted names a..g: ranks 2 and 5 (c.jpg, f.jpg: ids 5 and 2) are validation.
  std::vector<std::int64_t> val_ids, train_ids;
  for (const CocoImage& image : split.val.images()) val_ids.push_back(image.id);
  for (const CocoImage& image : split.train.images()) train_ids.push_back(image.id);
  std::sort(val_ids.begin(), val_ids.end());
  EXPECT_EQ(val_ids, (std::vector<std::int64_t>{2, 5}));
  EXPECT_EQ(train_ids.size(), 5u);
  EXPECT_EQ(split.val.annotations().size(), 2u + 2u + 2u);
  EXPECT_EQ(split.train.annotations().size(), all.annotations().size() - 6u);
  for (const CocoDataset* part : {&split.train, &split.val}) {
    ASSERT_EQ(part->categories().size(), 2u);
    EXPECT_EQ(part->categories()[1].name, "dog");
    for (std::size_t a = 0; a < part->annotations().size(); ++a) {
      const CocoAnnotation& got = part->annotations()[a];
      const auto original = std::find_if(all.annotations().begin(), all.annotations().end(),
                                         [&](const CocoAnnotation& o) { return o.id == got.id; });
      ASSERT_NE(original, all.annotations().end());
      const std::size_t o = static_cast<std::size_t>(original - all.annotations().begin());
      EXPECT_EQ(got.image_id, original->image_id);
      EXPECT_EQ(got.category_id, original->category_id);
      EXPECT_EQ(got.segmentation_format, original->segmentation_format);
      if (got.segmentation_format != SegmentationFormat::kNone) {
        EXPECT_EQ(part->mask(a), all.mask(o)) << got.id;
      }
    }
  }
  // Through the saved files, as convert --val-every writes them.
  const testing::TempDir dir;
  split.val.save(dir / "val.json");
  EXPECT_EQ(CocoDataset::load(dir / "val.json").annotations().size(), 6u);
  EXPECT_THROW(split_every_nth(all, 1), InputError);
  const DatasetSplit empty = split_every_nth(CocoDatasetBuilder().build(), 5);
  EXPECT_TRUE(empty.train.images().empty() && empty.val.images().empty());
}

TEST(CheckData, CountsSizesAndNamesMissingAndMisSizedImages) {
  const testing::TempDir dir;
  write_blank_image(dir / "a.png", 100, 200);
  write_blank_image(dir / "b.png", 50, 50);  // the JSON says 100x200
  testing::write_text(dir / "gt.json", R"({"images": [
      {"id": 1, "file_name": "a.png", "height": 100, "width": 200},
      {"id": 2, "file_name": "b.png", "height": 100, "width": 200},
      {"id": 3, "file_name": "c.png", "height": 100, "width": 200}],
    "categories": [{"id": 1, "name": "thing"}],
    "annotations": [
      {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 50], "area": 5000, "iscrowd": 0,
       "segmentation": [[0, 0, 100, 0, 100, 50, 0, 50]]},
      {"id": 2, "image_id": 1, "category_id": 1, "bbox": [150, 10, 4, 4], "area": 16, "iscrowd": 0,
       "segmentation": [[150, 10, 154, 10, 154, 14, 150, 14]]},
      {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 1,
       "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}]})");
  DataCheckOptions options;
  options.input_sizes = {200, 400};
  const DataCheckReport r = check_dataset(dir / "gt.json", dir.path(), options);
  EXPECT_EQ(r.images, 3);
  EXPECT_EQ(r.annotations, 3);
  EXPECT_EQ(r.crowd, 1);
  EXPECT_EQ(r.num_missing, 1);
  EXPECT_EQ(r.num_size_mismatches, 1);
  EXPECT_NE(r.size_mismatches[0].find("b.png is 50x50"), std::string::npos);
  // At 200 (scale 1): sides ~70.7 and 4 px; at 400 (scale 2): ~141 and 8.
  EXPECT_EQ(r.object_sides[0].counts[1], 1);  // 4-8 px
  EXPECT_EQ(r.object_sides[0].counts[5], 1);  // 64-128 px
  EXPECT_EQ(r.object_sides[1].counts[2], 1);  // 8-16 px
  EXPECT_EQ(r.object_sides[1].counts[6], 1);  // >=128 px
  EXPECT_DOUBLE_EQ(r.fraction_under_8px[0], 0.5);
  EXPECT_DOUBLE_EQ(r.fraction_under_8px[1], 0.0);
  EXPECT_EQ(r.recommended_input_size, 400);
  EXPECT_EQ(r.instances_per_image.counts[0], 1);  // image 3
}

}  // namespace
}  // namespace centermask
