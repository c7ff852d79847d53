// FCOS's head on a feature pyramid and the plain box detector built from it: per-level
// outputs from shared towers with per-level scales, the focal-loss prior at the start, the
// flattening order that the assignment uses, refusals by name, and an overfit test: a small
// ResNet-FPN with the head learns two boxes of one picture and decodes them back.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "centermask/modeling/fcos/fcos_head.h"
#include "centermask/modeling/fcos/fpn.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/nms.h"

namespace centermask {
namespace {

FcosHeadOptions small_head(int classes, int channels) {
  FcosHeadOptions o;
  o.num_classes = classes;
  o.in_channels = channels;
  o.tower_convs = 2;
  o.norm_groups = 4;
  return o;
}

TEST(FcosHead, SharedTowersPerLevelScalesAndTheFocalPrior) {
  torch::manual_seed(0);
  FcosHead head(small_head(3, 8));
  const std::vector<torch::Tensor> levels = {
      torch::randn({2, 8, 12, 20}), torch::randn({2, 8, 6, 10}), torch::randn({2, 8, 3, 5})};
  const FcosHeadOutputs out = head->forward(levels);
  ASSERT_EQ(out.class_logits.size(), 3u);
  for (std::size_t l = 0; l < 3; ++l) {
    const auto h = levels[l].size(2), w = levels[l].size(3);
    EXPECT_EQ(out.class_logits[l].sizes(), (std::vector<std::int64_t>{2, 3, h, w}));
    EXPECT_EQ(out.regression[l].sizes(), (std::vector<std::int64_t>{2, 4, h, w}));
    EXPECT_EQ(out.centerness_logits[l].sizes(), (std::vector<std::int64_t>{2, 1, h, w}));
    EXPECT_GT(out.regression[l].min().item<float>(), 0.0f);  // exp: distances are positive
  }
  // π = 0.01 at the start: the class probabilities sit near it (weights N(0, 0.01)).
  EXPECT_NEAR(torch::sigmoid(out.class_logits[0]).mean().item<double>(), 0.01, 0.002);
  // The towers are shared: a level run alone gives the same outputs; the weights do not
  // grow with the number of levels.
  const FcosHeadOutputs alone = head->forward({levels[1]});
  EXPECT_TRUE(torch::allclose(alone.class_logits[0], out.class_logits[1], 1e-5, 1e-6));
  std::int64_t weights = 0;
  for (const auto& p : head->parameters()) weights += p.numel();
  FcosHeadOptions seven = small_head(3, 8);
  seven.num_levels = 7;
  std::int64_t weights7 = 0;
  for (const auto& p : FcosHead(seven)->parameters()) weights7 += p.numel();
  EXPECT_EQ(weights7, weights + 2);  // two more scales, nothing else
  // Each level's scale multiplies its own regression's exponent only.
  {
    torch::NoGradGuard no_grad;
    head->named_parameters()["scales"][1].fill_(2.0);
  }
  const FcosHeadOutputs scaled = head->forward(levels);
  EXPECT_TRUE(torch::allclose(scaled.regression[0], out.regression[0]));
  EXPECT_TRUE(torch::allclose(scaled.regression[1], out.regression[1].pow(2), 1e-4, 1e-6));
}

TEST(FcosHead, RefusesMismatchedInputsAndOptionsByName) {
  FcosHead head(small_head(2, 8));
  EXPECT_THROW(head->forward({torch::randn({1, 6, 4, 4})}), std::invalid_argument);
  EXPECT_THROW(head->forward({}), std::invalid_argument);
  FcosHeadOptions bad = small_head(2, 8);
  bad.norm_groups = 3;
  try {
    FcosHead refused(bad);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model.head_norm_groups"), std::string::npos) << e.what();
  }
}

TEST(FcosBoxes, FlatteningFollowsTheAssignmentsLocationOrder) {
  // Level 0 is 2 × 3, level 1 is 1 × 2: location k of the flat order is (level, y·W + x).
  const torch::Tensor a = torch::arange(6, torch::kFloat32).view({1, 1, 2, 3});
  const torch::Tensor b = torch::arange(6, 8, torch::kFloat32).view({1, 1, 1, 2});
  EXPECT_TRUE(torch::equal(flatten_levels({a, b}).view({-1}), torch::arange(8, torch::kFloat32)));
  const std::vector<FcosLevel> levels = {{8, 2, 3, 0, 64}, {16, 1, 2, 64, 128}};
  const FcosTargets t = assign_fcos_targets(levels, {}, {});
  EXPECT_EQ(t.level_begin, (std::vector<std::int64_t>{0, 6, 8}));
}

// A 128 × 128 picture with two flat rectangles on noise; a ResNet-18-FPN (width 8, 16
// channels) with the head, trained on it alone, must find both boxes and their classes.
TEST(FcosBoxes, OverfitsOnePictureAndDecodesItsBoxes) {
  torch::manual_seed(0);
  const int side = 128;
  const std::vector<BoxXYXY> boxes = {{16, 24, 72, 88}, {80, 40, 120, 104}};
  const std::vector<std::int32_t> classes = {0, 1};
  torch::Tensor image = torch::randn({1, 3, side, side}) * 0.3;
  using torch::indexing::Slice;
  image.index_put_({0, 0, Slice(24, 88), Slice(16, 72)}, 1.5);
  image.index_put_({0, 2, Slice(40, 104), Slice(80, 120)}, -1.5);

  FeaturePyramidOptions fpn_options;
  fpn_options.backbone = "resnet18";
  fpn_options.width = 8;
  fpn_options.channels = 16;
  FeaturePyramid fpn(fpn_options);
  FcosHead head(small_head(2, 16));
  std::vector<int> strides;
  for (const ShapeSpec& s : fpn->output_shapes()) strides.push_back(s.stride_px);
  const FcosTargets targets = assign_fcos_targets(fcos_levels(side, side), boxes, classes);
  ASSERT_GT(targets.num_positive, 4);
  std::vector<torch::Tensor> parameters = fpn->parameters();
  for (const auto& p : head->parameters()) parameters.push_back(p);
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(2e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    optimizer.zero_grad();
    const FcosBoxLosses losses =
        fcos_box_losses(head->forward(fpn->forward(image).maps), {targets}, strides);
    losses.total.backward();
    optimizer.step();
    if (step == 0) first = losses.total.item<double>();
    last = losses.total.item<double>();
  }
  EXPECT_LT(last, 0.5 * first);
  fpn->eval();
  head->eval();
  const auto detections = decode_fcos_boxes(head->forward(fpn->forward(image).maps), strides);
  ASSERT_EQ(detections.size(), 1u);
  ASSERT_GE(detections[0].size(), 2u);
  for (std::size_t g = 0; g < boxes.size(); ++g) {
    // The best detection of the box's class covers it.
    double best = 0;
    for (const FcosDetection& d : detections[0])
      if (d.class_index == classes[g]) best = std::max(best, box_iou(d.box, boxes[g]));
    EXPECT_GT(best, 0.7) << "box " << g;
  }
  // Detections come highest score first, at most 100.
  for (std::size_t k = 1; k < detections[0].size(); ++k)
    EXPECT_GE(detections[0][k - 1].score, detections[0][k].score);
  EXPECT_LE(detections[0].size(), 100u);
}

}  // namespace
}  // namespace centermask
