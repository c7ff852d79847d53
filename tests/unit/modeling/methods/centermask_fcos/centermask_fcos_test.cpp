// CenterMask-FCOS: targets crop each object's mask over its box, a location on P5 and one on
// P3 that predict the same box assemble the same mask, the sparse shape layer equals its dense
// reference on odd map sizes, perfect outputs decode to the objects, the loss reaches the shape
// and saliency heads, a batch predicts as its images one at a time, the engine's path is the
// typed path, options are refused by key, and an overfit test learns the masks of a picture.

#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"

#include <gtest/gtest.h>

#include <cmath>

#include "centermask/modeling/method_registry.h"
#include "modeling/fcos/fcos_boxes.h"
#include "modeling/ops/mask_assembly.h"
#include "support/method_checks.h"
#include "support/model_fixtures.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

CenterMaskFcosOptions small_model(int classes) {
  CenterMaskFcosOptions o;
  o.num_classes = classes;
  o.backbone = "resnet18";
  o.backbone_width = 8;
  o.fpn_channels = 16;
  o.head_tower_convs = 2;
  o.head_norm_groups = 4;
  o.saliency_convs = 1;
  o.saliency_channels = 16;
  o.shape_size = 12;
  return o;
}

TEST(CenterMaskFcosTargets, CropsCoverEachObjectsMaskOverItsBoxAndMasklessObjectsTrainBoxes) {
  const int h = 96, w = 128;
  CenterMaskFcosTargetOptions options;
  options.num_classes = 3;
  options.mask_stride = 4;
  const Instance ellipse = testing::ellipse_instance(2, {20, 16, 40, 48}, h, w);
  Instance box_only = testing::ellipse_instance(0, {70, 30, 40, 30}, h, w);
  box_only.has_mask = false;
  box_only.mask = {};
  Instance degenerate = ellipse;
  degenerate.box = {10, 10, 10, 30};  // zero width
  const CenterMaskFcosTargets t =
      encode_centermask_fcos_targets({ellipse, box_only, degenerate}, h, w, options);
  ASSERT_EQ(t.num_objects(), 2);
  EXPECT_EQ(t.dropped, 1);
  EXPECT_EQ(t.mask_height, h / 4);
  EXPECT_EQ(t.object_has_mask, (std::vector<std::uint8_t>{1, 0}));
  EXPECT_EQ(t.object_class, (std::vector<std::int64_t>{2, 0}));
  EXPECT_GT(t.fcos.num_positive, 0);
  // The crop's coverage sums to the mask's area in cells (the box holds the whole mask)
  const CellRegion clipped = t.clipped_region(0);
  EXPECT_EQ(t.crop_start[1] - t.crop_start[0],
            static_cast<std::int64_t>(clipped.width() * clipped.height()));
  double covered = 0;
  for (std::int64_t i = t.crop_start[0]; i < t.crop_start[1]; ++i)
    covered += t.crop_pixels[static_cast<std::size_t>(i)];
  // (the mask's last column or row may lie on a cell whose center is past the box edge).
  EXPECT_LE(covered * 16, ellipse.mask.area() + 1e-3);
  EXPECT_GT(covered * 16, 0.98 * ellipse.mask.area());
  // Both objects have positives; a maskless one has no crop values.
  bool seen[2] = {false, false};
  for (std::int64_t object : t.fcos.object)
    if (object >= 0) seen[object] = true;
  EXPECT_TRUE(seen[0] && seen[1]);
  for (std::int64_t i = t.crop_start[1]; i < t.crop_start[2]; ++i)
    EXPECT_EQ(t.crop_pixels[static_cast<std::size_t>(i)], 0.0f);

  const CenterMaskFcosTargets empty = encode_centermask_fcos_targets({}, h, w, options);
  EXPECT_EQ(empty.num_objects(), 0);
  EXPECT_EQ(empty.fcos.num_positive, 0);
  EXPECT_EQ(empty.crop_start, (std::vector<std::int64_t>{0}));
}

// Outputs with no objects anywhere, then one detection at (level, x, y) whose box is
// (x0, y0, x1, y1) in input pixels and whose local shape is `shape`.
CenterMaskFcosOutputs one_detection(const CenterMaskFcosImpl& model, int h, int w, int level, int x,
                                    int y, const BoxXYXY& box, const torch::Tensor& shape) {
  CenterMaskFcosOutputs out = model.perfect_outputs({{}}, h, w);
  const int stride = out.strides[static_cast<std::size_t>(level)];
  const float cx = static_cast<float>(x * stride + stride / 2);
  const float cy = static_cast<float>(y * stride + stride / 2);
  out.fcos.class_logits[static_cast<std::size_t>(level)][0][1][y][x] = 6.0f;
  out.fcos.centerness_logits[static_cast<std::size_t>(level)][0][0][y][x] = 6.0f;
  const float ltrb[4] = {cx - box.x0, cy - box.y0, box.x1 - cx, box.y1 - cy};
  for (int k = 0; k < 4; ++k)
    out.fcos.regression[static_cast<std::size_t>(level)][0][k][y][x] =
        ltrb[k] / static_cast<float>(stride);
  auto given = std::make_shared<CenterMaskFcosOutputs::GivenShapes>();
  std::int64_t location = 0;
  for (int l = 0; l < level; ++l)
    location += out.fcos.class_logits[static_cast<std::size_t>(l)].size(2) *
                out.fcos.class_logits[static_cast<std::size_t>(l)].size(3);
  location += static_cast<std::int64_t>(y) *
                  out.fcos.class_logits[static_cast<std::size_t>(level)].size(3) +
              x;
  given->key = {location};
  given->logits = shape.unsqueeze(0);
  out.given_shapes = given;
  // A saliency with structure, so that the crop's position matters.
  out.saliency_logits = torch::randn_like(out.saliency_logits);
  return out;
}

TEST(CenterMaskFcos, ALocationOnP5AndOneOnP3ThatPredictTheSameBoxAssembleTheSameMask) {
  const int h = 160, w = 160;
  torch::manual_seed(4);
  CenterMaskFcos model(small_model(2));
  const BoxXYXY box{30, 34, 118, 126};
  const torch::Tensor shape = torch::randn({12, 12}) * 3;
  // (x, y) inside the box on P3 (stride 8) and on P5 (stride 32).
  const CenterMaskFcosOutputs p3 = one_detection(*model, h, w, 0, 9, 10, box, shape);
  CenterMaskFcosOutputs p5 = one_detection(*model, h, w, 2, 2, 2, box, shape);
  p5.saliency_logits = p3.saliency_logits;
  const auto a = model->predict(p3, {testing::identity_info(h, w)});
  const auto b = model->predict(p5, {testing::identity_info(h, w)});
  ASSERT_EQ(a[0].size(), 1u);
  ASSERT_EQ(b[0].size(), 1u);
  EXPECT_NEAR(a[0][0].box.x0, b[0][0].box.x0, 1e-3);
  EXPECT_NEAR(a[0][0].box.y1, b[0][0].box.y1, 1e-3);
  EXPECT_NEAR(a[0][0].box.x0, 30, 1e-3);
  EXPECT_GT(a[0][0].mask.area(), 100);
  EXPECT_EQ(a[0][0].mask.left, b[0][0].mask.left);
  EXPECT_EQ(a[0][0].mask.top, b[0][0].mask.top);
  EXPECT_EQ(a[0][0].mask.pixels, b[0][0].mask.pixels);
}

TEST(CenterMaskFcos, SparseShapesEqualTheDenseLayerOnOddMaps) {
  torch::manual_seed(5);
  CenterMaskFcos model(small_model(2));
  model->eval();
  const torch::Tensor images = torch::randn({2, 3, 96, 160});  // levels 12×20 … 1×2
  const CenterMaskFcosOutputs out = model->forward(images);
  std::vector<std::int64_t> begin = {0};
  for (const torch::Tensor& level : out.fcos.class_logits)
    begin.push_back(begin.back() + level.size(2) * level.size(3));
  // Locations on every level, both images, including each level's last one.
  std::vector<std::int64_t> image, location;
  for (std::size_t l = 0; l < out.strides.size(); ++l)
    for (std::int64_t b = 0; b < 2; ++b) {
      image.push_back(b), location.push_back(begin[l]);
      image.push_back(b), location.push_back(begin[l + 1] - 1);
    }
  const torch::Tensor sparse = model->local_shapes(out, image, location);
  for (std::size_t j = 0; j < image.size(); ++j) {
    std::size_t l = 0;
    while (location[j] >= begin[l + 1]) ++l;
    const torch::Tensor dense = model->dense_shape_logits(out.fcos.regression_features[l]);
    const std::int64_t local = location[j] - begin[l], w = dense.size(3);
    const torch::Tensor expected = dense[image[j]].select(1, local / w).select(1, local % w);
    EXPECT_TRUE(
        torch::allclose(sparse[static_cast<std::int64_t>(j)].reshape({-1}), expected, 1e-5, 1e-6))
        << "level " << l;
  }
}

TEST(CenterMaskFcos, PerfectOutputsDecodeToTheObjects) {
  const int h = 128, w = 160;
  torch::manual_seed(0);
  CenterMaskFcosOptions options = small_model(3);
  options.shape_size = 32;
  CenterMaskFcos model(options);
  const std::vector<std::vector<Instance>> truth = {
      {testing::ellipse_instance(2, {22, 22, 56, 56}, h, w),
       testing::ellipse_instance(0, {90, 30, 60, 80}, h, w)},
      {}};
  const CenterMaskFcosOutputs perfect = model->perfect_outputs(truth, h, w);
  std::vector<CenterMaskFcosTargets> targets;
  for (const auto& image : truth)
    targets.push_back(encode_centermask_fcos_targets(image, h, w, model->target_options(16)));
  const CenterMaskFcosLosses losses = model->loss(perfect, targets);
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
}

TEST(CenterMaskFcos, LossesAreFiniteAndReachTheShapeAndSaliencyHeads) {
  const int side = 96;
  torch::manual_seed(1);
  CenterMaskFcos model(small_model(2));
  const std::vector<Instance> truth = {testing::ellipse_instance(1, {20, 28, 40, 40}, side, side)};
  const CenterMaskFcosTargets t =
      encode_centermask_fcos_targets(truth, side, side, model->target_options(8));
  const torch::Tensor images = torch::randn({1, 3, side, side});
  const CenterMaskFcosLosses losses = model->loss(model->forward(images), {t});
  for (const torch::Tensor& term :
       {losses.total, losses.classification, losses.box, losses.centerness, losses.mask})
    EXPECT_TRUE(std::isfinite(term.item<double>()));
  EXPECT_GT(losses.mask.item<double>(), 0.0);
  losses.total.backward();
  for (const char* name : {"shape_output.weight", "saliency_output.weight", "saliency_up4.0.weight",
                           "head.regression_tower.0.weight"}) {
    const torch::Tensor grad = model->named_parameters()[name].grad();
    ASSERT_TRUE(grad.defined()) << name;
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << name;
  }
  // A cap on the samples keeps the loss finite; no objects: the mask term is 0.
  CenterMaskFcosOptions capped = small_model(2);
  capped.mask_samples_per_image = 2;
  CenterMaskFcos with_cap(capped);
  EXPECT_TRUE(std::isfinite(with_cap->loss(with_cap->forward(images), {t}).mask.item<double>()));
  const CenterMaskFcosTargets empty =
      encode_centermask_fcos_targets({}, side, side, model->target_options(8));
  const CenterMaskFcosLosses none = model->loss(model->forward(images), {empty});
  EXPECT_EQ(none.mask.item<double>(), 0.0);
  EXPECT_GT(none.classification.item<double>(), 0.0);
}

TEST(CenterMaskFcos, ABatchPredictsAsItsImagesOneAtATime) {
  const int side = 128;
  torch::manual_seed(2);
  CenterMaskFcos model(small_model(2));
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::randn({2, 3, side, side});
  CenterMaskFcosInferenceOptions options;
  options.candidate_threshold = 0.0f;  // an untrained model scores ~0.01: keep candidates
  options.max_detections = 10;
  const CenterMaskFcosOutputs both = model->forward(images);
  const auto batch = model->predict(
      both, {testing::identity_info(side, side), testing::identity_info(side, side)}, options);
  for (std::int64_t b = 0; b < 2; ++b) {
    const CenterMaskFcosOutputs single = model->forward(images.narrow(0, b, 1));
    const auto alone = model->predict(single, {testing::identity_info(side, side)}, options);
    const auto& together = batch[static_cast<std::size_t>(b)];
    ASSERT_EQ(alone[0].size(), together.size()) << "image " << b;
    ASSERT_FALSE(together.empty());
    for (std::size_t i = 0; i < together.size(); ++i) {
      EXPECT_NEAR(alone[0][i].score, together[i].score, 1e-5);
      EXPECT_EQ(alone[0][i].class_index, together[i].class_index);
      EXPECT_NEAR(alone[0][i].box.x0, together[i].box.x0, 1e-3);
    }
    // The assembled masks (an untrained model's are all near 0.25, under the threshold):
    // regions at locations of P3 and P6, cut by the map's edge too.
    FcosMaskSamples in_batch, on_its_own;
    for (const auto& [location, region] : {std::pair<std::int64_t, CellRegion>{37, {2, 3, 20, 17}},
                                           {256 + 64 + 16 + 3, {20, 25, 40, 40}}}) {
      for (FcosMaskSamples* s : {&in_batch, &on_its_own}) {
        s->image.push_back(s == &in_batch ? b : 0);
        s->location.push_back(location);
        s->region.push_back(region);
        s->saliency_class.push_back(1);
      }
    }
    const AssembledMasks x = model->assemble(both, in_batch);
    const AssembledMasks y = model->assemble(single, on_its_own);
    EXPECT_TRUE(torch::allclose(x.probability.masked_fill(~x.inside, 0),
                                y.probability.masked_fill(~y.inside, 0), 1e-5, 1e-6));
  }
}

TEST(CenterMaskFcos, InterfaceIsTheTypedPathAndNamesItsTerms) {
  const int side = 96;
  ModelConfig config;
  config.meta_arch = "centermask_fcos";
  config.num_classes = 2;
  config.backbone = "resnet18";
  config.backbone_width = 8;
  CenterMaskFcosOptions& own = config.method_options<CenterMaskFcosOptions>("centermask_fcos");
  own = small_model(2);
  own.shape_size = 10;
  own.backbone_width = 64;  // the struct's copy of a shared key: the config's 8 wins
  torch::manual_seed(3);
  const auto method = build_meta_architecture(config);
  EXPECT_EQ(method->method_name(), "centermask_fcos");
  auto* typed = dynamic_cast<CenterMaskFcosImpl*>(method.get());
  ASSERT_NE(typed, nullptr);
  EXPECT_EQ(typed->options().shape_size, 10);
  EXPECT_EQ(typed->options().backbone_width, 8);  // the shared keys filled in
  const std::vector<std::vector<Instance>> truth = {
      {testing::ellipse_instance(1, {20, 28, 40, 40}, side, side)},
      {testing::ellipse_instance(0, {35, 15, 50, 50}, side, side)}};
  testing::expect_interface_is_the_typed_path<CenterMaskFcosImpl, CenterMaskFcosMethodOutputs,
                                              CenterMaskFcosBatchTargets>(*method, truth, side,
                                                                          0.5f);
}

TEST(CenterMaskFcos, AblationVariantsBuildOnlyTheirHeads) {
  torch::manual_seed(6);
  const torch::Tensor images = torch::randn({1, 3, 64, 64});
  const std::vector<Instance> truth = {testing::ellipse_instance(1, {10, 12, 30, 30}, 64, 64)};
  for (MaskAssembly assembly :
       {MaskAssembly::kShapeOnly, MaskAssembly::kSaliencyOnly, MaskAssembly::kShapeTimesSaliency})
    for (int stride : {8, 2}) {
      CenterMaskFcosOptions o = small_model(2);
      o.assembly = assembly;
      o.saliency_stride = stride;
      o.class_specific_saliency = stride == 8;
      CenterMaskFcos model(o);
      const auto params = model->named_parameters();
      EXPECT_EQ(params.contains("shape_output.weight"), assembly != MaskAssembly::kSaliencyOnly);
      EXPECT_EQ(params.contains("saliency_output.weight"), assembly != MaskAssembly::kShapeOnly);
      const CenterMaskFcosOutputs out = model->forward(images);
      if (assembly != MaskAssembly::kShapeOnly) {
        EXPECT_EQ(out.saliency_logits.sizes(),
                  (std::vector<std::int64_t>{1, stride == 8 ? 2 : 1, 64 / stride, 64 / stride}));
      }
      const CenterMaskFcosLosses losses = model->loss(
          out, {encode_centermask_fcos_targets(truth, 64, 64, model->target_options(8))});
      EXPECT_TRUE(std::isfinite(losses.mask.item<double>()));
      EXPECT_GT(losses.mask.item<double>(), 0.0);
    }
}

TEST(CenterMaskFcos, OptionsAreRefusedByKey) {
  const auto message_of = [](CenterMaskFcosOptions o) {
    return testing::error_message_of([&] { o.validate(); });
  };
  CenterMaskFcosOptions o = small_model(2);
  o.saliency_stride = 16;
  EXPECT_NE(message_of(o).find("model.centermask_fcos.saliency_stride"), std::string::npos)
      << message_of(o);
  o = small_model(2);
  o.saliency_stride = 3;
  EXPECT_NE(message_of(o).find("model.centermask_fcos.saliency_stride"), std::string::npos)
      << message_of(o);
  o = small_model(2);
  o.backbone = "dla34";
  EXPECT_NE(message_of(o).find("model.backbone"), std::string::npos) << message_of(o);
  o = small_model(2);
  o.head_norm_groups = 5;
  EXPECT_NE(message_of(o).find("model.centermask_fcos."), std::string::npos) << message_of(o);
  o = small_model(2);
  o.saliency_channels = 18;
  EXPECT_NE(message_of(o).find("model.centermask_fcos.saliency_channels"), std::string::npos)
      << message_of(o);
  o = small_model(2);
  o.loss_weights.mask = -1;
  EXPECT_NE(message_of(o).find("model.centermask_fcos.loss_weights.mask"), std::string::npos)
      << message_of(o);
  o = small_model(2);
  o.shape_size = 1;
  EXPECT_NE(message_of(o).find("model.centermask_fcos.shape_size"), std::string::npos)
      << message_of(o);
}

// A 128 × 128 picture with two ellipses on noise: a ResNet-18-FPN (width 8, 16 channels)
// trained on it alone must put both masks on their objects.
TEST(CenterMaskFcosOverfit, LearnsTheMasksOfOnePicture) {
  torch::manual_seed(0);
  const int side = 128;
  const std::vector<Instance> truth = {testing::ellipse_instance(0, {18, 22, 52, 52}, side, side),
                                       testing::ellipse_instance(1, {72, 40, 48, 76}, side, side)};
  const torch::Tensor image = testing::overfit_picture(truth, side);
  CenterMaskFcos model(small_model(2));
  const auto [first, last] = testing::overfit_one_picture(
      model, image, encode_centermask_fcos_targets(truth, side, side, model->target_options(8)),
      150);
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
