#include "centermask/data/synthetic_dataset.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "centermask/common/error.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

SyntheticDatasetOptions small_options() {
  SyntheticDatasetOptions o;
  o.image_size = 96;
  o.num_train = 12;
  o.num_val = 5;
  o.seed = 7;
  return o;
}

TEST(SyntheticDataset, SameSeedSameBytesWhateverTheThreadCount) {
  testing::TempDir a, b;
  SyntheticDatasetOptions one = small_options();
  one.threads = 1;
  SyntheticDatasetOptions two = small_options();
  two.threads = 2;
  generate_synthetic_dataset(a.path(), one);
  generate_synthetic_dataset(b.path(), two);
  for (const char* name :
       {"train.json", "val.json", "train/000000.png", "train/000011.png", "val/000004.png"})
    EXPECT_EQ(testing::read_text(a / name), testing::read_text(b / name)) << name;
}

TEST(SyntheticDataset, DifferentSeedsDifferentImages) {
  SyntheticDatasetOptions o = small_options();
  const SyntheticImage x = render_synthetic_image(o, 0, 3);
  o.seed = 8;
  const SyntheticImage y = render_synthetic_image(o, 0, 3);
  EXPECT_GT(cv::norm(x.image, y.image, cv::NORM_L1), 0.0);
  // Train and val are different streams of the same seed.
  const SyntheticImage v = render_synthetic_image(small_options(), 1, 3);
  EXPECT_GT(cv::norm(x.image, v.image, cv::NORM_L1), 0.0);
}

TEST(SyntheticDataset, VisibleMasksAreDisjointAndPartOfTheOutline) {
  SyntheticDatasetOptions o = small_options();
  for (int index = 0; index < 20; ++index) {
    const SyntheticImage image = render_synthetic_image(o, 0, index);
    cv::Mat claimed = cv::Mat::zeros(o.image_size, o.image_size, CV_8UC1);
    for (const SyntheticObject& obj : image.objects) {
      const int visible = cv::countNonZero(obj.visible_mask);
      EXPECT_GT(visible, 0);
      EXPECT_EQ(cv::countNonZero(obj.visible_mask & ~(obj.full_mask * 255)), 0)
          << "visible outside outline";
      EXPECT_EQ(cv::countNonZero(obj.visible_mask & claimed), 0)
          << "pixel in two annotations, image " << index;
      EXPECT_GE(visible + 1e-9, o.min_visible_fraction * cv::countNonZero(obj.full_mask));
      claimed |= obj.visible_mask;
    }
  }
}

TEST(SyntheticDataset, SplitHasWhatTheBenchmarkPromises) {
  testing::TempDir dir;
  SyntheticDatasetOptions o = small_options();
  o.image_size = 128;
  SyntheticSplitSummary summary;
  const CocoDataset ds = generate_synthetic_split(o, 0, 60, dir.path(), &summary);
  EXPECT_EQ(ds.images().size(), 60u);
  EXPECT_EQ(ds.num_classes(), synthetic_class_names().size());
  EXPECT_EQ(static_cast<std::int64_t>(ds.annotations().size()), summary.instances);
  EXPECT_GT(summary.small, 0);
  EXPECT_GT(summary.medium, 0);
  EXPECT_GT(summary.large, 0);
  EXPECT_GT(summary.heavily_occluded, 0);
  EXPECT_GT(summary.same_class_overlaps, 0);
  EXPECT_GT(summary.with_holes, 0);
  for (std::size_t c = 0; c < synthetic_class_names().size(); ++c)
    EXPECT_GT(summary.per_class[c], 0) << c;
  // Each annotation's area and box are those of its mask, and the image on disk has the size.
  for (std::size_t a = 0; a < ds.annotations().size(); ++a) {
    const Rle m = ds.mask(a);
    EXPECT_EQ(static_cast<double>(rle_area(m)), ds.annotations()[a].area);
    EXPECT_EQ(rle_bbox(m), ds.annotations()[a].bbox);
  }
  const cv::Mat first = cv::imread((dir / "000000.png").string());
  EXPECT_EQ(first.rows, 128);
  EXPECT_EQ(first.cols, 128);
}

TEST(SyntheticDataset, SavedJsonLoadsBackUnchanged) {
  testing::TempDir dir;
  generate_synthetic_dataset(dir.path(), small_options());
  const CocoDataset train = CocoDataset::load(dir / "train.json");
  EXPECT_EQ(train.images().size(), 12u);
  EXPECT_EQ(train.images()[0].file_name, "000000.png");
  EXPECT_EQ(train.categories()[1].name, "ring");
  const CocoDataset again = CocoDataset::parse(train.to_json(), "again");
  EXPECT_EQ(again.to_json(), train.to_json());
}

TEST(SyntheticDataset, RefusesAFolderThatHoldsFiles) {
  testing::TempDir dir;
  testing::write_text(dir / "precious.txt", "keep me");
  try {
    generate_synthetic_dataset(dir.path(), small_options());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos);
  }
  EXPECT_EQ(testing::read_text(dir / "precious.txt"), "keep me");
  generate_synthetic_dataset(dir.path(), small_options(), /*overwrite=*/true);
  EXPECT_TRUE(std::filesystem::exists(dir / "val.json"));
}

// Mean over objects of the colour spread inside the object (away from its edges, which the
// sensor blur mixes with what is next to it).
double mean_spread_inside_objects(const SyntheticImage& image) {
  double total = 0;
  int counted = 0;
  for (const SyntheticObject& object : image.objects) {
    cv::Mat inner;
    cv::erode(object.visible_mask, inner, cv::Mat::ones(5, 5, CV_8U));
    if (cv::countNonZero(inner) < 30) continue;
    cv::Scalar mean, spread;
    cv::meanStdDev(image.image, mean, spread, inner);
    total += (spread[0] + spread[1] + spread[2]) / 3;
    ++counted;
  }
  return counted ? total / counted : -1;
}

TEST(SyntheticDataset, FlatStyleHasTheSameObjectsInOneColourEach) {
  SyntheticDatasetOptions cluttered = small_options();
  cluttered.image_size = 160;
  SyntheticDatasetOptions flat = cluttered;
  flat.style = SyntheticStyle::kFlat;
  double cluttered_spread = 0, flat_spread = 0;
  int images_with_objects = 0;
  for (int index = 0; index < 12; ++index) {
    const SyntheticImage a = render_synthetic_image(cluttered, 0, index);
    const SyntheticImage b = render_synthetic_image(flat, 0, index);
    ASSERT_EQ(a.objects.size(), b.objects.size()) << index;
    for (std::size_t k = 0; k < a.objects.size(); ++k) {
      EXPECT_EQ(a.objects[k].class_index, b.objects[k].class_index);
      EXPECT_EQ(cv::norm(a.objects[k].visible_mask, b.objects[k].visible_mask, cv::NORM_L1), 0.0);
    }
    const double sa = mean_spread_inside_objects(a), sb = mean_spread_inside_objects(b);
    if (sa < 0) continue;
    cluttered_spread += sa;
    flat_spread += sb;
    ++images_with_objects;
    // One colour plus the sensor noise (sigma 4, blurred): a few levels of spread at most.
    EXPECT_LT(sb, 6.0) << index;
  }
  ASSERT_GT(images_with_objects, 3);
  // Textured objects (gradients, stripes, speckle) spread far more.
  EXPECT_GT(cluttered_spread, 2 * flat_spread);
}

TEST(SyntheticDataset, NoObjectsGivesBackgroundOnlyImages) {
  SyntheticDatasetOptions o = small_options();
  o.min_objects = 0;
  o.max_objects = 0;
  const SyntheticImage image = render_synthetic_image(o, 0, 0);
  EXPECT_TRUE(image.objects.empty());
  EXPECT_EQ(image.image.rows, o.image_size);
}

}  // namespace
}  // namespace centermask
