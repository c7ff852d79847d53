// ResNet-FPN (P3–P7): level sizes and strides on non-square inputs that are multiples of 32
// only (P6, P7 round up), the top-down wiring recomputed by hand from the ResNet's stages, the
// ReLU before P7, gradients into every parameter, the ResNet's parameter names shared with
// the stride-4 backbone, and refusals that name the field.

#include "centermask/modeling/fcos/fpn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace centermask {
namespace {

class EveryPyramidDepth : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryPyramidDepth, FiveLevelsAtStrides8To128OnInputsThatAreMultiplesOf32) {
  torch::manual_seed(0);
  FeaturePyramidOptions options;
  options.backbone = GetParam();
  options.width = 16;
  options.channels = 24;
  FeaturePyramid fpn(options);
  // 96 × 160: P5 is 3 × 5, so P6 = ⌈3/2⌉ × ⌈5/2⌉ = 2 × 3 and P7 = 1 × 2.
  const torch::Tensor images = torch::randn({2, 3, 96, 160}, torch::requires_grad());
  const PyramidFeatures features = fpn->forward(images);
  const std::vector<std::string> names{"p3", "p4", "p5", "p6", "p7"};
  EXPECT_EQ(features.names, names);
  EXPECT_EQ(fpn->level_names(), names);
  const std::vector<std::vector<std::int64_t>> sides{{12, 20}, {6, 10}, {3, 5}, {2, 3}, {1, 2}};
  ASSERT_EQ(features.maps.size(), 5u);
  ASSERT_EQ(features.shapes.size(), 5u);
  torch::Tensor total = torch::zeros({});
  for (std::size_t level = 0; level < 5; ++level) {
    EXPECT_EQ(features.shapes[level].channels, 24);
    EXPECT_EQ(features.shapes[level].stride_px, 8 << level);
    EXPECT_EQ(features.maps[level].sizes(),
              (std::vector<std::int64_t>{2, 24, sides[level][0], sides[level][1]}))
        << names[level];
    EXPECT_TRUE(torch::isfinite(features.maps[level]).all().item<bool>()) << names[level];
    total = total + features.maps[level].pow(2).mean();
  }
  total.backward();
  ASSERT_TRUE(images.grad().defined());
  for (const auto& p : fpn->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
}

INSTANTIATE_TEST_SUITE_P(ResNets, EveryPyramidDepth,
                         ::testing::Values("resnet18", "resnet34", "resnet50", "resnet101"));

// The pyramid recomputed from its parts: P5 = out5(lat5(C5)), P4 = out4(lat4(C4) + up(lat5(C5))),
// P3 = out3(lat3(C3) + up(lat4(C4) + up(lat5(C5)))), P6 = p6(P5), P7 = p7(ReLU(P6)).
TEST(FeaturePyramid, TopDownPathAndExtraLevelsAreWiredAsFcos) {
  torch::manual_seed(1);
  FeaturePyramidOptions options;
  options.backbone = "resnet18";
  options.width = 8;
  options.channels = 16;
  FeaturePyramid fpn(options);
  fpn->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::randn({1, 3, 64, 96});
  const PyramidFeatures features = fpn->forward(images);
  const std::vector<torch::Tensor> c = fpn->bottom_up(images);
  ASSERT_EQ(c.size(), 4u);
  auto modules = fpn->named_children();
  const auto conv = [&](const std::string& name, const torch::Tensor& x) {
    return modules[name]->as<torch::nn::Conv2dImpl>()->forward(x);
  };
  const auto up = [](const torch::Tensor& x) {
    return x.repeat_interleave(2, 2).repeat_interleave(2, 3);  // nearest ×2, by hand
  };
  const torch::Tensor inner5 = conv("fpn_lateral5", c[3]);
  const torch::Tensor inner4 = conv("fpn_lateral4", c[2]) + up(inner5);
  const torch::Tensor inner3 = conv("fpn_lateral3", c[1]) + up(inner4);
  const torch::Tensor p5 = conv("fpn_output5", inner5);
  const torch::Tensor p6 = conv("p6", p5);
  const std::vector<torch::Tensor> expected{conv("fpn_output3", inner3),
                                            conv("fpn_output4", inner4), p5, p6,
                                            conv("p7", torch::relu(p6))};
  for (std::size_t level = 0; level < 5; ++level)
    EXPECT_TRUE(torch::allclose(features.maps[level], expected[level], 1e-5, 1e-6))
        << features.names[level];
  // The ReLU matters: P6 has negative values, so P7 of P6 without it would differ.
  EXPECT_LT(p6.min().item<float>(), 0.0f);
  EXPECT_FALSE(torch::allclose(features.maps[4], conv("p7", p6), 1e-5, 1e-6));
}

// The ResNet part carries the same parameter names as the stride-4 backbone's (stem, layer1 …
// layer4), so a trunk trained in one can be read by the other.
TEST(FeaturePyramid, SharesTheResNetsParameterNamesWithTheStride4Backbone) {
  FeaturePyramidOptions options;
  options.backbone = "resnet18";
  options.width = 16;
  FeaturePyramid fpn(options);
  BackboneOptions backbone_options;
  backbone_options.name = "resnet18";
  backbone_options.width = 16;
  const auto backbone = build_backbone(backbone_options);
  std::set<std::string> pyramid_trunk, backbone_trunk;
  for (const auto& p : fpn->named_parameters())
    if (p.key().rfind("fpn_", 0) != 0 && p.key().rfind("p6", 0) != 0 && p.key().rfind("p7", 0) != 0)
      pyramid_trunk.insert(p.key() + c10::str(p.value().sizes()));
  for (const auto& p : backbone->named_parameters())
    if (p.key().rfind("deconv", 0) != 0 && p.key().rfind("skip", 0) != 0)
      backbone_trunk.insert(p.key() + c10::str(p.value().sizes()));
  EXPECT_FALSE(pyramid_trunk.empty());
  EXPECT_EQ(pyramid_trunk, backbone_trunk);
}

TEST(FeaturePyramid, RefusesWhatItCannotBuildOrRunByName) {
  const auto refused = [](FeaturePyramidOptions options, const std::string& field) {
    try {
      FeaturePyramid fpn(options);
      ADD_FAILURE() << "accepted " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  FeaturePyramidOptions dla;
  dla.backbone = "dla34";
  refused(dla, "model.backbone");
  FeaturePyramidOptions narrow;
  narrow.width = 12;
  refused(narrow, "model.backbone_width");
  FeaturePyramidOptions empty;
  empty.channels = 0;
  refused(empty, "model.fpn_channels");

  FeaturePyramidOptions small;
  small.backbone = "resnet18";
  small.width = 8;
  small.channels = 8;
  FeaturePyramid fpn(small);
  try {
    fpn->forward(torch::randn({1, 3, 80, 96}));  // 80 is not a multiple of 32
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("80x96"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fpn->forward(torch::randn({1, 4, 64, 64})), std::invalid_argument);
}

}  // namespace
}  // namespace centermask
