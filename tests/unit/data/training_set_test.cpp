#include "centermask/data/training_set.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "centermask/common/error.h"
#include "centermask/common/random.h"
#include "centermask/data/image_io.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

// Four images: a good one, one missing on disk, one that is not an image, one whose size
// differs from the JSON; annotations inside, partly outside, wholly outside, zero-area.
class TrainingSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cv::Mat image(30, 40, CV_8UC3, cv::Scalar(10, 20, 30));
    cv::imwrite((dir_ / "good.png").string(), image);
    cv::imwrite((dir_ / "small.jpg").string(), cv::Mat(20, 20, CV_8UC3, cv::Scalar(1, 2, 3)));
    testing::write_text(dir_ / "broken.png", "this is not a PNG at all");
    testing::write_text(dir_ / "gt.json", R"({
      "images": [
        {"id": 1, "file_name": "good.png", "height": 30, "width": 40},
        {"id": 2, "file_name": "missing.png", "height": 30, "width": 40},
        {"id": 3, "file_name": "broken.png", "height": 30, "width": 40},
        {"id": 4, "file_name": "small.jpg", "height": 30, "width": 40}],
      "categories": [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 9, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0,
         "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]},
        {"id": 2, "image_id": 1, "category_id": 5, "bbox": [35, 20, 15, 15], "area": 50, "iscrowd": 0,
         "segmentation": [[35, 20, 50, 20, 50, 35, 35, 35]]},
        {"id": 3, "image_id": 1, "category_id": 5, "bbox": [60, 5, 5, 5], "area": 25, "iscrowd": 0},
        {"id": 4, "image_id": 1, "category_id": 5, "bbox": [5, 5, 0, 4], "area": 0, "iscrowd": 0},
        {"id": 5, "image_id": 1, "category_id": 5, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 1,
         "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]},
        {"id": 6, "image_id": 2, "category_id": 5, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}]
    })");
  }
  std::shared_ptr<const CocoDataset> dataset() {
    return std::make_shared<const CocoDataset>(CocoDataset::load(dir_ / "gt.json"));
  }
  testing::TempDir dir_;
};

TEST_F(TrainingSetTest, BadImagesAndAnnotationsAreCountedOncePerKind) {
  CocoLoadReport report;
  const auto set = TrainingSet::open(dataset(), dir_.path(), {}, &report);
  ASSERT_EQ(set->size(), 1u);
  EXPECT_EQ(report.count("images missing on disk (skipped)"), 1u);
  EXPECT_EQ(report.count("images that do not decode (skipped)"), 1u);
  EXPECT_EQ(report.count("images whose size differs from the JSON (skipped)"), 1u);
  EXPECT_EQ(report.count("annotations partly outside their image (box clipped)"), 1u);
  EXPECT_EQ(report.count("annotations wholly outside their image (dropped)"), 1u);
  EXPECT_EQ(report.count("annotations with a zero-area box (dropped)"), 1u);
  EXPECT_EQ(report.count("crowd annotations (not training targets)"), 1u);

  const LoadedImage loaded = set->load(0);
  EXPECT_EQ(loaded.image_id, 1);
  EXPECT_EQ(loaded.image.rows, 30);
  ASSERT_EQ(loaded.instances.size(), 2u);
  EXPECT_EQ(loaded.instances[0].class_index, 1);  // category 9 is the second by id
  EXPECT_EQ(loaded.instances[0].mask.area(), 80);
  // The partly-outside box is clipped to the image, and so is its mask.
  EXPECT_FLOAT_EQ(loaded.instances[1].box.x1, 40.0f);
  EXPECT_FLOAT_EQ(loaded.instances[1].box.y1, 30.0f);
  EXPECT_EQ(loaded.instances[1].mask.left + loaded.instances[1].mask.width, 40);
}

TEST_F(TrainingSetTest, StrictNamesTheFileAndRecord) {
  TrainingSetOptions strict;
  strict.strict = true;
  try {
    TrainingSet::open(dataset(), dir_.path(), strict, nullptr);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("annotation id 2"), std::string::npos) << what;
  }
  // With the bad annotations gone the first problem is the missing image, named by path.
  testing::write_text(dir_ / "gt2.json", R"({
      "images": [{"id": 1, "file_name": "good.png", "height": 30, "width": 40},
                 {"id": 2, "file_name": "missing.png", "height": 30, "width": 40}],
      "categories": [{"id": 5, "name": "a"}], "annotations": []})");
  try {
    TrainingSet::open(std::make_shared<const CocoDataset>(CocoDataset::load(dir_ / "gt2.json")),
                      dir_.path(), strict, nullptr);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("image id 2"), std::string::npos) << e.what();
  }
}

TEST_F(TrainingSetTest, AnImageThatBreaksAfterOpeningIsAnErrorNamingIt) {
  const auto set = TrainingSet::open(dataset(), dir_.path(), {}, nullptr);
  testing::write_text(dir_ / "good.png", "gone bad");
  try {
    set->load(0);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("good.png"), std::string::npos);
  }
}

TEST(ImageIo, ProbeReadsPngAndJpegHeaders) {
  testing::TempDir dir;
  cv::imwrite((dir / "a.png").string(), cv::Mat(17, 23, CV_8UC3, cv::Scalar(0)));
  cv::imwrite((dir / "b.jpg").string(), cv::Mat(31, 7, CV_8UC3, cv::Scalar(0)));
  const auto a = probe_image_size(dir / "a.png");
  const auto b = probe_image_size(dir / "b.jpg");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->height, 17);
  EXPECT_EQ(a->width, 23);
  EXPECT_EQ(b->height, 31);
  EXPECT_EQ(b->width, 7);
  std::string why;
  testing::write_text(dir / "t.png", std::string("\x89PNG\r\n\x1a\n", 8) + "abc");
  EXPECT_FALSE(probe_image_size(dir / "t.png", &why));
  EXPECT_EQ(why, "PNG header is truncated");
  testing::write_text(dir / "empty.jpg", "");
  EXPECT_FALSE(probe_image_size(dir / "empty.jpg", &why));
  EXPECT_FALSE(probe_image_size(dir / "nope.png", &why));
}

TEST(RleToPatch, MatchesFullDecodeOnRandomMasksAndWindows) {
  Rng rng(11);
  for (int trial = 0; trial < 50; ++trial) {
    const int h = static_cast<int>(rng.uniform_int(1, 23)),
              w = static_cast<int>(rng.uniform_int(1, 19));
    std::vector<std::uint8_t> bitmap(static_cast<std::size_t>(h * w));
    for (auto& b : bitmap) b = rng.bernoulli(0.4) ? 1 : 0;
    const Rle rle = rle_encode(bitmap.data(), h, w, static_cast<std::size_t>(w));
    const int x0 = static_cast<int>(rng.uniform_int(-2, w)),
              y0 = static_cast<int>(rng.uniform_int(-2, h));
    const int x1 = static_cast<int>(rng.uniform_int(x0, w + 2)),
              y1 = static_cast<int>(rng.uniform_int(y0, h + 2));
    const MaskPatch patch = rle_to_patch(rle, x0, y0, x1, y1);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
        EXPECT_EQ(patch.at_image(x, y), inside ? bitmap[static_cast<std::size_t>(y * w + x)] : 0)
            << trial;
      }
  }
}

TEST(PatchToRle, EqualsEncodingTheFullBitmapForPatchesInsideAndPastTheImage) {
  Rng rng(12);
  for (int trial = 0; trial < 200; ++trial) {
    const int h = static_cast<int>(rng.uniform_int(1, 17)),
              w = static_cast<int>(rng.uniform_int(1, 13));
    MaskPatch patch;
    patch.left = static_cast<int>(rng.uniform_int(-4, w));
    patch.top = static_cast<int>(rng.uniform_int(-4, h));
    patch.width = static_cast<int>(rng.uniform_int(trial % 7 == 0 ? 0 : 1, 9));
    patch.height = static_cast<int>(rng.uniform_int(trial % 7 == 0 ? 0 : 1, 9));
    const double density = trial % 5 == 0 ? 1.0 : 0.5;  // all-ones patches end on a run of ones
    for (int i = 0; i < patch.width * patch.height; ++i)
      patch.pixels.push_back(rng.bernoulli(density) ? 1 : 0);
    std::vector<std::uint8_t> bitmap(static_cast<std::size_t>(h * w), 0);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        bitmap[static_cast<std::size_t>(y * w + x)] = patch.at_image(x, y);
    const Rle expected = rle_encode(bitmap.data(), h, w, static_cast<std::size_t>(w));
    EXPECT_EQ(patch_to_rle(patch, h, w).counts, expected.counts) << trial;
  }
  // An image-filling patch of ones is one run of zeros (empty) then all ones.
  MaskPatch full{0, 0, 3, 2, std::vector<std::uint8_t>(6, 1)};
  EXPECT_EQ(patch_to_rle(full, 2, 3).counts, (std::vector<std::uint32_t>{0, 6}));
  EXPECT_EQ(patch_to_rle(MaskPatch{}, 2, 3).counts, (std::vector<std::uint32_t>{6}));
}

}  // namespace
}  // namespace centermask
