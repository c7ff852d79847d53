// The loss terms against values worked out by hand on tiny tensors, the mask assembly against
// a naive per-object reference, and autograd against finite differences.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <tuple>

#include "modeling/layers/losses.h"
#include "modeling/ops/mask_assembly.h"

namespace centermask {
namespace {

namespace F = torch::nn::functional;

double logit(double p) { return std::log(p / (1 - p)); }

TEST(FocalHeatmapLoss, MatchesTheFormulaByHand) {
  // One image, one class, 1×3: a positive (p = 0.8), a near-center negative (y = 0.5,
  // p = 0.3) and a far negative (y = 0, p = 0.1).
  torch::Tensor logits =
      torch::tensor({logit(0.8), logit(0.3), logit(0.1)}, torch::kFloat64).view({1, 1, 1, 3});
  torch::Tensor target = torch::tensor({1.0, 0.5, 0.0}, torch::kFloat64).view({1, 1, 1, 3});
  const double positive = std::pow(0.2, 2) * std::log(0.8);
  const double negative =
      std::pow(0.5, 4) * std::pow(0.3, 2) * std::log(0.7) + std::pow(0.1, 2) * std::log(0.9);
  EXPECT_NEAR(focal_heatmap_loss(logits, target).item<double>(), -(positive + negative) / 1, 1e-12);
}

TEST(FocalHeatmapLoss, DividesByPositivesAndClampsConfidentPredictions) {
  // Two positives, one predicted with p → 1 − 1e-9 (clamped to 1 − 1e-4), one at p = 0.5.
  torch::Tensor logits = torch::tensor({30.0, 0.0, -30.0}, torch::kFloat64).view({1, 1, 1, 3});
  torch::Tensor target = torch::tensor({1.0, 1.0, 0.0}, torch::kFloat64).view({1, 1, 1, 3});
  const double clamped = 1 - 1e-4;
  const double positive = std::pow(1 - clamped, 2) * std::log(clamped) + 0.25 * std::log(0.5);
  const double negative = std::pow(1e-4, 2) * std::log(1 - 1e-4);
  EXPECT_NEAR(focal_heatmap_loss(logits, target).item<double>(), -(positive + negative) / 2, 1e-12);
}

TEST(FocalHeatmapLoss, NoObjectsLeavesTheNegativeTermUndivided) {
  torch::Tensor logits = torch::full({2, 3, 4, 5}, logit(0.1), torch::kFloat64);
  torch::Tensor target = torch::zeros({2, 3, 4, 5}, torch::kFloat64);
  const double expected = -120 * 0.01 * std::log(0.9);
  EXPECT_NEAR(focal_heatmap_loss(logits, target).item<double>(), expected, 1e-10);
}

// The fused CPU kernel against the op-by-op reference: value and gradient, on odd shapes, with
// clamped logits, soft targets, several positives and none, in float32 and float64.
TEST(FocalHeatmapLoss, FusedKernelMatchesTheReference) {
  torch::manual_seed(3);
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (const std::vector<std::int64_t>& shape :
         std::vector<std::vector<std::int64_t>>{{1, 1, 1, 1}, {3, 5, 7, 9}, {2, 3, 129, 67}}) {
      for (const int positives : {0, 1, 17}) {
        torch::Tensor logits = torch::randn(shape, torch::dtype(dtype)) * 6;
        logits.view({-1})[0] = 40;  // clamped on both sides
        if (logits.numel() > 1) logits.view({-1})[1] = -40;
        torch::Tensor target = torch::rand(shape, torch::dtype(dtype)) * 0.99;
        for (int i = 0; i < positives && i < target.numel(); ++i)
          target.view({-1})[(i * 7919) % target.numel()] = 1.0;
        torch::Tensor a = logits.clone().requires_grad_(true);
        torch::Tensor b = logits.clone().requires_grad_(true);
        const torch::Tensor fused = focal_heatmap_loss(a, target);
        const torch::Tensor reference = focal_heatmap_loss_reference(b, target);
        const double tolerance = dtype == torch::kFloat32 ? 2e-5 : 1e-10;
        EXPECT_NEAR(fused.item<double>(), reference.item<double>(),
                    tolerance * std::max(1.0, std::abs(reference.item<double>())));
        (fused * 3).backward();
        (reference * 3).backward();
        EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), tolerance, tolerance))
            << "max difference " << (a.grad() - b.grad()).abs().max().item<double>();
      }
    }
  }
}

TEST(DenseL1Loss, WeighsCellsAndDividesByObjects) {
  torch::Tensor pred = torch::zeros({1, 2, 1, 3}, torch::kFloat64);
  torch::Tensor target =
      torch::tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, torch::kFloat64).view({1, 2, 1, 3});
  torch::Tensor weight = torch::tensor({0.25, 0.75, 0.0}, torch::kFloat64).view({1, 1, 3});
  // (0.25·(1 + 4) + 0.75·(2 + 5)) / 1 object.
  EXPECT_NEAR(dense_l1_loss(pred, target, weight, 1).item<double>(), 0.25 * 5 + 0.75 * 7, 1e-12);
  EXPECT_EQ(dense_l1_loss(pred, target, weight * 0, 0).item<double>(), 0.0);
}

TEST(DenseGiouLoss, MatchesTheFormulaByHand) {
  // One cell: predicted box [0, 2] × [0, 2] (offset (1, 1), size (2, 2)), target [1, 3] × [0, 2]:
  // intersection 2, union 6, hull 3 × 2 = 6: GIoU = 1/3, the loss 2/3.
  const auto map = [](double x, double y) {
    return torch::tensor({x, y}, torch::kFloat64).view({1, 2, 1, 1});
  };
  const torch::Tensor weight = torch::ones({1, 1, 1}, torch::kFloat64);
  // The loss divides by union + 1e-6 and hull + 1e-6 (no 0/0 for empty boxes): that much off.
  const double kEpsilonShare = 1e-6;
  EXPECT_NEAR(dense_giou_loss(map(1, 1), map(2, 2), map(2, 1), map(2, 2), weight, 1).item<double>(),
              2.0 / 3.0, kEpsilonShare);
  // Disjoint boxes [0, 1]² and [2, 3] × [0, 1]: IoU 0, hull 3 against union 2: loss 1 + 1/3.
  EXPECT_NEAR(
      dense_giou_loss(map(0.5, 0.5), map(1, 1), map(2.5, 0.5), map(1, 1), weight, 1).item<double>(),
      4.0 / 3.0, kEpsilonShare);
  // The same box: 0.
  EXPECT_NEAR(
      dense_giou_loss(map(0.3, -2), map(4, 7), map(0.3, -2), map(4, 7), weight, 1).item<double>(),
      0.0, kEpsilonShare);
}

TEST(DenseGiouLoss, MatchesTheReferenceOnOddShapes) {
  torch::manual_seed(3);
  for (const auto& [n, h, w] : {std::tuple{1, 1, 1}, std::tuple{2, 5, 7}, std::tuple{3, 9, 4}}) {
    const torch::Tensor offset = torch::randn({n, 2, h, w}, torch::kFloat64) * 2;
    // Some predicted sizes negative: they count as 0.
    const torch::Tensor size = torch::randn({n, 2, h, w}, torch::kFloat64) * 3 + 2;
    const torch::Tensor target_offset = torch::randn({n, 2, h, w}, torch::kFloat64) * 2;
    const torch::Tensor target_size = torch::rand({n, 2, h, w}, torch::kFloat64) * 6 + 0.5;
    // Half the cells carry no weight (outside every object's Gaussian).
    const torch::Tensor weight =
        torch::rand({n, h, w}, torch::kFloat64) * torch::rand({n, h, w}).gt(0.5);
    for (std::int64_t objects : {0, 1, 5}) {
      const double expected =
          dense_giou_loss_reference(offset, size, target_offset, target_size, weight, objects);
      EXPECT_NEAR(
          dense_giou_loss(offset, size, target_offset, target_size, weight, objects).item<double>(),
          expected, 1e-9 * std::max(1.0, std::abs(expected)))
          << n << "x" << h << "x" << w << ", " << objects << " objects";
    }
  }
}

TEST(DenseGiouLoss, NoWeightedCellsGivesZeroWithAGradient) {
  const torch::Tensor offset = torch::randn({2, 2, 3, 3}).requires_grad_();
  const torch::Tensor size = torch::randn({2, 2, 3, 3}).requires_grad_();
  const torch::Tensor loss =
      dense_giou_loss(offset, size, torch::zeros({2, 2, 3, 3}), torch::zeros({2, 2, 3, 3}),
                      torch::zeros({2, 3, 3}), 0);
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();  // the graph stays connected, so a batch without objects still steps
  EXPECT_EQ(offset.grad().abs().sum().item<double>(), 0.0);
}

TEST(DenseGiouLoss, GradientsMatchFiniteDifferencesOfTheReference) {
  torch::manual_seed(5);
  const torch::Tensor offset = torch::randn({1, 2, 3, 4}, torch::kFloat64).requires_grad_();
  const torch::Tensor size = (torch::rand({1, 2, 3, 4}, torch::kFloat64) * 3 + 1).requires_grad_();
  const torch::Tensor target_offset = torch::randn({1, 2, 3, 4}, torch::kFloat64);
  const torch::Tensor target_size = torch::rand({1, 2, 3, 4}, torch::kFloat64) * 3 + 1;
  const torch::Tensor weight = torch::rand({1, 3, 4}, torch::kFloat64);
  dense_giou_loss(offset, size, target_offset, target_size, weight, 2).backward();
  for (const torch::Tensor* param : {&offset, &size}) {
    for (std::int64_t i = 0; i < param->numel(); ++i) {
      const double h = 1e-6;
      torch::Tensor plus = param->detach().clone(), minus = param->detach().clone();
      plus.view({-1})[i] += h;
      minus.view({-1})[i] -= h;
      const bool is_offset = param == &offset;
      const auto loss = [&](const torch::Tensor& changed) {
        return dense_giou_loss_reference(is_offset ? changed : offset.detach(),
                                         is_offset ? size.detach() : changed, target_offset,
                                         target_size, weight, 2);
      };
      const double numeric = (loss(plus) - loss(minus)) / (2 * h);
      EXPECT_NEAR(param->grad().view({-1})[i].item<double>(), numeric, 1e-5) << "element " << i;
    }
  }
}

TEST(MeanObjectDice, PerfectDisjointAndEmptyMasks) {
  // Object 0 predicts its target exactly, object 1 the complement of its target, object 2 has
  // nothing to find and predicts nothing (a perfect match, not 0/0).
  torch::Tensor t = torch::zeros({3, 2, 2}, torch::kFloat64);
  t[0][0][0] = 1, t[0][1][1] = 1, t[1][0][0] = 1;
  torch::Tensor p = t.clone();
  p[1] = 1 - t[1];
  p[2].zero_();
  const torch::Tensor inside = torch::ones({3, 2, 2}, torch::kBool);
  EXPECT_NEAR(mean_object_dice(p, t, inside).item<double>(), (0 + 1 + 0) / 3.0, 1e-12);
  // Soft values by hand: p = (0.5, 0.5), t = (1, 0): 1 − 2·0.5 / (0.5 + 1) = 1/3; the pixel
  // outside `inside` does not count.
  torch::Tensor p2 = torch::tensor({0.5, 0.5, 0.9}, torch::kFloat64).view({1, 1, 3});
  torch::Tensor t2 = torch::tensor({1.0, 0.0, 0.0}, torch::kFloat64).view({1, 1, 3});
  torch::Tensor in2 = torch::tensor({true, true, false}).view({1, 1, 3});
  EXPECT_NEAR(mean_object_dice(p2, t2, in2).item<double>(), 1.0 / 3.0, 1e-12);
  // Object weights, and no objects at all.
  const torch::Tensor w = torch::tensor({1.0, 3.0, 0.0}, torch::kFloat64);
  EXPECT_NEAR(mean_object_dice(p, t, inside, w).item<double>(), 3.0 / 4.0, 1e-12);
  EXPECT_EQ(
      mean_object_dice(p.slice(0, 0, 0), t.slice(0, 0, 0), inside.slice(0, 0, 0)).item<double>(),
      0.0);
}

TEST(CenterL1Loss, ReadsTheCentersAndDividesByObjects) {
  // (N = 2, 2, H = 2, W = 3); image 0 has objects at cells 1 and 5, image 1 one at cell 4,
  // plus an invalid slot whose values must not count.
  torch::Tensor pred = torch::arange(24, torch::kFloat64).view({2, 2, 2, 3});
  torch::Tensor cell = torch::tensor({1, 5, 4, 0}, torch::kInt64).view({2, 2});
  torch::Tensor target =
      torch::tensor({0.0, 7.0, 5.0, 10.0, 16.0, 22.0, 99.0, 99.0}, torch::kFloat64).view({2, 2, 2});
  torch::Tensor valid = torch::tensor({1.0, 1.0, 1.0, 0.0}, torch::kFloat64).view({2, 2});
  // Predictions: image 0 cell 1 → (1, 7); cell 5 → (5, 11); image 1 cell 4 → (16, 22).
  const double expected = (1 + 0 + 0 + 1 + 0 + 0) / 3.0;
  EXPECT_NEAR(center_l1_loss(pred, cell, target, valid, 3).item<double>(), expected, 1e-12);
  EXPECT_EQ(center_l1_loss(pred, cell, target, valid * 0, 0).item<double>(), 0.0);
}

TEST(MeanObjectBce, AveragesPixelsPerObjectThenObjects) {
  // Object 0: two inside pixels; object 1: one inside pixel (the rest is padding).
  torch::Tensor p = torch::tensor({0.9, 0.2, 0.5, 0.7, 0.6, 0.3}, torch::kFloat64).view({2, 1, 3});
  torch::Tensor t = torch::tensor({1.0, 0.0, 1.0, 0.25, 0.0, 0.0}, torch::kFloat64).view({2, 1, 3});
  torch::Tensor inside = torch::tensor({1, 1, 0, 1, 0, 0}, torch::kBool).view({2, 1, 3});
  const double object0 = (-std::log(0.9) - std::log(0.8)) / 2;
  const double object1 = -(0.25 * std::log(0.7) + 0.75 * std::log(0.3));
  EXPECT_NEAR(mean_object_bce(p, t, inside).item<double>(), (object0 + object1) / 2, 1e-12);
  EXPECT_EQ(
      mean_object_bce(p.slice(0, 0, 0), t.slice(0, 0, 0), inside.slice(0, 0, 0)).item<double>(),
      0.0);
  // Weighted over objects: weight 3 on object 0, 1 on object 1.
  torch::Tensor w = torch::tensor({3.0, 1.0}, torch::kFloat64);
  EXPECT_NEAR(mean_object_bce(p, t, inside, w).item<double>(), (3 * object0 + object1) / 4, 1e-12);
}

/// The assembly written the obvious way, one object at a time: interpolate the S×S shape to
/// the region's size, crop the saliency channel, multiply, and mark cells off the map.
void reference_assembly(const MaskAssemblyInput& in, int m, torch::Tensor* probability,
                        torch::Tensor* inside) {
  const CellRegion& r = in.regions[static_cast<std::size_t>(m)];
  const int H = in.map_height, W = in.map_width;
  torch::Tensor p = torch::ones({r.height(), r.width()}, torch::kFloat64);
  if (in.shape_logits.defined()) {
    torch::Tensor local = F::interpolate(in.shape_logits[m].unsqueeze(0).unsqueeze(0),
                                         F::InterpolateFuncOptions()
                                             .size(std::vector<std::int64_t>{r.height(), r.width()})
                                             .mode(torch::kBilinear)
                                             .align_corners(false));
    p = p * torch::sigmoid(local[0][0]);
  }
  *inside = torch::zeros({r.height(), r.width()}, torch::kBool);
  torch::Tensor global = torch::zeros({r.height(), r.width()}, torch::kFloat64);
  for (int y = 0; y < r.height(); ++y)
    for (int x = 0; x < r.width(); ++x) {
      const int my = r.y0 + y, mx = r.x0 + x;
      if (my < 0 || mx < 0 || my >= H || mx >= W) continue;
      (*inside)[y][x] = true;
      if (in.saliency_logits.defined()) {
        const std::int64_t channel =
            in.saliency_logits.size(1) == 1 ? 0 : in.saliency_class[static_cast<std::size_t>(m)];
        global[y][x] =
            in.saliency_logits[in.image_index[static_cast<std::size_t>(m)]][channel][my][mx];
      }
    }
  if (in.saliency_logits.defined()) p = p * torch::sigmoid(global);
  *probability = p;
}

TEST(MaskAssembly, MatchesTheNaiveReferenceOnRandomRegions) {
  torch::manual_seed(3);
  const int H = 13, W = 17, S = 5;
  for (int variant = 0; variant < 3; ++variant) {  // both, shape only, saliency only
    MaskAssemblyInput in;
    in.map_height = H;
    in.map_width = W;
    const int m = 9;
    if (variant != 2) in.shape_logits = torch::randn({m, S, S}, torch::kFloat64);
    if (variant != 1) in.saliency_logits = torch::randn({2, 3, H, W}, torch::kFloat64);
    std::mt19937 rng(variant);
    for (int i = 0; i < m; ++i) {
      // Regions from 1×1 to larger than S, some hanging off every side of the map.
      const int x0 = static_cast<int>(rng() % 22) - 4, y0 = static_cast<int>(rng() % 18) - 4;
      in.regions.push_back(
          {x0, y0, x0 + 1 + static_cast<int>(rng() % 9), y0 + 1 + static_cast<int>(rng() % 7)});
      in.image_index.push_back(static_cast<std::int64_t>(rng() % 2));
      in.saliency_class.push_back(static_cast<std::int64_t>(rng() % 3));
    }
    const AssembledMasks out = assemble_masks(in);
    for (int i = 0; i < m; ++i) {
      torch::Tensor expected_p, expected_inside;
      reference_assembly(in, i, &expected_p, &expected_inside);
      const CellRegion& r = in.regions[static_cast<std::size_t>(i)];
      torch::Tensor got_p = out.probability[i].slice(0, 0, r.height()).slice(1, 0, r.width());
      torch::Tensor got_inside = out.inside[i].slice(0, 0, r.height()).slice(1, 0, r.width());
      EXPECT_TRUE(torch::equal(got_inside, expected_inside))
          << "variant " << variant << " object " << i;
      EXPECT_TRUE(torch::allclose(got_p.masked_select(got_inside),
                                  expected_p.masked_select(expected_inside), 1e-9, 1e-12))
          << "variant " << variant << " object " << i;
      // Nothing outside the region counts.
      EXPECT_EQ(out.inside[i].sum().item<std::int64_t>(),
                expected_inside.sum().item<std::int64_t>());
    }
  }
}

// bf16 inference hands over bf16 logits: the masks are those of the same values in fp32 (a
// grid computed in bf16 would shift large regions' masks by cells, as it once halved mask AP).
TEST(MaskAssembly, ReducedPrecisionLogitsAssembleAsTheirFloatValues) {
  torch::manual_seed(5);
  MaskAssemblyInput wide;
  wide.map_height = 150;
  wide.map_width = 160;
  wide.shape_logits = torch::randn({3, 32, 32}).to(torch::kBFloat16).to(torch::kFloat32);
  wide.saliency_logits = torch::randn({1, 2, 150, 160}).to(torch::kBFloat16).to(torch::kFloat32);
  wide.regions = {{0, 0, 150, 140}, {7, 3, 120, 97}, {100, 90, 160, 150}};
  wide.image_index = {0, 0, 0};
  wide.saliency_class = {0, 1, 1};
  MaskAssemblyInput narrow = wide;
  narrow.shape_logits = wide.shape_logits.to(torch::kBFloat16);
  narrow.saliency_logits = wide.saliency_logits.to(torch::kBFloat16);
  const AssembledMasks expected = assemble_masks(wide), got = assemble_masks(narrow);
  EXPECT_EQ(got.probability.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(got.inside, expected.inside));
  EXPECT_TRUE(torch::allclose(got.probability, expected.probability, 0, 1e-6));
}

// Inference's clip_margin: regions far larger than the map (an untrained network's boxes) are
// computed only within the margin of the map, and there the values are the unclipped ones
// (the shape still resized over the whole region), so the masks pasted from them are the same.
TEST(MaskAssembly, ClippedRegionsKeepTheValuesOfTheWholeRegionsNearTheMap) {
  torch::manual_seed(6);
  MaskAssemblyInput whole;
  whole.shape_logits = torch::randn({4, 8, 8}, torch::kFloat64);
  whole.saliency_logits = torch::randn({1, 2, 9, 11}, torch::kFloat64);
  // Hanging off every side; inside; a huge one around the whole map; one wholly off it.
  whole.regions = {{-40, -30, 6, 5}, {2, 3, 7, 8}, {-300, -250, 311, 290}, {50, 40, 60, 45}};
  whole.image_index = {0, 0, 0, 0};
  whole.saliency_class = {1, 0, 1, 0};
  MaskAssemblyInput clipped = whole;
  clipped.clip_margin = 1;
  const AssembledMasks expected = assemble_masks(whole), got = assemble_masks(clipped);
  const std::vector<CellRegion> want = {{-1, -1, 6, 5}, {2, 3, 7, 8}, {-1, -1, 12, 10}};
  ASSERT_EQ(got.computed.size(), 4u);
  EXPECT_EQ(got.computed[3].width(), 0);  // off the map: nothing to compute
  EXPECT_EQ(got.computed[3].height(), 0);
  EXPECT_FALSE(got.inside[3].any().item<bool>());
  EXPECT_EQ(got.probability.size(1), 11);  // the largest clipped side, not 540
  EXPECT_EQ(got.probability.size(2), 13);
  for (std::size_t i = 0; i < 3; ++i) {
    const CellRegion& c = got.computed[i];
    const CellRegion& r = whole.regions[i];
    EXPECT_EQ(std::tie(c.x0, c.y0, c.x1, c.y1),
              std::tie(want[i].x0, want[i].y0, want[i].x1, want[i].y1))
        << i;
    const auto m = static_cast<std::int64_t>(i);
    const torch::Tensor unclipped = expected.probability[m]
                                        .slice(0, c.y0 - r.y0, c.y1 - r.y0)
                                        .slice(1, c.x0 - r.x0, c.x1 - r.x0);
    EXPECT_TRUE(
        torch::equal(got.probability[m].slice(0, 0, c.height()).slice(1, 0, c.width()), unclipped))
        << i;
    EXPECT_TRUE(torch::equal(
        got.inside[m].slice(0, 0, c.height()).slice(1, 0, c.width()),
        expected.inside[m].slice(0, c.y0 - r.y0, c.y1 - r.y0).slice(1, c.x0 - r.x0, c.x1 - r.x0)))
        << i;
  }
  // Without a margin the regions are what was given.
  EXPECT_EQ(expected.computed[2].x1, 311);
}

TEST(MaskAssembly, NoObjectsGivesEmptyTensors) {
  MaskAssemblyInput in;
  in.saliency_logits = torch::randn({1, 1, 4, 4});
  const AssembledMasks out = assemble_masks(in);
  EXPECT_EQ(out.probability.size(0), 0);
  EXPECT_THROW(assemble_masks(MaskAssemblyInput{}), std::invalid_argument);
}

TEST(MaskAssembly, GradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  MaskAssemblyInput in;
  in.shape_logits = torch::randn({2, 3, 3}, torch::dtype(torch::kFloat64).requires_grad(true));
  in.saliency_logits =
      torch::randn({1, 2, 5, 6}, torch::dtype(torch::kFloat64).requires_grad(true));
  in.regions = {{1, 0, 5, 3}, {-1, 3, 3, 7}};  // the second hangs off the map
  in.image_index = {0, 0};
  in.saliency_class = {1, 0};
  torch::Tensor target = torch::rand({2, 4, 4}, torch::kFloat64);
  auto loss_of = [&](const MaskAssemblyInput& input) {
    const AssembledMasks masks = assemble_masks(input);
    return mean_object_bce(
        masks.probability,
        target.slice(1, 0, masks.probability.size(1)).slice(2, 0, masks.probability.size(2)),
        masks.inside);
  };
  loss_of(in).backward();
  for (torch::Tensor* param : {&in.shape_logits, &in.saliency_logits}) {
    torch::Tensor analytic = param->grad().clone();
    torch::Tensor flat = param->detach().reshape({-1});
    for (std::int64_t i = 0; i < flat.numel(); ++i) {
      const double h = 1e-6;
      MaskAssemblyInput plus = in, minus = in;
      torch::Tensor p = param->detach().clone(), q = param->detach().clone();
      p.view({-1})[i] += h;
      q.view({-1})[i] -= h;
      (param == &in.shape_logits ? plus.shape_logits : plus.saliency_logits) = p;
      (param == &in.shape_logits ? minus.shape_logits : minus.saliency_logits) = q;
      const double numeric =
          (loss_of(plus).item<double>() - loss_of(minus).item<double>()) / (2 * h);
      EXPECT_NEAR(analytic.view({-1})[i].item<double>(), numeric, 1e-6) << "element " << i;
    }
  }
}

TEST(FocalHeatmapLoss, GradientsMatchFiniteDifferences) {
  torch::manual_seed(6);
  torch::Tensor logits =
      torch::randn({1, 2, 3, 3}, torch::dtype(torch::kFloat64).requires_grad(true));
  torch::Tensor target = torch::rand({1, 2, 3, 3}, torch::kFloat64);
  target[0][1][1][1] = 1.0;
  focal_heatmap_loss(logits, target).backward();
  for (std::int64_t i = 0; i < logits.numel(); ++i) {
    const double h = 1e-6;
    torch::Tensor p = logits.detach().clone(), q = logits.detach().clone();
    p.view({-1})[i] += h;
    q.view({-1})[i] -= h;
    const double numeric = (focal_heatmap_loss(p, target).item<double>() -
                            focal_heatmap_loss(q, target).item<double>()) /
                           (2 * h);
    EXPECT_NEAR(logits.grad().view({-1})[i].item<double>(), numeric, 1e-7);
  }
}

}  // namespace
}  // namespace centermask
