// The upper bound: perfect outputs decoded by the real inference path. On simple, large
// shapes at high resolution it approaches 1; it falls as the input shrinks and rises with the
// saliency resolution; a dataset without masks is refused by name.

#include "centermask/engine/upper_bound.h"

#include <gtest/gtest.h>

#include "centermask/common/error.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

using testing::TempDir;

// 16 images of 128 px with 1–3 large, mostly separate objects.
std::shared_ptr<const TrainingSet> simple_shapes(const TempDir& dir) {
  SyntheticDatasetOptions o;
  o.image_size = 128;
  o.num_train = 0;
  o.num_val = 16;
  o.min_objects = 1;
  o.max_objects = 3;
  o.overlap_probability = 0;
  o.min_extent = 0.3;
  o.max_extent = 0.6;
  o.threads = 1;
  generate_synthetic_dataset(dir.path(), o);
  auto dataset = std::make_shared<const CocoDataset>(CocoDataset::load(dir.path() / "val.json"));
  CocoLoadReport report;
  return TrainingSet::open(dataset, dir.path() / "val", {}, &report);
}

UpperBoundReport bound(const std::shared_ptr<const TrainingSet>& set, int input_size,
                       int saliency_stride, int shape_size = 32) {
  ModelConfig model;
  model.backbone = "resnet18";
  model.backbone_width = 16;
  CenterMaskOptions& centermask = model.method_options<CenterMaskOptions>("centermask");
  centermask.shape_size = shape_size;
  centermask.saliency_stride = saliency_stride;
  TestConfig test;
  test.input_size = input_size;
  return compute_upper_bound(model, set, test, "val.json", 1);
}

TEST(UpperBound, NearOneAtHighResolutionAndFallsAsTheInputShrinks) {
  TempDir dir;
  const auto set = simple_shapes(dir);
  const UpperBoundReport fine = bound(set, 256, 1, 64);
  EXPECT_EQ(fine.images, 16);
  EXPECT_GT(fine.bbox.stats[0], 0.95);
  EXPECT_GT(fine.segm.stats[0], 0.9);
  EXPECT_GT(fine.mean_mask_iou[0], 0.93);
  EXPECT_EQ(fine.objects[0], fine.objects[1] + fine.objects[2] + fine.objects[3]);

  const UpperBoundReport coarse = bound(set, 64, 4);
  EXPECT_LT(coarse.segm.stats[0], fine.segm.stats[0] - 0.1);
  EXPECT_LT(coarse.mean_mask_iou[0], fine.mean_mask_iou[0]);
  // A finer saliency map at the same input recovers part of what the coarse one loses.
  const UpperBoundReport finer_saliency = bound(set, 64, 1);
  EXPECT_GT(finer_saliency.segm.stats[0], coarse.segm.stats[0]);
}

TEST(UpperBound, RefusesADatasetWithoutMasks) {
  TempDir dir;
  const auto with_masks = simple_shapes(dir);
  CocoDatasetBuilder builder("boxes.json");
  for (const CocoCategory& c : with_masks->dataset().categories()) builder.add_category(c);
  for (const CocoImage& image : with_masks->dataset().images()) builder.add_image(image);
  for (CocoAnnotation a : with_masks->dataset().annotations())
    builder.add_annotation_without_mask(a);
  auto boxes_only = std::make_shared<const CocoDataset>(std::move(builder).build());
  CocoLoadReport report;
  const auto set = TrainingSet::open(boxes_only, dir.path() / "val", {}, &report);
  const std::string message = testing::error_message_of([&] { bound(set, 128, 4); });
  EXPECT_NE(message.find("val.json"), std::string::npos) << message;
  EXPECT_NE(message.find("segmentation"), std::string::npos) << message;
}

}  // namespace
}  // namespace centermask
