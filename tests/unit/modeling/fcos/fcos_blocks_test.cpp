// FCOS's building blocks, shared by PolarMask and CenterMask-FCOS: greedy box NMS against
// its step-by-step reference and on hand-made boxes; the assignment of boxes to locations
// (inside the box, center sampling, size ranges per level, the smallest box wins, exact
// distances and centerness); the sigmoid focal loss and the IoU losses by hand and by finite
// differences.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>

#include "centermask/modeling/fcos/fcos_assignment.h"
#include "modeling/layers/losses.h"
#include "modeling/ops/nms.h"

namespace centermask {
namespace {

TEST(BoxNms, KeepsTheBestOfEachOverlappingGroupAndIsClassWiseOnRequest) {
  // B overlaps A with IoU 0.6 (A = [0, 10) × [0, 10), B shifted by 2.5 in x: 75 / 125);
  // C is elsewhere.
  const std::vector<BoxXYXY> boxes = {{0, 0, 10, 10}, {2.5f, 0, 12.5f, 10}, {30, 30, 40, 40}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  EXPECT_NEAR(box_iou(boxes[0], boxes[1]), 0.6, 1e-9);
  EXPECT_EQ(box_nms(boxes, scores, 0.5), (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(box_nms(boxes, scores, 0.7), (std::vector<std::int64_t>{0, 1, 2}));
  // B of another class survives class-wise NMS.
  EXPECT_EQ(box_nms(boxes, scores, 0.5, {0, 1, 0}), (std::vector<std::int64_t>{0, 1, 2}));
  // Equal scores: the lower index first, and it suppresses the other.
  EXPECT_EQ(box_nms(boxes, {0.5f, 0.5f, 0.5f}, 0.5), (std::vector<std::int64_t>{0, 2}));
  // Empty input, an empty box (IoU 0 with anything), and mismatched lengths.
  EXPECT_TRUE(box_nms({}, {}, 0.5).empty());
  EXPECT_EQ(box_nms({{5, 5, 5, 5}, {0, 0, 10, 10}}, {0.9f, 0.8f}, 0.1),
            (std::vector<std::int64_t>{0, 1}));
  EXPECT_THROW(box_nms(boxes, {0.9f}, 0.5), std::invalid_argument);
  EXPECT_THROW(box_nms(boxes, scores, 0.5, {0}), std::invalid_argument);
}

TEST(BoxNms, EqualsTheStepByStepReferenceOnRandomBoxes) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> corner(0, 100), side(1, 40), score(0, 1);
  std::uniform_int_distribution<int> cls(0, 2);
  for (int n : {1, 2, 7, 64, 301}) {
    std::vector<BoxXYXY> boxes;
    std::vector<float> scores;
    std::vector<std::int64_t> classes;
    for (int i = 0; i < n; ++i) {
      const float x = corner(rng), y = corner(rng);
      boxes.push_back({x, y, x + side(rng), y + side(rng)});
      // A few repeated scores, so that ties are exercised too.
      scores.push_back(i % 5 == 0 ? 0.5f : score(rng));
      classes.push_back(cls(rng));
    }
    for (double threshold : {0.0, 0.3, 0.5, 0.9}) {
      EXPECT_EQ(box_nms(boxes, scores, threshold), box_nms_reference(boxes, scores, threshold))
          << n << " boxes, threshold " << threshold;
      EXPECT_EQ(box_nms(boxes, scores, threshold, classes),
                box_nms_reference(boxes, scores, threshold, classes))
          << n << " boxes, class-wise, threshold " << threshold;
    }
  }
}

std::vector<std::int64_t> positives_of_level(const FcosTargets& t, std::size_t level) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = t.level_begin[level]; i < t.level_begin[level + 1]; ++i)
    if (t.object[static_cast<std::size_t>(i)] >= 0) out.push_back(i - t.level_begin[level]);
  return out;
}

TEST(FcosAssignment, InsideTheBoxOrItsCentralRegionWithExactDistances) {
  // One level, stride 8, 8 × 8 locations at 4, 12, …, 60; the box [8, 40)² centered at 24.
  const std::vector<FcosLevel> level = {{8, 8, 8, 0, 1e9f}};
  const std::vector<BoxXYXY> box = {{8, 8, 40, 40}};
  FcosAssignOptions whole_box;
  whole_box.center_sampling_radius = 0;
  const FcosTargets inside = assign_fcos_targets(level, box, {3}, whole_box);
  EXPECT_EQ(inside.num_locations(), 64);
  EXPECT_EQ(inside.num_positive, 16);  // x, y in {12, 20, 28, 36}
  // Center sampling, radius 1.5 · 8 = 12 px: (12, 36) around 24 keeps x, y in {20, 28}.
  const FcosTargets sampled = assign_fcos_targets(level, box, {3});
  EXPECT_EQ(sampled.num_positive, 4);
  EXPECT_EQ(positives_of_level(sampled, 0), (std::vector<std::int64_t>{18, 19, 26, 27}));
  // Location (20, 20) = index 2·8 + 2: distances 12, 12, 20, 20; centerness √(0.6 · 0.6).
  const std::size_t i = 18;
  EXPECT_EQ(sampled.label[i], 3);
  EXPECT_EQ(sampled.object[i], 0);
  EXPECT_EQ(std::vector<float>(sampled.ltrb.begin() + 4 * 18, sampled.ltrb.begin() + 4 * 19),
            (std::vector<float>{12, 12, 20, 20}));
  EXPECT_NEAR(sampled.centerness[i], 0.6f, 1e-6f);
  EXPECT_EQ(sampled.label[0], -1);
  EXPECT_EQ(sampled.centerness[0], 0.0f);
  EXPECT_FLOAT_EQ(fcos_centerness(5, 5, 5, 5), 1.0f);
  EXPECT_EQ(fcos_centerness(0, 5, 5, 5), 0.0f);
}

TEST(FcosAssignment, TheSmallestBoxWinsWhereBoxesOverlap) {
  const std::vector<FcosLevel> level = {{8, 8, 8, 0, 1e9f}};
  // The small box [16, 32)² lies inside the large one; both contain (20, 20) and (28, 28).
  const std::vector<BoxXYXY> boxes = {{8, 8, 40, 40}, {16, 16, 32, 32}};
  const FcosTargets t = assign_fcos_targets(level, boxes, {0, 1});
  for (std::size_t i : {18u, 19u, 26u, 27u}) {
    EXPECT_EQ(t.object[i], 1) << i;
    EXPECT_EQ(t.label[i], 1) << i;
  }
  // The order of the boxes does not matter.
  const FcosTargets swapped = assign_fcos_targets(level, {boxes[1], boxes[0]}, {1, 0});
  for (std::size_t i : {18u, 19u, 26u, 27u}) EXPECT_EQ(swapped.label[i], 1) << i;
}

TEST(FcosAssignment, EachBoxGoesToTheLevelWhoseSizeRangeHoldsItsReach) {
  const std::vector<FcosLevel> levels = fcos_levels(256, 256);
  ASSERT_EQ(levels.size(), 5u);
  EXPECT_EQ(levels[0].height, 32);
  EXPECT_EQ(levels[4].stride_px, 128);
  EXPECT_EQ(levels[4].height, 2);
  EXPECT_EQ(fcos_levels(96, 160)[4].width, 2);  // ⌈160 / 128⌉
  // Worked by hand. The box [10, 110)², center 60. P3 (stride 8, central region (48, 72)):
  // locations 52, 60, 68 reach at most 58 ≤ 64: all 9 positive. P4 (stride 16, region (36,
  // 84)): locations 40, 56, 72; only those with a coordinate at 40 reach 70 ∈ [64, 128]: 5
  // positive. P5 (region (12, 108)): locations 16, 48, 80 reach at most 94 < 128: none.
  const FcosTargets medium = assign_fcos_targets(levels, {{10, 10, 110, 110}}, {0});
  const std::size_t medium_counts[5] = {9, 5, 0, 0, 0};
  for (std::size_t level = 0; level < 5; ++level)
    EXPECT_EQ(positives_of_level(medium, level).size(), medium_counts[level]) << "P" << level + 3;
  // The box [0, 200)², center 100. P3 (region (88, 112)): locations reach ≥ 108 > 64: none.
  // P4 (region (76, 124)): locations 88, 104, 120 reach 104–120: all 9. P5 (region (52,
  // 148)): locations 80, 112, 144; only a coordinate at 144 reaches 144 ≥ 128: 5. P6: none.
  const FcosTargets large = assign_fcos_targets(levels, {{0, 0, 200, 200}}, {0});
  const std::size_t large_counts[5] = {0, 9, 5, 0, 0};
  for (std::size_t level = 0; level < 5; ++level)
    EXPECT_EQ(positives_of_level(large, level).size(), large_counts[level]) << "P" << level + 3;
  // No boxes: all background. Mismatched inputs: an error.
  EXPECT_EQ(assign_fcos_targets(levels, {}, {}).num_positive, 0);
  EXPECT_THROW(assign_fcos_targets(levels, {{0, 0, 8, 8}}, {}), std::invalid_argument);
}

TEST(SigmoidFocalLoss, MatchesTheFormulaByHandAndItsGradientByFiniteDifferences) {
  const torch::Tensor logits =
      torch::tensor({0.0, 2.0, -1.0, 0.5, 3.0, -4.0}, torch::kFloat64).view({3, 2});
  const torch::Tensor labels = torch::tensor({1, -1, 0}, torch::kInt64);
  const double alpha = 0.25, gamma = 2.0;
  double expected = 0;
  const auto values = logits.accessor<double, 2>();
  const std::int64_t label_of[3] = {1, -1, 0};
  for (int m = 0; m < 3; ++m)
    for (int c = 0; c < 2; ++c) {
      const double p = 1 / (1 + std::exp(-values[m][c]));
      expected += label_of[m] == c ? -alpha * std::pow(1 - p, gamma) * std::log(p)
                                   : -(1 - alpha) * std::pow(p, gamma) * std::log(1 - p);
    }
  torch::Tensor x = logits.clone().requires_grad_(true);
  const torch::Tensor loss = sigmoid_focal_loss(x, labels, alpha, gamma);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-12);
  loss.backward();
  const double h = 1e-6;
  for (int e = 0; e < 6; ++e) {
    torch::Tensor plus = logits.clone(), minus = logits.clone();
    plus.view({-1})[e] += h;
    minus.view({-1})[e] -= h;
    const double numeric = (sigmoid_focal_loss(plus, labels).item<double>() -
                            sigmoid_focal_loss(minus, labels).item<double>()) /
                           (2 * h);
    EXPECT_NEAR(x.grad().view({-1})[e].item<double>(), numeric, 1e-7) << "element " << e;
  }
  // Large logits stay finite; a shape mismatch is refused.
  EXPECT_TRUE(std::isfinite(
      sigmoid_focal_loss(torch::tensor({{80.0, -80.0}}), torch::tensor({0}, torch::kInt64))
          .item<double>()));
  EXPECT_THROW(sigmoid_focal_loss(torch::zeros({3, 2}), torch::zeros({2}, torch::kInt64)),
               std::invalid_argument);
}

TEST(LtrbIouLoss, ValuesByHandWeightsAndFiniteDifferences) {
  const auto f64 = torch::kFloat64;
  // Identical boxes: both losses 0.
  const torch::Tensor box = torch::tensor({{2.0, 3.0, 4.0, 5.0}}, f64);
  const torch::Tensor one = torch::ones({1}, f64);
  EXPECT_NEAR(ltrb_iou_loss(box, box, one, IouLossKind::kLogIou).item<double>(), 0, 1e-12);
  EXPECT_NEAR(ltrb_iou_loss(box, box, one, IouLossKind::kGiou).item<double>(), 0, 1e-7);
  // A 2 × 2 box inside a 4 × 4 one around the same location: IoU (4 + 1) / (16 + 1); the
  // enclosing box is the larger, so GIoU = IoU.
  const torch::Tensor small = torch::tensor({{1.0, 1.0, 1.0, 1.0}}, f64);
  const torch::Tensor large = torch::tensor({{2.0, 2.0, 2.0, 2.0}}, f64);
  EXPECT_NEAR(ltrb_iou_loss(small, large, one, IouLossKind::kLogIou).item<double>(),
              -std::log(5.0 / 17.0), 1e-12);
  EXPECT_NEAR(ltrb_iou_loss(small, large, one, IouLossKind::kGiou).item<double>(), 1 - 5.0 / 17.0,
              1e-7);
  // A wide box across a tall one: the enclosing 8 × 8 square exceeds their union (28), and
  // GIoU subtracts the empty part: (4 + 1) / (28 + 1) − (64 − 28) / 64.
  const torch::Tensor wide = torch::tensor({{4.0, 1.0, 4.0, 1.0}}, f64);
  const torch::Tensor tall = torch::tensor({{1.0, 4.0, 1.0, 4.0}}, f64);
  EXPECT_NEAR(ltrb_iou_loss(wide, tall, one, IouLossKind::kGiou).item<double>(),
              1 - (5.0 / 29.0 - 36.0 / 64.0), 1e-6);
  const torch::Tensor left = torch::tensor({{4.0, 1.0, 0.5, 1.0}}, f64);
  const torch::Tensor right = torch::tensor({{0.5, 1.0, 4.0, 1.5}}, f64);
  // Weighted mean over boxes; all-zero weights give 0, not NaN.
  const torch::Tensor pair_pred = torch::cat({small, box}), pair_target = torch::cat({large, box});
  EXPECT_NEAR(
      ltrb_iou_loss(pair_pred, pair_target, torch::tensor({3.0, 1.0}, f64), IouLossKind::kLogIou)
          .item<double>(),
      3 * -std::log(5.0 / 17.0) / 4, 1e-12);
  EXPECT_EQ(ltrb_iou_loss(pair_pred, pair_target, torch::zeros({2}, f64), IouLossKind::kGiou)
                .item<double>(),
            0.0);
  // Gradients by central differences.
  for (IouLossKind kind : {IouLossKind::kLogIou, IouLossKind::kGiou}) {
    torch::Tensor x = left.clone().requires_grad_(true);
    ltrb_iou_loss(x, right, one, kind).backward();
    for (int e = 0; e < 4; ++e) {
      torch::Tensor plus = left.clone(), minus = left.clone();
      plus.view({-1})[e] += 1e-6;
      minus.view({-1})[e] -= 1e-6;
      const double numeric = (ltrb_iou_loss(plus, right, one, kind).item<double>() -
                              ltrb_iou_loss(minus, right, one, kind).item<double>()) /
                             2e-6;
      EXPECT_NEAR(x.grad().view({-1})[e].item<double>(), numeric, 1e-6) << "element " << e;
    }
  }
  EXPECT_THROW(ltrb_iou_loss(torch::zeros({2, 3}), torch::zeros({2, 3}), torch::ones({2}),
                             IouLossKind::kGiou),
               std::invalid_argument);
}

TEST(PolarIouLoss, ValuesByHandWeightsAndFiniteDifferences) {
  const auto f64 = torch::kFloat64;
  const torch::Tensor one = torch::ones({1}, f64);
  // Equal rays: 0. Rays (1, 2, 3) against (2, 2, 1): Σmax 2 + 2 + 3 = 7, Σmin 1 + 2 + 1 = 4.
  const torch::Tensor a = torch::tensor({{1.0, 2.0, 3.0}}, f64);
  const torch::Tensor b = torch::tensor({{2.0, 2.0, 1.0}}, f64);
  EXPECT_NEAR(polar_iou_loss(a, a, one).item<double>(), 0, 1e-15);
  EXPECT_NEAR(polar_iou_loss(a, b, one).item<double>(), std::log(7.0 / 4.0), 1e-12);
  // Symmetric in its arguments, and a weighted mean over locations; zero weights give 0.
  EXPECT_NEAR(polar_iou_loss(b, a, one).item<double>(), std::log(7.0 / 4.0), 1e-12);
  const torch::Tensor pred = torch::cat({a, a}), target = torch::cat({b, a});
  EXPECT_NEAR(polar_iou_loss(pred, target, torch::tensor({1.0, 3.0}, f64)).item<double>(),
              std::log(7.0 / 4.0) / 4, 1e-12);
  EXPECT_EQ(polar_iou_loss(pred, target, torch::zeros({2}, f64)).item<double>(), 0.0);
  // Gradient by central differences (away from ties, where max/min switch).
  const torch::Tensor at = torch::tensor({{1.3, 2.6, 0.7, 4.1}}, f64);
  const torch::Tensor goal = torch::tensor({{2.0, 2.2, 1.0, 3.0}}, f64);
  torch::Tensor x = at.clone().requires_grad_(true);
  polar_iou_loss(x, goal, one).backward();
  for (int e = 0; e < 4; ++e) {
    torch::Tensor plus = at.clone(), minus = at.clone();
    plus.view({-1})[e] += 1e-6;
    minus.view({-1})[e] -= 1e-6;
    const double numeric = (polar_iou_loss(plus, goal, one).item<double>() -
                            polar_iou_loss(minus, goal, one).item<double>()) /
                           2e-6;
    EXPECT_NEAR(x.grad().view({-1})[e].item<double>(), numeric, 1e-6) << "element " << e;
  }
  EXPECT_THROW(polar_iou_loss(torch::ones({2, 36}), torch::ones({2, 18}), torch::ones({2})),
               std::invalid_argument);
}

}  // namespace
}  // namespace centermask
