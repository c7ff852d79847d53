// The CenterMask model end to end on tiny inputs: every backbone trains on odd sizes and on
// images without objects; decoding outputs that equal the ground truth gives the ground truth
// back; the sparse shape layer equals the dense one; batches decode like single images.

#include "centermask/modeling/methods/centermask/centermask.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <tuple>

#include "centermask/modeling/inference_form.h"
#include "support/cuda.h"
#include "support/model_fixtures.h"

namespace centermask {
namespace {

using testing::make_batch;
using testing::mask_iou;

using testing::ellipse_instance;
using testing::noise_image;

/// The small backbone most tests use, for `classes` classes.
CenterMaskOptions resnet18_options(int classes) {
  CenterMaskOptions options;
  options.num_classes = classes;
  options.backbone.name = "resnet18";
  return options;
}

class EveryBackboneModel : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryBackboneModel, TrainsOnOddSizesAndOnImagesWithoutObjects) {
  torch::manual_seed(0);
  CenterMaskOptions options;
  options.num_classes = 3;
  options.backbone.name = GetParam();
  options.head_channels = 16;
  options.shape_size = 8;
  CenterMask model(options);
  const int h = 64, w = 96;
  Batch batch = make_batch(
      {noise_image(h, w, 1), noise_image(h, w, 2)},
      {{ellipse_instance(2, {10, 5, 30, 20}, h, w), ellipse_instance(0, {50, 30, 40, 33}, h, w)},
       {}},
      3);
  torch::Tensor images = torch::from_blob(batch.images.data(), {2, 3, h, w});
  CenterMaskOutputs out = model->forward(images);
  EXPECT_EQ(out.heatmap_logits.sizes(), (std::vector<std::int64_t>{2, 3, 16, 24}));
  EXPECT_EQ(out.saliency_logits.sizes(), (std::vector<std::int64_t>{2, 3, 16, 24}));
  CenterMaskLosses losses = model->loss(out, make_training_targets(batch, torch::kCPU));
  for (const torch::Tensor& term :
       {losses.total, losses.heatmap, losses.offset, losses.size, losses.mask}) {
    EXPECT_TRUE(std::isfinite(term.item<double>()));
    EXPECT_GT(term.item<double>(), 0);
  }
  losses.total.backward();
  for (const auto& p : model->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";

  // The empty image alone: only the heatmap term is non-zero, and it still trains.
  model->zero_grad();
  Batch empty = make_batch({noise_image(h, w, 3)}, {{}}, 3);
  CenterMaskOutputs empty_out = model->forward(torch::from_blob(empty.images.data(), {1, 3, h, w}));
  CenterMaskLosses empty_losses = model->loss(empty_out, make_training_targets(empty, torch::kCPU));
  EXPECT_TRUE(std::isfinite(empty_losses.heatmap.item<double>()));
  EXPECT_GT(empty_losses.heatmap.item<double>(), 0);
  EXPECT_EQ(empty_losses.offset.item<double>(), 0);
  EXPECT_EQ(empty_losses.size.item<double>(), 0);
  EXPECT_EQ(empty_losses.mask.item<double>(), 0);
  EXPECT_DOUBLE_EQ(empty_losses.total.item<double>(), empty_losses.heatmap.item<double>());
  empty_losses.total.backward();
  EXPECT_GT(model->named_parameters()["heatmap.2.bias"].grad().abs().sum().item<double>(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backbones, EveryBackboneModel,
                         ::testing::Values("resnet18", "resnet34", "resnet50", "resnet101", "dla34",
                                           "dla34_plain"));

TEST(CenterMask, Hourglass104SupervisesBothStacksInTrainingAndPredictsFromTheLast) {
  torch::manual_seed(0);
  CenterMaskOptions options;
  options.num_classes = 2;
  options.backbone.name = "hourglass104";
  options.shape_size = 8;
  EXPECT_EQ(options.resolved_head_channels(), 256);  // CenterNet's head_conv
  CenterMask model(options);
  // Two images: the bottom level is 1×1 at 128 px, and BatchNorm needs two values a channel.
  const int h = 128, w = 128;
  Batch batch = make_batch({noise_image(h, w, 1), noise_image(h, w, 2)},
                           {{ellipse_instance(1, {20, 30, 50, 40}, h, w)},
                            {ellipse_instance(0, {60, 10, 40, 70}, h, w)}},
                           2);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {2, 3, h, w});
  model->train();
  const CenterMaskOutputs out = model->forward(images);
  ASSERT_EQ(out.earlier_stacks.size(), 1u);
  EXPECT_EQ(out.earlier_stacks[0].heatmap_logits.sizes(), out.heatmap_logits.sizes());
  const CenterMaskTrainingTargets targets = make_training_targets(batch, torch::kCPU);
  const CenterMaskLosses both = model->loss(out, targets);
  CenterMaskOutputs last_only = out;
  last_only.earlier_stacks.clear();
  const CenterMaskLosses last = model->loss(last_only, targets);
  const CenterMaskLosses first = model->loss(out.earlier_stacks[0], targets);
  // Each term is the mean over the stacks.
  for (const auto& [mean, a, b] :
       {std::tuple{both.total, last.total, first.total},
        std::tuple{both.heatmap, last.heatmap, first.heatmap},
        std::tuple{both.size, last.size, first.size}, std::tuple{both.mask, last.mask, first.mask}})
    EXPECT_NEAR(mean.item<double>(), 0.5 * (a.item<double>() + b.item<double>()),
                1e-5 * std::abs(mean.item<double>()));
  EXPECT_NE(last.total.item<double>(), first.total.item<double>());
  both.total.backward();
  for (const auto& p : model->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
  // Inference: the last stack only.
  model->eval();
  torch::NoGradGuard no_grad;
  const CenterMaskOutputs inference = model->forward(images);
  EXPECT_TRUE(inference.earlier_stacks.empty());
  EXPECT_EQ(inference.heatmap_logits.sizes(), (std::vector<std::int64_t>{2, 2, 32, 32}));
  EXPECT_THROW(model->forward(torch::zeros({1, 3, 96, 128})), std::invalid_argument);
}

TEST(CenterMask, RefusesInputsThatAreNotMultiplesOf32) {
  CenterMaskOptions options = resnet18_options(2);
  CenterMask model(options);
  EXPECT_THROW(model->forward(torch::zeros({1, 3, 64, 90})), std::invalid_argument);
  EXPECT_THROW(model->forward(torch::zeros({1, 1, 64, 64})), std::invalid_argument);
}

TEST(CenterMask, OptionsAreValidatedByName) {
  CenterMaskOptions options;
  options.direct_saliency_loss = true;
  options.class_specific_saliency = false;
  try {
    options.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("direct_saliency_loss"), std::string::npos);
  }
  options = {};
  options.num_classes = 0;
  EXPECT_THROW(options.validate(), std::invalid_argument);
  EXPECT_EQ(parse_mask_assembly("saliency_only"), MaskAssembly::kSaliencyOnly);
  EXPECT_THROW(parse_mask_assembly("both"), std::invalid_argument);
  EXPECT_EQ(CenterMaskOptions{}.resolved_head_channels(), 256);  // DLA-34
}

TEST(CenterMask, SparseShapeLayerEqualsTheDenseOneAtTheChosenCells) {
  torch::manual_seed(2);
  CenterMaskOptions options = resnet18_options(2);
  options.shape_size = 6;
  CenterMask model(options);
  torch::NoGradGuard no_grad;
  torch::Tensor hidden = torch::randn({3, 64, 5, 7});
  torch::Tensor dense = model->dense_shape_logits(hidden);  // (3, 36, 5, 7)
  torch::Tensor image = torch::tensor({0, 2, 2, 1}, torch::kInt64);
  torch::Tensor cell = torch::tensor({0, 34, 17, 8}, torch::kInt64);
  torch::Tensor sparse = model->shape_logits_at(hidden, image, cell);
  ASSERT_EQ(sparse.sizes(), (std::vector<std::int64_t>{4, 6, 6}));
  for (int m = 0; m < 4; ++m) {
    const std::int64_t b = image[m].item<std::int64_t>(), c = cell[m].item<std::int64_t>();
    torch::Tensor expected = dense[b].reshape({36, 35}).select(1, c).view({6, 6});
    EXPECT_TRUE(torch::allclose(sparse[m], expected, 1e-5, 1e-6)) << m;
  }
}

TEST(CenterMask, AblationVariantsBuildOnlyTheirHeadsAndTrain) {
  const int h = 64, w = 64;
  Batch batch = make_batch({noise_image(h, w, 4)}, {{ellipse_instance(1, {8, 8, 30, 24}, h, w)}}, 2,
                           /*class_union_masks=*/true);
  for (MaskAssembly assembly : {MaskAssembly::kShapeOnly, MaskAssembly::kSaliencyOnly}) {
    for (bool class_specific : {false, true}) {
      CenterMaskOptions options = resnet18_options(2);
      options.head_channels = 8;
      options.shape_size = 24;
      options.assembly = assembly;
      options.class_specific_saliency = class_specific;
      CenterMask model(options);
      CenterMaskOutputs out = model->forward(torch::from_blob(batch.images.data(), {1, 3, h, w}));
      EXPECT_EQ(out.shape_hidden.defined(), assembly == MaskAssembly::kShapeOnly);
      EXPECT_EQ(out.saliency_logits.defined(), assembly == MaskAssembly::kSaliencyOnly);
      if (out.saliency_logits.defined()) {
        EXPECT_EQ(out.saliency_logits.size(1), class_specific ? 2 : 1);
      }
      CenterMaskLosses losses = model->loss(out, make_training_targets(batch, torch::kCPU));
      EXPECT_GT(losses.mask.item<double>(), 0);
      losses.total.backward();
      const auto instances = model->predict(out, batch.infos);
      EXPECT_GT(instances.front().size(), 0u);
      EXPECT_LE(instances.front().size(), 100u);
    }
  }
  // Direct saliency supervision adds its term (and needs the union masks).
  CenterMaskOptions options = resnet18_options(2);
  options.head_channels = 8;
  options.direct_saliency_loss = true;
  CenterMask model(options);
  CenterMaskOutputs out = model->forward(torch::from_blob(batch.images.data(), {1, 3, h, w}));
  CenterMaskLosses losses = model->loss(out, make_training_targets(batch, torch::kCPU));
  ASSERT_TRUE(losses.saliency.defined());
  EXPECT_GT(losses.saliency.item<double>(), 0);
  EXPECT_NEAR(losses.total.item<double>(),
              (losses.heatmap + losses.offset + 0.1 * losses.size + losses.mask + losses.saliency)
                  .item<double>(),
              1e-5);
  Batch without = make_batch({noise_image(h, w, 4)}, {{}}, 2);
  EXPECT_THROW(model->loss(out, make_training_targets(without, torch::kCPU)),
               std::invalid_argument);
}

// Saliency at stride 2 and 1: the map is 2× / 4× the output map, the image-guided upsampling
// stages train, the mask loss is computed at that resolution, and decoding gives masks in the
// original image. With TTFNet's dense box loss and a mask neighbourhood the same holds.
TEST(CenterMask, FinerSaliencyDenseBoxesAndMaskNeighbourhoodTrainAndDecode) {
  const int h = 64, w = 96;
  for (int stride : {2, 1}) {
    torch::manual_seed(stride);
    CenterMaskOptions options = resnet18_options(2);
    options.backbone.width = 16;
    options.head_channels = 8;
    options.shape_size = 8;
    options.saliency_stride = stride;
    options.saliency_upsample_channels = 4;
    options.dense_box_loss = true;
    options.mask_neighbourhood = 1;
    CenterMask model(options);
    Batch batch = make_training_batch(
        {noise_image(h, w, 7)},
        {{ellipse_instance(1, {8, 8, 40, 30}, h, w), ellipse_instance(0, {50, 20, 30, 40}, h, w)}},
        model->target_options(16));
    EXPECT_EQ(centermask_batch_targets(batch).mask_height, h / stride);
    const CenterMaskTrainingTargets targets = make_training_targets(batch, torch::kCPU, 1);
    // Both objects are large enough that their 3 × 3 neighbourhood counts: 9 masks each.
    EXPECT_EQ(targets.num_masks(), 18);
    const torch::Tensor images = torch::from_blob(batch.images.data(), {1, 3, h, w});
    CenterMaskOutputs out = model->forward(images);
    EXPECT_EQ(out.saliency_logits.sizes(),
              (std::vector<std::int64_t>{1, 2, h / stride, w / stride}));
    EXPECT_EQ(out.heatmap_logits.size(2), h / 4);
    CenterMaskLosses losses = model->loss(out, targets);
    for (const torch::Tensor& term : {losses.offset, losses.size, losses.mask})
      EXPECT_GT(term.item<double>(), 0);
    losses.total.backward();
    for (const auto& p : model->named_parameters())
      ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
    const auto instances = model->predict(out, batch.infos);
    ASSERT_FALSE(instances.front().empty());
    EXPECT_TRUE(instances.front().front().has_mask);
    // Without the images the upsampling has nothing to be guided by.
    EXPECT_THROW(model->heads(model->features(images), {}), std::invalid_argument);
  }
  CenterMaskOptions bad = resnet18_options(2);
  bad.saliency_stride = 3;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad.saliency_stride = 2;
  bad.assembly = MaskAssembly::kShapeOnly;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}

TEST(CenterMask, GiouAndDiceTermsJoinTheTotalOnlyWhenWeighted) {
  const int h = 64, w = 96;
  CenterMaskOptions options = resnet18_options(2);
  options.backbone.width = 16;
  options.head_channels = 8;
  options.shape_size = 8;
  options.dense_box_loss = true;
  torch::manual_seed(11);
  CenterMask model(options);
  Batch batch = make_training_batch(
      {noise_image(h, w, 7)},
      {{ellipse_instance(1, {8, 8, 40, 30}, h, w), ellipse_instance(0, {50, 20, 30, 40}, h, w)}},
      model->target_options(16));
  const CenterMaskTrainingTargets targets = make_training_targets(batch, torch::kCPU, 0);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {1, 3, h, w});
  const CenterMaskOutputs out = model->forward(images);
  const CenterMaskLosses plain = model->loss(out, targets);
  EXPECT_FALSE(plain.box_giou.defined());
  EXPECT_FALSE(plain.mask_dice.defined());

  CenterMaskOptions weighted = options;
  weighted.loss_weights.box_giou = 2;
  weighted.loss_weights.mask_dice = 0.5;
  torch::manual_seed(11);
  CenterMask same_weights(weighted);
  const CenterMaskLosses losses = same_weights->loss(same_weights->forward(images), targets);
  ASSERT_TRUE(losses.box_giou.defined());
  ASSERT_TRUE(losses.mask_dice.defined());
  // An untrained network's boxes and masks are far from the targets; GIoU loss is in [0, 2],
  // Dice in [0, 1].
  EXPECT_GT(losses.box_giou.item<double>(), 0.1);
  EXPECT_LE(losses.box_giou.item<double>(), 2.0);
  EXPECT_GT(losses.mask_dice.item<double>(), 0.1);
  EXPECT_LE(losses.mask_dice.item<double>(), 1.0);
  EXPECT_NEAR(losses.total.item<double>(),
              plain.total.item<double>() + 2 * losses.box_giou.item<double>() +
                  0.5 * losses.mask_dice.item<double>(),
              1e-4);
  losses.total.backward();
  for (const auto& p : same_weights->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";

  // GIoU is taken at the dense box cells: without them it is refused, naming the key.
  CenterMaskOptions bad = weighted;
  bad.dense_box_loss = false;
  try {
    bad.validate();
    FAIL() << "box_giou without dense_box_loss was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("box_giou"), std::string::npos) << e.what();
  }
  bad = options;
  bad.loss_weights.mask_dice = -1;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}

TEST(CenterMask, MaskQualityScoringRescalesScoresByTheMasksAndKeepsThemSorted) {
  torch::manual_seed(13);
  CenterMaskOptions options = resnet18_options(3);
  options.shape_size = 8;
  CenterMask model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const int h = 64, w = 96;
  Batch batch = make_batch({noise_image(h, w, 8), noise_image(h, w, 9)}, {{}, {}}, 4);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {2, 3, h, w});
  const CenterMaskOutputs out = model->forward(images);
  CenterMaskInferenceOptions inference;
  inference.top_k = 30;
  // Low enough that an untrained model's masks (products of two sigmoids near 0.5) keep some
  // pixels and lose others.
  inference.mask_threshold = 0.2f;
  const auto plain = model->predict(out, batch.infos, inference);
  inference.mask_quality_scoring = true;
  const auto rescored = model->predict(out, batch.infos, inference);
  ASSERT_EQ(plain.size(), rescored.size());
  for (std::size_t image = 0; image < plain.size(); ++image) {
    ASSERT_EQ(plain[image].size(), rescored[image].size());
    ASSERT_FALSE(plain[image].empty());
    bool any_lowered = false;
    for (std::size_t j = 0; j < rescored[image].size(); ++j) {
      const Instance& r = rescored[image][j];
      if (j > 0) {
        EXPECT_GE(rescored[image][j - 1].score, r.score) << "not sorted";
      }
      // The same detection, matched by its box: its score times a quality in [0, 1], and
      // exactly 0 for a mask with no pixel above the threshold.
      const auto same = std::find_if(plain[image].begin(), plain[image].end(), [&](const auto& p) {
        return p.class_index == r.class_index && p.box.x0 == r.box.x0 && p.box.y0 == r.box.y0 &&
               p.box.x1 == r.box.x1 && p.box.y1 == r.box.y1;
      });
      ASSERT_NE(same, plain[image].end());
      EXPECT_LE(r.score, same->score + 1e-7f);
      EXPECT_GE(r.score, 0.0f);
      any_lowered = any_lowered || r.score < same->score;
      // A quality is the mean of probabilities above the threshold: with pixels kept, at least
      // the threshold's share of the score.
      if (r.mask.area() > 0) {
        EXPECT_GE(r.score, same->score * inference.mask_threshold - 1e-6f);
      }
    }
    EXPECT_TRUE(any_lowered);
  }
}

/// The instance mirrored left–right in an image `width` pixels wide.
Instance mirrored_instance(const Instance& instance, int width) {
  Instance m = instance;
  m.box.x0 = static_cast<float>(width) - instance.box.x1;
  m.box.x1 = static_cast<float>(width) - instance.box.x0;
  const MaskPatch& p = instance.mask;
  m.mask.left = width - (p.left + p.width);
  for (int y = 0; y < p.height; ++y)
    for (int x = 0; x < p.width; ++x)
      m.mask.pixels[static_cast<std::size_t>(y * p.width + x)] =
          p.pixels[static_cast<std::size_t>(y * p.width + (p.width - 1 - x))];
  return m;
}

// The flip test merges in the right frame: the perfect outputs of the ground truth averaged
// with the (flipped-back) perfect outputs of the mirrored ground truth are the perfect outputs
// again — heatmap, sizes and, through the 1 − x rule, the sub-cell x offsets.
TEST(CenterMask, FlipTestOfMirroredPerfectOutputsGivesThemBack) {
  const int h = 64, w = 96;
  const std::vector<Instance> truth = {ellipse_instance(1, {10, 12, 37, 30}, h, w),
                                       ellipse_instance(0, {51, 21, 27, 35}, h, w)};
  for (const Instance& instance : truth) {
    // A center on a cell's edge mirrors onto the edge of another cell: keep them inside.
    const float center_x = 0.5f * (instance.box.x0 + instance.box.x1) / 4;
    ASSERT_GT(center_x - std::floor(center_x), 0.1f) << "center " << center_x;
  }
  std::vector<Instance> mirrored_truth;
  for (const Instance& instance : truth) mirrored_truth.push_back(mirrored_instance(instance, w));
  CenterMaskOptions options = resnet18_options(2);
  options.backbone.width = 16;
  options.shape_size = 8;
  CenterMask model(options);
  CenterMaskOutputs original = model->perfect_outputs({truth}, h, w);
  CenterMaskOutputs mirrored = model->perfect_outputs({mirrored_truth}, h, w);
  EXPECT_THROW(average_with_mirrored(original, mirrored), std::invalid_argument);
  original.given_shapes = nullptr;  // shapes are averaged per cell, checked below
  mirrored.given_shapes = nullptr;
  const CenterMaskOutputs merged = average_with_mirrored(original, mirrored);
  EXPECT_TRUE(torch::allclose(torch::sigmoid(merged.heatmap_logits),
                              torch::sigmoid(original.heatmap_logits), 0, 1e-5));
  EXPECT_TRUE(torch::allclose(merged.size, original.size, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(torch::sigmoid(merged.saliency_logits),
                              torch::sigmoid(original.saliency_logits), 0, 1e-5));
  // Offsets are defined at the centers: there the merge gives each object's own.
  const torch::Tensor centers = original.size.select(1, 0).gt(0);
  ASSERT_EQ(centers.sum().item<std::int64_t>(), 2);
  for (int axis : {0, 1}) {
    const torch::Tensor want = original.offset.select(1, axis).masked_select(centers);
    const torch::Tensor got = merged.offset.select(1, axis).masked_select(centers);
    EXPECT_TRUE(torch::allclose(got, want, 0, 1e-6)) << "axis " << axis << ": " << got << want;
    EXPECT_GT(want.sub(0.5).abs().max().item<float>(), 0.01f) << "offsets too symmetric to test";
  }
  // Mismatched maps are an error that names them.
  CenterMaskOutputs cropped = mirrored;
  cropped.size = mirrored.size.narrow(3, 0, 8);
  try {
    average_with_mirrored(original, cropped);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("size map"), std::string::npos) << e.what();
  }
}

// Flip-test predictions are mirror-equivariant: the flip test on the mirrored image gives the
// flip test's detections of the image, mirrored (scores, classes, boxes and masks), whatever
// the network (an untrained one here, whose outputs have no symmetry of their own).
TEST(CenterMask, FlipTestPredictionsOfTheMirroredImageAreTheMirroredPredictions) {
  torch::manual_seed(21);
  const int h = 64, w = 96;
  CenterMaskOptions options = resnet18_options(3);
  options.backbone.width = 16;
  options.shape_size = 8;
  CenterMask model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const cv::Mat image = noise_image(h, w, 5);
  cv::Mat mirror;
  cv::flip(image, mirror, 1);
  Batch batch = make_batch({image, mirror}, {{}, {}}, 3);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {2, 3, h, w});
  CenterMaskInferenceOptions inference;
  inference.top_k = 20;
  inference.mask_threshold = 0.2f;
  const CenterMaskOutputs flipped = model->forward_flip_averaged(images);
  ASSERT_TRUE(flipped.shape_hidden_mirrored.defined());
  // Not the plain forward: the flip test changed the outputs.
  EXPECT_FALSE(torch::allclose(flipped.heatmap_logits, model->forward(images).heatmap_logits));
  const auto detections = model->predict(flipped, batch.infos, inference);
  ASSERT_EQ(detections[0].size(), detections[1].size());
  ASSERT_FALSE(detections[0].empty());
  int compared_masks = 0;
  for (const Instance& a : detections[0]) {
    // Its mirror image among the second image's detections (same class, mirrored box).
    const auto match = std::find_if(detections[1].begin(), detections[1].end(), [&](const auto& b) {
      return b.class_index == a.class_index && std::abs(b.box.x0 - (w - a.box.x1)) < 1e-3f &&
             std::abs(b.box.x1 - (w - a.box.x0)) < 1e-3f && std::abs(b.box.y0 - a.box.y0) < 1e-3f &&
             std::abs(b.box.y1 - a.box.y1) < 1e-3f;
    });
    ASSERT_NE(match, detections[1].end()) << "no mirrored detection for a box at x " << a.box.x0;
    EXPECT_NEAR(match->score, a.score, 1e-5f);
    if (a.mask.area() > 4) {
      EXPECT_GT(mask_iou(mirrored_instance(a, w).mask, match->mask), 0.9);
      ++compared_masks;
    }
  }
  EXPECT_GT(compared_masks, 0);
}

TEST(CenterMask, GroupNormHeadsNormaliseTheirHiddenLayerAndTrain) {
  const int h = 64, w = 96;
  torch::manual_seed(3);
  CenterMaskOptions options = resnet18_options(2);
  options.backbone.width = 16;
  options.head_channels = 8;
  options.head_norm_groups = 4;
  options.shape_size = 8;
  options.saliency_stride = 2;  // the upsampled saliency head's hidden layer is normalised too
  options.saliency_upsample_channels = 4;
  CenterMask model(options);
  const auto parameters = model->named_parameters();
  for (const char* head : {"heatmap", "offset", "size", "saliency_hidden", "shape_hidden"}) {
    // conv 3×3 without bias (the norm's shift replaces it), then GroupNorm's scale and shift.
    EXPECT_EQ(parameters.find(std::string(head) + ".0.bias"), nullptr) << head;
    ASSERT_NE(parameters.find(std::string(head) + ".1.weight"), nullptr) << head;
    EXPECT_EQ(parameters[std::string(head) + ".1.weight"].numel(), 8) << head;
  }
  Batch batch =
      make_training_batch({noise_image(h, w, 11)}, {{ellipse_instance(1, {8, 8, 40, 30}, h, w)}},
                          model->target_options(16));
  const torch::Tensor images = torch::from_blob(batch.images.data(), {1, 3, h, w});
  // Before the ReLU each group of 2 channels has mean 0 and variance 1 (scale 1, shift 0).
  const auto heatmap = model->named_modules()["heatmap"]->as<torch::nn::SequentialImpl>();
  const torch::Tensor normalised = heatmap->ptr(1)->as<torch::nn::GroupNormImpl>()->forward(
      heatmap->ptr(0)->as<torch::nn::Conv2dImpl>()->forward(model->features(images)));
  const torch::Tensor groups = normalised.view({4, -1});
  EXPECT_LT(groups.mean(1).abs().max().item<double>(), 1e-4);
  EXPECT_LT((groups.var(1, /*unbiased=*/false) - 1).abs().max().item<double>(), 1e-2);
  CenterMaskLosses losses =
      model->loss(model->forward(images), make_training_targets(batch, torch::kCPU));
  losses.total.backward();
  for (const auto& p : model->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
  CenterMaskOptions bad = options;
  bad.head_norm_groups = 3;  // does not divide 8
  try {
    bad.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("head_norm_groups"), std::string::npos) << e.what();
  }
}

// The perfect outputs decode to the ground truth: boxes exactly, masks nearly (S × S and the
// saliency stride are the only losses).
TEST(CenterMask, PerfectOutputsDecodeToTheGroundTruth) {
  const int h = 128, w = 128;
  const std::vector<Instance> truth = {ellipse_instance(1, {10, 12, 50, 40}, h, w),
                                       ellipse_instance(0, {60, 50, 44, 60}, h, w)};
  for (int stride : {4, 1}) {
    CenterMaskOptions options = resnet18_options(2);
    options.backbone.width = 16;
    options.shape_size = 48;
    options.saliency_stride = stride;
    CenterMask model(options);
    Batch batch = make_training_batch({noise_image(h, w, 1)}, {truth}, model->target_options(16));
    const CenterMaskOutputs out = model->perfect_outputs(batch.instances, h, w);
    CenterMaskInferenceOptions decode;
    decode.score_threshold = 0.5f;
    const auto found = model->predict(out, batch.infos, decode).front();
    ASSERT_EQ(found.size(), 2u);
    for (const Instance& gt : truth) {
      double best = 0;
      for (const Instance& d : found)
        if (d.class_index == gt.class_index) best = std::max(best, mask_iou(d.mask, gt.mask));
      EXPECT_GT(best, stride == 1 ? 0.95 : 0.85) << "stride " << stride;
    }
  }
}

/// Outputs that say exactly what the targets say: heatmap logits of the target heatmap, the
/// target offset and size at each center, a local shape of +20 (probability ≈ 1) and a
/// class-specific saliency of ±20 from the union masks, so that the mask is the ground truth.
CenterMaskOutputs outputs_from_targets(const Batch& batch, const CenterMask& model) {
  const CenterMaskTrainingTargets t = make_training_targets(batch, torch::kCPU);
  const std::int64_t n = batch.size, h = t.height, w = t.width;
  CenterMaskOutputs out;
  out.heatmap_logits = torch::logit(t.heatmap.clamp(1e-6, 1 - 1e-6));
  out.offset = torch::zeros({n, 2, h * w});
  out.size = torch::zeros({n, 2, h * w});
  for (std::int64_t b = 0; b < n; ++b)
    for (std::int64_t k = 0; k < t.valid.size(1); ++k) {
      if (t.valid[b][k].item<float>() == 0) continue;
      const std::int64_t cell = t.center_index[b][k].item<std::int64_t>();
      for (int c = 0; c < 2; ++c) {
        out.offset[b][c][cell] = t.offset[b][k][c];
        out.size[b][c][cell] = t.size[b][k][c];
      }
    }
  out.offset = out.offset.view({n, 2, h, w});
  out.size = out.size.view({n, 2, h, w});
  out.shape_hidden = torch::zeros({n, model->options().resolved_head_channels(), h, w});
  {
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    params["shape_output.weight"].zero_();
    params["shape_output.bias"].fill_(20);
  }
  out.saliency_logits = (t.class_masks - 0.5) * 40;
  return out;
}

TEST(CenterMask, DecodingGroundTruthOutputsGivesTheGroundTruthBack) {
  CenterMaskOptions options = resnet18_options(3);
  CenterMask model(options);
  const int h = 96, w = 128;
  std::vector<Instance> truth{ellipse_instance(2, {10, 6, 41, 29}, h, w),
                              ellipse_instance(0, {64, 40, 50, 50}, h, w),
                              ellipse_instance(1, {3, 70, 9, 13}, h, w)};
  Batch batch = make_batch({noise_image(h, w, 5)}, {truth}, 3, /*class_union_masks=*/true);
  CenterMaskInferenceOptions inference;
  inference.score_threshold =
      0.5f;  // the three peaks (1.0); the Gaussians' shoulders are not peaks
  const auto predicted = model->predict(outputs_from_targets(batch, model), batch.infos, inference);
  ASSERT_EQ(predicted.size(), 1u);
  ASSERT_EQ(predicted[0].size(), truth.size());
  for (const Instance& gt : truth) {
    const Instance* match = nullptr;
    for (const Instance& p : predicted[0])
      if (p.class_index == gt.class_index) match = &p;
    ASSERT_NE(match, nullptr) << "class " << gt.class_index;
    EXPECT_NEAR(match->score, 1.0, 1e-5);
    EXPECT_NEAR(match->box.x0, gt.box.x0, 1e-3);
    EXPECT_NEAR(match->box.y0, gt.box.y0, 1e-3);
    EXPECT_NEAR(match->box.x1, gt.box.x1, 1e-3);
    EXPECT_NEAR(match->box.y1, gt.box.y1, 1e-3);
    // The mask went through stride-4 coverage and back: close, not pixel-exact.
    EXPECT_GT(mask_iou(match->mask, gt.mask), gt.box.width() < 16 ? 0.6 : 0.85)
        << "class " << gt.class_index;
  }
}

TEST(CenterMask, PredictionsAreMappedBackToTheOriginalImage) {
  CenterMaskOptions options = resnet18_options(3);
  CenterMask model(options);
  const int h = 64, w = 64;
  Batch batch =
      make_batch({noise_image(h, w, 6)}, {{ellipse_instance(1, {12, 20, 32, 24}, h, w)}}, 3, true);
  const CenterMaskOutputs out = outputs_from_targets(batch, model);
  CenterMaskInferenceOptions inference;
  inference.score_threshold = 0.5f;
  const Instance at_input = model->predict(out, batch.infos, inference)[0].at(0);
  // The same outputs for an original image twice the size, shifted by 10 px (as a test
  // transform that shrank it into the input would record).
  std::vector<ImageInfo> infos = batch.infos;
  infos[0].original_height = 2 * h + 10;
  infos[0].original_width = 2 * w + 10;
  infos[0].input_to_original = Affine2D::scale_translate(2, 2, 10, 10);
  infos[0].original_to_input = infos[0].input_to_original.inverse();
  const Instance original = model->predict(out, infos, inference)[0].at(0);
  EXPECT_NEAR(original.box.x0, 2 * at_input.box.x0 + 10, 1e-3);
  EXPECT_NEAR(original.box.y1, 2 * at_input.box.y1 + 10, 1e-3);
  EXPECT_NEAR(static_cast<double>(original.mask.area()), 4.0 * at_input.mask.area(),
              0.1 * 4.0 * at_input.mask.area());
  for (int y = 0; y < original.mask.height; ++y)
    for (int x = 0; x < original.mask.width; ++x) {
      const int ox = original.mask.left + x, oy = original.mask.top + y;
      ASSERT_LT(ox, infos[0].original_width);
      if (original.mask.pixels[static_cast<std::size_t>(y * original.mask.width + x)]) {
        EXPECT_TRUE(ox >= original.box.x0 - 4 && ox < original.box.x1 + 4 &&
                    oy >= original.box.y0 - 4 && oy < original.box.y1 + 4);
      }
    }
}

TEST(CenterMask, ABatchDecodesLikeItsImagesOneAtATime) {
  torch::manual_seed(7);
  CenterMaskOptions options = resnet18_options(4);
  options.shape_size = 12;
  CenterMask model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const int h = 64, w = 96;
  Batch batch = make_batch({noise_image(h, w, 8), noise_image(h, w, 9), noise_image(h, w, 10)},
                           {{}, {}, {}}, 4);
  torch::Tensor images = torch::from_blob(batch.images.data(), {3, 3, h, w});
  CenterMaskInferenceOptions inference;
  inference.top_k = 20;
  const auto together = model->predict(model->forward(images), batch.infos, inference);
  for (int i = 0; i < 3; ++i) {
    const auto alone = model->predict(model->forward(images.slice(0, i, i + 1)),
                                      {batch.infos[static_cast<std::size_t>(i)]}, inference)[0];
    const auto& in_batch = together[static_cast<std::size_t>(i)];
    ASSERT_EQ(alone.size(), in_batch.size());
    for (std::size_t j = 0; j < alone.size(); ++j) {
      EXPECT_NEAR(alone[j].score, in_batch[j].score, 1e-5);
      EXPECT_EQ(alone[j].class_index, in_batch[j].class_index);
      EXPECT_NEAR(alone[j].box.x0, in_batch[j].box.x0, 1e-3);
      EXPECT_NEAR(alone[j].box.y1, in_batch[j].box.y1, 1e-3);
      if (alone[j].mask.area() > 0) {
        EXPECT_GT(mask_iou(alone[j].mask, in_batch[j].mask), 0.98);
      }
    }
  }
}

TEST(CenterMask, FoldedInferenceGivesTheSameDetections) {
  torch::manual_seed(8);
  CenterMaskOptions options = resnet18_options(3);
  options.shape_size = 12;
  options.backbone.skip_connections = true;
  CenterMask model(options);
  {
    torch::NoGradGuard no_grad;
    for (auto& child : model->modules(/*include_self=*/false))
      if (auto* bn = child->as<torch::nn::BatchNorm2d>()) {
        bn->running_mean.uniform_(-0.5, 0.5);
        bn->running_var.uniform_(0.3, 2.0);
      }
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const int h = 96, w = 128;
  Batch batch = make_batch({noise_image(h, w, 11), noise_image(h, w, 12)}, {{}, {}}, 3);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {2, 3, h, w});
  CenterMaskInferenceOptions inference;
  inference.top_k = 30;
  set_inference_folding(false);
  const auto unfolded = model->predict(model->forward(images), batch.infos, inference);
  set_inference_folding(true);
  const auto folded = model->predict(model->forward(images), batch.infos, inference);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(folded[i].size(), unfolded[i].size());
    for (std::size_t j = 0; j < folded[i].size(); ++j) {
      EXPECT_NEAR(folded[i][j].score, unfolded[i][j].score, 1e-5);
      EXPECT_EQ(folded[i][j].class_index, unfolded[i][j].class_index);
      EXPECT_NEAR(folded[i][j].box.x0, unfolded[i][j].box.x0, 1e-3);
      EXPECT_NEAR(folded[i][j].box.y1, unfolded[i][j].box.y1, 1e-3);
      EXPECT_EQ(folded[i][j].mask.pixels, unfolded[i][j].mask.pixels);
    }
  }
}

// The GPU path (skipped without a GPU; scripts/gpu_check.sh runs it with CUDA required): the
// same model on CUDA gives the CPU's outputs and detections in float32, and under fp16 autocast
// outputs within fp16's rounding and the same ranked scores.
TEST(CenterMask, CudaDetectionsMatchTheCpusAndFp16StaysClose) {
  CENTERMASK_CUDA_OR_SKIP();
  // TF32 (on by default for cuDNN's convolutions) would round every product's inputs to 10
  // bits; the float32 comparison is of float32 arithmetic.
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  torch::manual_seed(9);
  CenterMaskOptions options = resnet18_options(3);
  options.shape_size = 12;
  CenterMask model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const int h = 96, w = 128;
  Batch batch = make_batch({noise_image(h, w, 13)}, {{}}, 3);
  const torch::Tensor images = torch::from_blob(batch.images.data(), {1, 3, h, w});
  CenterMaskInferenceOptions inference;
  inference.top_k = 20;
  const CenterMaskOutputs cpu_outputs = model->forward(images);
  const auto cpu = model->predict(cpu_outputs, batch.infos, inference)[0];
  model->to(torch::kCUDA);
  const CenterMaskOutputs gpu_outputs = model->forward(images.to(torch::kCUDA));
  const auto gpu = model->predict(gpu_outputs, batch.infos, inference)[0];
  const auto outputs_of = [](const CenterMaskOutputs& o) {
    return std::vector<std::pair<const char*, torch::Tensor>>{
        {"heatmap", o.heatmap_logits.cpu().to(torch::kDouble)},
        {"offset", o.offset.cpu().to(torch::kDouble)},
        {"size", o.size.cpu().to(torch::kDouble)},
        {"shape", o.shape_hidden.cpu().to(torch::kDouble)},
        {"saliency", o.saliency_logits.cpu().to(torch::kDouble)}};
  };
  // The largest difference relative to the output's range.
  const auto relative = [](const torch::Tensor& a, const torch::Tensor& b) {
    return (a - b).abs().max().item<double>() / std::max(1.0, b.abs().max().item<double>());
  };
  const auto cpu_maps = outputs_of(cpu_outputs);
  const auto gpu_maps = outputs_of(gpu_outputs);
  // float32 through ~20 layers with other kernels' summation orders: ~1e-6 of the range.
  for (std::size_t k = 0; k < cpu_maps.size(); ++k)
    EXPECT_LT(relative(gpu_maps[k].second, cpu_maps[k].second), 1e-4) << cpu_maps[k].first;
  ASSERT_EQ(gpu.size(), cpu.size());
  for (std::size_t j = 0; j < gpu.size(); ++j) {
    EXPECT_NEAR(gpu[j].score, cpu[j].score, 1e-5) << j;
    EXPECT_EQ(gpu[j].class_index, cpu[j].class_index) << j;
    EXPECT_NEAR(gpu[j].box.x0, cpu[j].box.x0, 1e-2) << j;
    EXPECT_NEAR(gpu[j].box.y1, cpu[j].box.y1, 1e-2) << j;
  }

  at::autocast::set_enabled(true);
  const CenterMaskOutputs half = model->forward(images.to(torch::kCUDA));
  at::autocast::set_enabled(false);
  const auto half_maps = outputs_of(half);
  // fp16 keeps 11 significant bits (each rounding ≤ 2^-12 relative); through the network's
  // ~20 layers the errors add to a few 1e-3 of each output's range.
  for (std::size_t k = 0; k < cpu_maps.size(); ++k)
    EXPECT_LT(relative(half_maps[k].second, cpu_maps[k].second), 2e-2) << cpu_maps[k].first;
  const auto fp16 = model->predict(half, batch.infos, inference)[0];
  ASSERT_EQ(fp16.size(), cpu.size());
  // Close scores may trade places, so the k-th best score is compared with the k-th best: it
  // moves by at most the largest change of a heatmap probability.
  std::vector<float> cpu_scores, fp16_scores;
  for (const Instance& d : cpu) cpu_scores.push_back(d.score);
  for (const Instance& d : fp16) fp16_scores.push_back(d.score);
  std::sort(cpu_scores.rbegin(), cpu_scores.rend());
  std::sort(fp16_scores.rbegin(), fp16_scores.rend());
  for (std::size_t j = 0; j < cpu_scores.size(); ++j)
    EXPECT_NEAR(fp16_scores[j], cpu_scores[j], 5e-3) << "score rank " << j;
}

}  // namespace
}  // namespace centermask
