// PolarMask: targets encoded from masks decode back to the masks (a disc almost exactly, since
// a 36-gon inscribed in a circle covers 99.5 % of it), perfect outputs make a loss of ~0 and
// decode through the real path to the objects, objects too small for a polygon are dropped and
// counted, the engine's path is the typed path, options are refused by name, and an overfit
// test: a small ResNet-FPN learns the polygons of one picture.

#include "centermask/modeling/methods/polarmask/polarmask.h"

#include <gtest/gtest.h>

#include <cmath>

#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/polarmask/polar_rays.h"
#include "modeling/fcos/fcos_boxes.h"
#include "support/method_checks.h"
#include "support/model_fixtures.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

PolarMaskOptions small_polarmask(int classes) {
  PolarMaskOptions o;
  o.num_classes = classes;
  o.backbone = "resnet18";
  o.backbone_width = 8;
  o.fpn_channels = 16;
  o.head_tower_convs = 2;
  o.head_norm_groups = 4;
  return o;
}

Instance disc_instance(int class_index, float cx, float cy, float radius, int height, int width) {
  const cv::Rect box(static_cast<int>(cx - radius), static_cast<int>(cy - radius),
                     static_cast<int>(2 * radius), static_cast<int>(2 * radius));
  return testing::ellipse_instance(class_index, box, height, width);
}

// The location with the highest centerness target: where a perfect network's best detection
// sits.
std::int64_t best_positive(const PolarMaskTargets& t) {
  std::int64_t best = -1;
  for (std::int64_t i = 0; i < t.num_locations(); ++i)
    if (t.label[static_cast<std::size_t>(i)] >= 0 &&
        (best < 0 ||
         t.centerness[static_cast<std::size_t>(i)] > t.centerness[static_cast<std::size_t>(best)]))
      best = i;
  return best;
}

TEST(PolarMaskTargets, RaysFromAPositiveRedrawTheDisc) {
  const int side = 128;
  const Instance disc = disc_instance(1, 64, 60, 30, side, side);
  PolarMaskTargetOptions options;
  options.num_classes = 2;
  const PolarMaskTargets t = encode_polarmask_targets({disc}, side, side, options);
  ASSERT_GT(t.num_positive, 0);
  EXPECT_EQ(t.dropped, 0);
  const std::int64_t best = best_positive(t);
  ASSERT_GE(best, 0);
  EXPECT_EQ(t.label[static_cast<std::size_t>(best)], 1);
  // Location → pixel: the finest level holding it.
  std::size_t level = 0;
  while (t.level_begin[level + 1] <= best) ++level;
  const int stride = t.strides[level];
  const std::int64_t local = best - t.level_begin[level];
  const std::int64_t level_width = (side + stride - 1) / stride;
  const auto x = static_cast<float>((local % level_width) * stride + stride / 2);
  const auto y = static_cast<float>((local / level_width) * stride + stride / 2);
  const std::vector<float> rays(t.rays.begin() + best * 36, t.rays.begin() + (best + 1) * 36);
  const MaskPatch polygon = fill_polygon(polygon_from_rays(x, y, rays), side, side);
  EXPECT_GT(testing::mask_iou(polygon, disc.mask), 0.95);
  // Near the center the rays are nearly equal: polar centerness near 1; the targets' box
  // distances are the box's sides.
  EXPECT_GT(t.centerness[static_cast<std::size_t>(best)], 0.8f);
  const float* ltrb = &t.ltrb[static_cast<std::size_t>(4 * best)];
  EXPECT_FLOAT_EQ(x - ltrb[0], disc.box.x0);
  EXPECT_FLOAT_EQ(y + ltrb[3], disc.box.y1);
  // Every positive lies within 1.5 strides of the mass center (64, 60) at its level.
  for (std::size_t l = 0; l + 1 < t.level_begin.size(); ++l) {
    const int s = t.strides[l];
    const std::int64_t wl = (side + s - 1) / s;
    for (std::int64_t i = t.level_begin[l]; i < t.level_begin[l + 1]; ++i) {
      if (t.label[static_cast<std::size_t>(i)] < 0) continue;
      const std::int64_t k = i - t.level_begin[l];
      EXPECT_LT(std::abs(static_cast<float>((k % wl) * s + s / 2) - 64.0f), 1.5f * s + 1);
      EXPECT_LT(std::abs(static_cast<float>((k / wl) * s + s / 2) - 60.0f), 1.5f * s + 1);
    }
  }
}

TEST(PolarMaskTargets, SmallOrMasklessObjectsAreDroppedAndCounted) {
  const int side = 96;
  Instance tiny = disc_instance(0, 20, 20, 2, side, side);  // 4 × 4 box, ~12 pixels
  Instance box_only = disc_instance(0, 60, 60, 20, side, side);
  box_only.has_mask = false;
  box_only.mask = {};
  const Instance kept = disc_instance(0, 48, 40, 16, side, side);
  PolarMaskTargetOptions options;
  options.num_classes = 1;
  const PolarMaskTargets t = encode_polarmask_targets({tiny, box_only, kept}, side, side, options);
  EXPECT_EQ(t.dropped, 2);
  EXPECT_GT(t.num_positive, 0);
  // The object cap counts as dropped too.
  options.max_objects = 0;
  EXPECT_EQ(encode_polarmask_targets({kept}, side, side, options).dropped, 1);
  // No objects: all background, nothing dropped.
  const PolarMaskTargets empty = encode_polarmask_targets({}, side, side, options);
  EXPECT_EQ(empty.num_positive, 0);
  EXPECT_EQ(empty.num_locations(), 12 * 12 + 6 * 6 + 3 * 3 + 2 * 2 + 1);
}

TEST(PolarMaskTargets, BoxCenterSamplingMovesThePositivesToTheBoxCenter) {
  // A square missing its top-right quarter column: its mass center lies left of its box
  // center, and both lie inside the mask.
  const int side = 128;
  Instance l_shape;
  l_shape.class_index = 0;
  l_shape.has_mask = true;
  l_shape.box = {16, 16, 112, 112};
  l_shape.mask.left = 16, l_shape.mask.top = 16, l_shape.mask.width = 96, l_shape.mask.height = 96;
  l_shape.mask.pixels.assign(96 * 96, 0);
  for (int y = 0; y < 96; ++y)
    for (int x = 0; x < 96; ++x)
      if (x < 64 || y >= 64) l_shape.mask.pixels[static_cast<std::size_t>(y * 96 + x)] = 1;
  PolarMaskTargetOptions options;
  options.num_classes = 1;
  options.center_sampling_radius = 1.0;  // 8 px at P3: the two cells either side of the center
  const auto mean_x = [&](const PolarMaskTargets& t) {
    double sum = 0;
    int count = 0;
    for (std::size_t l = 0; l + 1 < t.level_begin.size(); ++l) {
      const int s = t.strides[l];
      const std::int64_t wl = (side + s - 1) / s;
      for (std::int64_t i = t.level_begin[l]; i < t.level_begin[l + 1]; ++i)
        if (t.label[static_cast<std::size_t>(i)] >= 0) {
          sum += static_cast<double>(((i - t.level_begin[l]) % wl) * s + s / 2);
          ++count;
        }
    }
    return count > 0 ? sum / count : -1.0;
  };
  const double mass = mean_x(encode_polarmask_targets({l_shape}, side, side, options));
  options.sampling_center = PolarMaskSamplingCenter::kBoxCenter;
  const double box = mean_x(encode_polarmask_targets({l_shape}, side, side, options));
  ASSERT_GT(mass, 0);
  ASSERT_GT(box, 0);
  EXPECT_LT(mass, box - 4);  // mass center x ≈ 54, box center x = 64
  EXPECT_NEAR(box, 64, 8);
}

TEST(PolarMask, PerfectOutputsLoseNothingAndDecodeToTheObjects) {
  const int h = 128, w = 160;
  torch::manual_seed(0);
  PolarMask model(small_polarmask(3));
  const std::vector<std::vector<Instance>> truth = {
      {disc_instance(2, 50, 50, 28, h, w), testing::ellipse_instance(0, {90, 30, 60, 80}, h, w)},
      {}};
  const PolarMaskOutputs perfect = model->perfect_outputs(truth, h, w);
  std::vector<PolarMaskTargets> targets;
  for (const auto& image : truth)
    targets.push_back(encode_polarmask_targets(image, h, w, model->target_options(16)));
  const PolarMaskLosses losses = model->loss(perfect, targets);
  EXPECT_NEAR(losses.mask.item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(losses.box.item<double>(), 0.0, 1e-3);
  EXPECT_LT(losses.classification.item<double>(), 1e-3);

  const auto detected =
      model->predict(perfect, {testing::identity_info(h, w), testing::identity_info(h, w)});
  ASSERT_EQ(detected.size(), 2u);
  EXPECT_TRUE(detected[1].empty());
  ASSERT_EQ(detected[0].size(), 2u);  // NMS leaves one detection per object
  const std::vector<double> best = testing::best_mask_iou_per_object(detected[0], truth[0]);
  for (std::size_t i = 0; i < best.size(); ++i)
    EXPECT_GT(best[i], 0.9) << "class " << truth[0][i].class_index;
  for (const Instance& d : detected[0]) EXPECT_GT(d.score, 0.5f);  // p · (centerness + 0.5)
}

TEST(PolarMask, LossesAreFiniteAndReachTheRayHeadForBothRayLosses) {
  const int side = 96;
  torch::manual_seed(1);
  PolarMask model(small_polarmask(2));
  const std::vector<Instance> truth = {disc_instance(1, 40, 48, 20, side, side)};
  const PolarMaskTargets t = encode_polarmask_targets(truth, side, side, model->target_options(8));
  const torch::Tensor images = torch::randn({1, 3, side, side});
  for (PolarMaskLoss kind : {PolarMaskLoss::kPolarIou, PolarMaskLoss::kSmoothL1}) {
    PolarMaskOptions options = small_polarmask(2);
    options.mask_loss = kind;
    PolarMask variant(options);
    const PolarMaskLosses losses = variant->loss(variant->forward(images), {t});
    for (const torch::Tensor& term :
         {losses.total, losses.classification, losses.box, losses.centerness, losses.mask})
      EXPECT_TRUE(std::isfinite(term.item<double>()));
    EXPECT_GT(losses.mask.item<double>(), 0.0);
    losses.total.backward();
    const torch::Tensor grad = variant->named_parameters()["rays.weight"].grad();
    ASSERT_TRUE(grad.defined());
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  }
  // A batch whose images have no objects: the regression terms are 0, classification not.
  const PolarMaskTargets empty = encode_polarmask_targets({}, side, side, model->target_options(8));
  const PolarMaskLosses none = model->loss(model->forward(images), {empty});
  EXPECT_EQ(none.mask.item<double>(), 0.0);
  EXPECT_GT(none.classification.item<double>(), 0.0);
}

TEST(PolarMask, InterfaceIsTheTypedPathAndNamesItsTerms) {
  const int side = 96;
  ModelConfig config;
  config.meta_arch = "polarmask";
  config.num_classes = 2;
  config.backbone = "resnet18";
  config.backbone_width = 8;
  config.method_options<PolarMaskOptions>("polarmask") = small_polarmask(2);
  torch::manual_seed(3);
  const auto method = build_meta_architecture(config);
  EXPECT_EQ(method->method_name(), "polarmask");
  auto* typed = dynamic_cast<PolarMaskImpl*>(method.get());
  ASSERT_NE(typed, nullptr);
  const std::vector<std::vector<Instance>> truth = {{disc_instance(1, 40, 48, 20, side, side)},
                                                    {disc_instance(0, 60, 40, 25, side, side)}};
  testing::expect_interface_is_the_typed_path<PolarMaskImpl, PolarMaskMethodOutputs,
                                              PolarMaskBatchTargets>(*method, truth, side, 0.4f);
}

TEST(PolarMask, OptionsAreRefusedByKey) {
  const auto message_of = [](PolarMaskOptions o) {
    return testing::error_message_of([&] { o.validate(); });
  };
  PolarMaskOptions o = small_polarmask(2);
  o.num_rays = 25;
  EXPECT_NE(message_of(o).find("model.polarmask.num_rays"), std::string::npos) << message_of(o);
  o = small_polarmask(2);
  o.backbone = "dla34";
  EXPECT_NE(message_of(o).find("model.backbone"), std::string::npos) << message_of(o);
  o = small_polarmask(2);
  o.head_norm_groups = 5;
  EXPECT_NE(message_of(o).find("model.polarmask.head_norm_groups"), std::string::npos)
      << message_of(o);
  o = small_polarmask(2);
  o.loss_weights.mask = -1;
  EXPECT_NE(message_of(o).find("model.polarmask.loss_weights.mask"), std::string::npos)
      << message_of(o);
}

// A 128 × 128 picture with a disc and an ellipse on noise: a ResNet-18-FPN (width 8, 16
// channels) trained on it alone must put both polygons on their objects.
TEST(PolarMaskOverfit, LearnsThePolygonsOfOnePicture) {
  torch::manual_seed(0);
  const int side = 128;
  const std::vector<Instance> truth = {disc_instance(0, 44, 48, 26, side, side),
                                       testing::ellipse_instance(1, {72, 40, 48, 76}, side, side)};
  const torch::Tensor image = testing::overfit_picture(truth, side);
  PolarMask model(small_polarmask(2));
  const auto [first, last] = testing::overfit_one_picture(
      model, image, encode_polarmask_targets(truth, side, side, model->target_options(8)), 150);
  EXPECT_LT(last, 0.5 * first);
  model->eval();
  const auto detected = model->predict(model->forward(image), {testing::identity_info(side, side)});
  ASSERT_EQ(detected.size(), 1u);
  const std::vector<double> best = testing::best_mask_iou_per_object(detected[0], truth);
  for (std::size_t i = 0; i < truth.size(); ++i)
    EXPECT_GT(best[i], 0.7) << "class " << truth[i].class_index;
}

}  // namespace
}  // namespace centermask
