// Every backbone maps (N, 3, H, W) to (N, 64, H/4, W/4) at sizes other than 512, trains
// (gradients reach the first layer), and refuses sizes it cannot take.

#include "centermask/modeling/backbone.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "centermask/modeling/deform_conv.h"
#include "centermask/modeling/inference_form.h"
#include "modeling/backbone/backbones.h"
#include "modeling/backbone/layers.h"

namespace centermask {
namespace {

// See Hourglass104IsCenterNetsLargeHourglass.
constexpr std::int64_t kCenterNetHourglassBackboneParameters = 187700352;

class EveryBackbone : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryBackbone, StrideFourFeaturesAtOddSizesAndGradientsReachTheInput) {
  torch::manual_seed(0);
  std::shared_ptr<BackboneImpl> backbone = build_backbone({GetParam()});
  const ShapeSpec spec = backbone->output_shape();
  EXPECT_EQ(spec.stride_px, 4);
  EXPECT_EQ(spec.channels, 64);
  // Non-square, not a power of two, batch of 3.
  torch::Tensor images = torch::randn({3, 3, 96, 160}, torch::requires_grad());
  torch::Tensor features = backbone->forward(images);
  EXPECT_EQ(features.sizes(), (std::vector<std::int64_t>{3, spec.channels, 24, 40}));
  EXPECT_TRUE(torch::isfinite(features).all().item<bool>());
  features.pow(2).mean().backward();
  ASSERT_TRUE(images.grad().defined());
  EXPECT_GT(images.grad().abs().sum().item<double>(), 0);
  for (const auto& p : backbone->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
  }
}

TEST_P(EveryBackbone, SamplesDoNotInfluenceEachOtherInEvalMode) {
  torch::manual_seed(1);
  std::shared_ptr<BackboneImpl> backbone = build_backbone({GetParam()});
  backbone->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor images = torch::randn({2, 3, 64, 96});
  torch::Tensor both = backbone->forward(images);
  torch::Tensor second = backbone->forward(images.slice(0, 1, 2));
  // Relative to the largest activation: an untrained deep net in eval mode (BN at its initial
  // running statistics) has large activations, and convolution order differs with the batch.
  const double scale = second.abs().max().item<double>();
  EXPECT_LT((both.slice(0, 1, 2) - second).abs().max().item<double>(), 1e-4 * scale);
}

INSTANTIATE_TEST_SUITE_P(Backbones, EveryBackbone,
                         ::testing::Values("resnet18", "resnet34", "resnet50", "resnet101", "dla34",
                                           "dla34_plain"));

// BatchNorm with statistics and affine terms far from (0, 1), so that folding it matters.
void randomise_batch_norms(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false))
    if (auto* bn = child->as<torch::nn::BatchNorm2d>()) {
      bn->running_mean.uniform_(-0.5, 0.5);
      bn->running_var.uniform_(0.3, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.3, 0.3);
    }
}

// Runs `forward` with the inference form off, then on; restores it.
template <typename Forward>
std::pair<torch::Tensor, torch::Tensor> unfolded_and_folded(Forward forward) {
  set_inference_folding(false);
  torch::Tensor unfolded = forward();
  set_inference_folding(true);
  torch::Tensor folded = forward();
  return {unfolded, folded};
}

TEST_P(EveryBackbone, FoldedInferenceGivesTheLayersOutputsAndFollowsChangedWeights) {
  torch::manual_seed(3);
  std::shared_ptr<BackboneImpl> backbone = build_backbone({GetParam()});
  randomise_batch_norms(*backbone);
  backbone->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::randn({2, 3, 96, 160});
  auto [unfolded, folded] = unfolded_and_folded([&] { return backbone->forward(images); });
  const double scale = unfolded.abs().max().item<double>();
  EXPECT_LT((folded - unfolded).abs().max().item<double>(), 1e-4 * scale);
  // A training step (here: new statistics written in place) must refold, not reuse the cache.
  randomise_batch_norms(*backbone);
  std::tie(unfolded, folded) = unfolded_and_folded([&] { return backbone->forward(images); });
  EXPECT_LT((folded - unfolded).abs().max().item<double>(),
            1e-4 * unfolded.abs().max().item<double>());
  // Training mode and eval with gradients run the layers themselves (the reference).
  torch::AutoGradMode with_gradients(true);
  const torch::Tensor with_grad = backbone->forward(images);
  EXPECT_TRUE(torch::equal(with_grad, unfolded));
}

TEST(Backbone, TransposedConvolutionEqualsThreeByThreeConvolutionAndPixelShuffle) {
  torch::manual_seed(4);
  for (const auto& [in, out, h, w] :
       {std::tuple{5, 3, 7, 9}, std::tuple{1, 2, 1, 1}, std::tuple{8, 8, 4, 13}}) {
    const torch::Tensor weight = torch::randn({in, out, 4, 4});
    const torch::Tensor x = torch::randn({2, in, h, w});
    const torch::Tensor reference =
        torch::conv_transpose2d(x, weight, {}, /*stride=*/2, /*padding=*/1);
    const torch::Tensor as_conv = torch::pixel_shuffle(
        torch::conv2d(x, layers::transposed_conv_as_conv_weight(weight), {}, 1, 1), 2);
    ASSERT_EQ(as_conv.sizes(), reference.sizes());
    EXPECT_LT((as_conv - reference).abs().max().item<double>(), 1e-4)
        << in << "→" << out << " channels at " << h << "×" << w;
  }
}

TEST(Backbone, SiblingConvolutionsFusedGiveEachConvolutionsOutput) {
  torch::manual_seed(6);
  namespace nn = torch::nn;
  // Odd channel counts and sizes; one convolution without a bias.
  nn::Conv2d a(nn::Conv2dOptions(5, 3, 3).padding(1)), b(nn::Conv2dOptions(5, 7, 3).padding(1)),
      c(nn::Conv2dOptions(5, 1, 3).padding(1).bias(false));
  for (nn::Conv2d* conv : {&a, &b, &c}) (*conv)->eval();
  const torch::Tensor x = torch::randn({2, 5, 9, 11});
  layers::FusedSiblingConvs fused;
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> together = fused.forward({a.get(), b.get(), c.get()}, x, true);
  ASSERT_EQ(together.size(), 3u);
  for (const auto& [conv, got] :
       {std::pair{&a, together[0]}, std::pair{&b, together[1]}, std::pair{&c, together[2]}}) {
    const torch::Tensor expected = torch::relu((*conv)->forward(x));
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5);
  }
  // New weights are picked up; a convolution of another kernel size is run apart.
  b->weight.mul_(-2);
  EXPECT_LT(
      (fused.forward({a.get(), b.get()}, x, false)[1] - b->forward(x)).abs().max().item<double>(),
      1e-5);
  nn::Conv2d d(nn::Conv2dOptions(5, 2, 1));
  d->eval();
  EXPECT_TRUE(torch::allclose(fused.forward({a.get(), d.get()}, x, false)[1], d->forward(x)));
}

TEST(Backbone, UnknownNameIsAnErrorListingTheKnownOnes) {
  try {
    build_backbone({"resnet19"});
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("resnet19"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("dla34"), std::string::npos);
  }
}

TEST(Backbone, ResNetWidthScalesEveryStageAndTheOutput) {
  BackboneOptions narrow{"resnet18", 16};
  auto backbone = build_backbone(narrow);
  EXPECT_EQ(backbone->output_shape().channels, 16);
  EXPECT_EQ(backbone->forward(torch::randn({2, 3, 64, 96})).sizes(),
            (std::vector<std::int64_t>{2, 16, 16, 24}));
  std::int64_t narrow_parameters = 0, full_parameters = 0;
  for (const auto& p : backbone->parameters()) narrow_parameters += p.numel();
  for (const auto& p : build_backbone({"resnet18"})->parameters()) full_parameters += p.numel();
  // Convolution weights scale with the square of the width: 4x narrower, ~16x fewer.
  EXPECT_NEAR(static_cast<double>(full_parameters) / narrow_parameters, 16.0, 1.0);
  EXPECT_THROW(build_backbone({"resnet18", 12}), std::invalid_argument);
  EXPECT_THROW(build_backbone({"dla34", 32}), std::invalid_argument);
}

TEST(Backbone, ResNetSkipConnectionsJoinEachStageToTheUpsamplingPath) {
  for (const char* name : {"resnet18", "resnet50"}) {  // basic and bottleneck stage widths
    torch::manual_seed(0);
    BackboneOptions options{name, 16};
    options.skip_connections = true;
    auto backbone = build_backbone(options);
    std::vector<std::string> skips;
    for (const auto& p : backbone->named_parameters())
      if (p.key().rfind("skip", 0) == 0) skips.push_back(p.key());
    // skip1..3, each a conv weight and BN weight and bias.
    EXPECT_EQ(skips.size(), 9u) << name;
    torch::Tensor images = torch::randn({2, 3, 64, 96}, torch::requires_grad());
    torch::Tensor features = backbone->forward(images);
    EXPECT_EQ(features.sizes(), (std::vector<std::int64_t>{2, 16, 16, 24})) << name;
    features.pow(2).mean().backward();
    for (const auto& p : backbone->named_parameters())
      ASSERT_TRUE(p.value().grad().defined()) << name << ": " << p.key() << " gets no gradient";
  }
  // Without the option the network is CenterNet's: no skip parameters (old checkpoints load).
  for (const auto& p : build_backbone({"resnet18", 16})->named_parameters())
    EXPECT_NE(p.key().rfind("skip", 0), 0u) << p.key();
  BackboneOptions dla{"dla34"};
  dla.skip_connections = true;
  EXPECT_THROW(build_backbone(dla), std::invalid_argument);
}

TEST(Backbone, ResNetOutputChannelsWidenOnlyTheStrideFourMap) {
  torch::manual_seed(0);
  BackboneOptions options{"resnet18", 16};
  options.skip_connections = true;
  options.output_channels = 48;
  auto backbone = build_backbone(options);
  EXPECT_EQ(backbone->output_shape().channels, 48);
  EXPECT_EQ(backbone->output_shape().stride_px, 4);
  const torch::Tensor features = backbone->forward(torch::randn({1, 3, 64, 64}));
  EXPECT_EQ(features.sizes(), (std::vector<std::int64_t>{1, 48, 16, 16}));
  // The stages keep their widths: only deconv3 and the layer1 skip grow.
  std::int64_t narrow = 0, wide = 0;
  BackboneOptions plain{"resnet18", 16};
  plain.skip_connections = true;
  for (const auto& p : build_backbone(plain)->named_parameters())
    if (p.key().rfind("layer", 0) == 0) narrow += p.value().numel();
  for (const auto& p : backbone->named_parameters())
    if (p.key().rfind("layer", 0) == 0) wide += p.value().numel();
  EXPECT_EQ(narrow, wide);
  // 0 means the width, as before.
  EXPECT_EQ(build_backbone({"resnet18", 16})->output_shape().channels, 16);
  options.output_channels = -1;
  EXPECT_THROW(build_backbone(options), std::invalid_argument);
  BackboneOptions dla{"dla34"};
  dla.output_channels = 32;
  EXPECT_THROW(build_backbone(dla), std::invalid_argument);
}

std::int64_t parameter_count(const torch::nn::Module& module) {
  std::int64_t count = 0;
  for (const auto& p : module.parameters()) count += p.numel();
  return count;
}

TEST(Backbone, Dla34UsesCenterNetsDeformableConvolutionsWhereThePlainFormHasConvolutions) {
  const auto deformable = build_backbone({"dla34"});
  const auto plain = build_backbone({"dla34_plain"});
  int deformable_layers = 0;
  for (const auto& child : deformable->modules(/*include_self=*/false))
    if (child->as<ModulatedDeformConv2dImpl>()) ++deformable_layers;
  // DLAUp's three IDAUps (3 + 2 + 1 steps) and the final IDAUp (2 steps): a projection and a
  // node each, as CenterNet's pose_dla_dcn.
  EXPECT_EQ(deformable_layers, 2 * (3 + 2 + 1 + 2));
  // Under CenterNet's names, so its checkpoints' up path loads.
  std::set<std::string> names;
  for (const auto& p : deformable->named_parameters()) names.insert(p.key());
  for (const char* name :
       {"dla_up_ida_0.proj_1.conv.weight", "dla_up_ida_0.proj_1.conv.bias",
        "dla_up_ida_0.proj_1.conv.conv_offset_mask.weight", "dla_up_ida_0.node_1.actf.0.weight",
        "ida_up.node_2.conv.conv_offset_mask.bias", "ida_up.up_2.weight"})
    EXPECT_EQ(names.count(name), 1u) << name;
  // The trunk is the same network.
  std::int64_t trunk_deformable = 0, trunk_plain = 0;
  for (const auto& p : deformable->named_parameters())
    if (p.key().rfind("level", 0) == 0 || p.key().rfind("base", 0) == 0)
      trunk_deformable += p.value().numel();
  for (const auto& p : plain->named_parameters())
    if (p.key().rfind("level", 0) == 0 || p.key().rfind("base", 0) == 0)
      trunk_plain += p.value().numel();
  EXPECT_EQ(trunk_deformable, trunk_plain);
  // Untrained, each deformable layer is its plain convolution at half weight (offsets 0,
  // masks 0.5): not the random offsets the backbone's own initialisation would give.
  for (const auto& child : deformable->modules(/*include_self=*/false))
    if (auto* dcn = child->as<ModulatedDeformConv2dImpl>()) {
      EXPECT_EQ(dcn->conv_offset_mask->weight.abs().max().item<double>(), 0.0);
      EXPECT_EQ(dcn->conv_offset_mask->bias.abs().max().item<double>(), 0.0);
    }
}

TEST(Backbone, HourglassStacksGiveOneStrideFourMapEachAndTheLastIsForwards) {
  torch::manual_seed(0);
  // A small hourglass: two stacks, two levels (input sides multiples of 4 · 2² = 16).
  auto hourglass = make_hourglass(2, {16, 24, 32}, {1, 1, 2}, 8, 12);
  EXPECT_EQ(hourglass->num_stacks(), 2);
  EXPECT_EQ(hourglass->size_divisor(), 16);
  EXPECT_EQ(hourglass->output_shape().channels, 12);
  EXPECT_EQ(hourglass->output_shape().stride_px, 4);
  torch::Tensor images = torch::randn({2, 3, 48, 80}, torch::requires_grad());
  const std::vector<torch::Tensor> stacks = hourglass->forward_stacks(images);
  ASSERT_EQ(stacks.size(), 2u);
  for (const torch::Tensor& s : stacks)
    EXPECT_EQ(s.sizes(), (std::vector<std::int64_t>{2, 12, 12, 20}));
  // Both stacks' losses reach every parameter (the first stack's heads are supervised too).
  (stacks[0].square().mean() + stacks[1].square().mean()).backward();
  for (const auto& p : hourglass->named_parameters())
    ASSERT_TRUE(p.value().grad().defined()) << p.key() << " gets no gradient";
  hourglass->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(hourglass->forward(images), hourglass->forward_stacks(images).back()));
}

TEST(Backbone, Hourglass104IsCenterNetsLargeHourglass) {
  const auto hourglass = build_backbone({"hourglass104"});
  EXPECT_EQ(hourglass->num_stacks(), 2);
  EXPECT_EQ(hourglass->size_divisor(), 128);
  EXPECT_EQ(hourglass->output_shape().channels, 256);
  // CenterNet's HourglassNet(heads, 2) without its heads: the parameters of pre, kps, cnvs,
  // inters, inters_ and cnvs_ (counted with Debian's PyTorch on CenterNet's
  // large_hourglass.py; README, issue 16).
  EXPECT_EQ(parameter_count(*hourglass), kCenterNetHourglassBackboneParameters);
  std::set<std::string> names;
  for (const auto& p : hourglass->named_parameters()) names.insert(p.key());
  for (const char* name :
       {"pre.0.conv.weight", "pre.1.skip.0.weight", "kps.0.up1.0.conv1.weight",
        "kps.1.low2.low2.low2.low2.low2.3.bn2.bias", "kps.0.low2.low3.1.skip.1.weight",
        "cnvs.1.conv.weight", "inters.0.conv2.weight", "inters_.0.1.weight", "cnvs_.0.0.weight"})
    EXPECT_EQ(names.count(name), 1u) << name;
  hourglass->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(hourglass->forward(torch::randn({1, 3, 128, 256})).sizes(),
            (std::vector<std::int64_t>{1, 256, 32, 64}));
}

TEST(Backbone, InputSidesMustBeMultiplesOf32) {
  EXPECT_NO_THROW(check_input_size(32, 96, 32));
  EXPECT_THROW(check_input_size(100, 96, 32), std::invalid_argument);
  EXPECT_THROW(check_input_size(0, 96, 32), std::invalid_argument);
}

}  // namespace
}  // namespace centermask
