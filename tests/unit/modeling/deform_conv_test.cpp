// Modulated deformable convolution: the CPU kernel and the grid_sample formulation against the
// element-by-element definition on odd shapes (strides, dilations, groups, deformable groups,
// offsets far outside the image), the kernel's gradients against finite differences in double
// and against autograd through grid_sample, the plain convolution it must reduce to, and the
// errors for tensors of the wrong shape.

#include "centermask/modeling/deform_conv.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "support/cuda.h"

namespace centermask {
namespace {

struct Case {
  std::string name;
  int batch, channels, height, width, out_channels, kernel_h, kernel_w;
  DeformConvGeometry geometry;
  double offset_scale;  ///< offsets ~ N(0, scale²): large ones point outside the image
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"7x13 k3 stride 2 dilation 2", 2, 4, 7, 13, 6, 3, 3, {2, 2, 1, 1, 2, 2, 1, 1}, 1.5},
      {"groups 2, deformable groups 2", 1, 4, 9, 6, 4, 3, 3, {1, 1, 1, 1, 1, 1, 2, 2}, 2.0},
      {"offsets far outside", 2, 3, 5, 8, 2, 3, 3, {1, 1, 1, 1, 1, 1, 1, 1}, 6.0},
      {"non-square kernel, no padding", 1, 2, 8, 7, 3, 2, 3, {1, 2, 0, 0, 1, 1, 1, 2}, 1.0},
      {"1x1 image", 1, 2, 1, 1, 2, 3, 3, {1, 1, 1, 1, 1, 1, 1, 1}, 0.7},
  };
  return all;
}

struct Tensors {
  torch::Tensor input, offset, mask, weight, bias;
};

std::pair<std::int64_t, std::int64_t> output_size(const Case& c) {
  const auto& g = c.geometry;
  return {(c.height + 2 * g.pad_h - g.dilation_h * (c.kernel_h - 1) - 1) / g.stride_h + 1,
          (c.width + 2 * g.pad_w - g.dilation_w * (c.kernel_w - 1) - 1) / g.stride_w + 1};
}

Tensors random_tensors(const Case& c, torch::ScalarType type, int seed) {
  torch::manual_seed(seed);
  const auto [ho, wo] = output_size(c);
  const std::int64_t taps = c.geometry.deformable_groups * c.kernel_h * c.kernel_w;
  const auto options = torch::TensorOptions().dtype(type);
  Tensors t;
  t.input = torch::randn({c.batch, c.channels, c.height, c.width}, options);
  t.offset = torch::randn({c.batch, 2 * taps, ho, wo}, options) * c.offset_scale;
  t.mask = torch::rand({c.batch, taps, ho, wo}, options);
  t.weight = torch::randn({c.out_channels, c.channels / c.geometry.groups, c.kernel_h, c.kernel_w},
                          options);
  t.bias = torch::randn({c.out_channels}, options);
  return t;
}

double max_abs_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

TEST(DeformConv, KernelAndGridSampleEqualTheDefinitionOnOddShapes) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    for (const auto type : {torch::kDouble, torch::kFloat}) {
      const Tensors t = random_tensors(c, type, 3);
      const torch::Tensor expected = modulated_deform_conv2d_reference(
          t.input, t.offset, t.mask, t.weight, t.bias, c.geometry);
      const torch::Tensor kernel =
          modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias, c.geometry);
      const torch::Tensor sampled =
          modulated_deform_conv2d_sampled(t.input, t.offset, t.mask, t.weight, t.bias, c.geometry);
      ASSERT_EQ(kernel.sizes(), expected.sizes());
      ASSERT_EQ(sampled.sizes(), expected.sizes());
      EXPECT_EQ(kernel.scalar_type(), type);
      const double tolerance = type == torch::kDouble ? 1e-10 : 1e-4;
      EXPECT_LT(max_abs_difference(kernel, expected), tolerance);
      EXPECT_LT(max_abs_difference(sampled, expected), tolerance);
      // Not everything is zero: the case tests something.
      EXPECT_GT(expected.abs().max().item<double>(), 0.1);
    }
  }
}

TEST(DeformConv, ZeroOffsetsAndUnitMaskAreThePlainConvolutionExactly) {
  // Small integers: every partial sum is exact in float, so any summation order gives the
  // same bits and the comparison can be exact.
  torch::manual_seed(5);
  const torch::Tensor input = torch::randint(-4, 5, {2, 6, 11, 9}).to(torch::kFloat);
  const torch::Tensor weight = torch::randint(-3, 4, {4, 3, 3, 3}).to(torch::kFloat);
  const torch::Tensor bias = torch::randint(-2, 3, {4}).to(torch::kFloat);
  for (const DeformConvGeometry g :
       {DeformConvGeometry{1, 1, 1, 1, 1, 1, 2, 1}, DeformConvGeometry{2, 2, 2, 2, 2, 2, 2, 3}}) {
    const std::int64_t ho = (11 + 2 * g.pad_h - g.dilation_h * 2 - 1) / g.stride_h + 1;
    const std::int64_t wo = (9 + 2 * g.pad_w - g.dilation_w * 2 - 1) / g.stride_w + 1;
    const std::int64_t taps = 9 * g.deformable_groups;
    const torch::Tensor offset = torch::zeros({2, 2 * taps, ho, wo});
    const torch::Tensor mask = torch::ones({2, taps, ho, wo});
    const torch::Tensor plain =
        torch::conv2d(input, weight, bias, {g.stride_h, g.stride_w}, {g.pad_h, g.pad_w},
                      {g.dilation_h, g.dilation_w}, g.groups);
    EXPECT_TRUE(torch::equal(modulated_deform_conv2d(input, offset, mask, weight, bias, g), plain));
    // grid_sample's normalised coordinates round the positions off the integers by ~1e-7
    // cells: close, not exact.
    EXPECT_LT(max_abs_difference(
                  modulated_deform_conv2d_sampled(input, offset, mask, weight, bias, g), plain),
              1e-5 * plain.abs().max().item<double>());
  }
}

TEST(DeformConv, GradientsEqualFiniteDifferencesInDouble) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Tensors t = random_tensors(c, torch::kDouble, 11);
    std::vector<torch::Tensor*> inputs{&t.input, &t.offset, &t.mask, &t.weight, &t.bias};
    for (torch::Tensor* x : inputs) x->requires_grad_(true);
    // A fixed random projection of the output makes the loss's gradient every output's.
    const torch::Tensor probe = torch::randn(
        modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias, c.geometry).sizes(),
        torch::kDouble);
    const auto loss = [&] {
      return (modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias, c.geometry) *
              probe)
          .sum();
    };
    const auto grads =
        torch::autograd::grad({loss()}, {t.input, t.offset, t.mask, t.weight, t.bias});
    const char* names[] = {"input", "offset", "mask", "weight", "bias"};
    torch::NoGradGuard no_grad;
    const double eps = 1e-6;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      SCOPED_TRACE(names[k]);
      torch::Tensor flat = inputs[k]->view({-1});
      const std::int64_t count = flat.numel();
      // Every element of small tensors, a spread of them otherwise.
      const std::int64_t step = std::max<std::int64_t>(1, count / 60);
      for (std::int64_t i = 0; i < count; i += step) {
        const double saved = flat[i].item<double>();
        flat[i] = saved + eps;
        const double up = loss().item<double>();
        flat[i] = saved - eps;
        const double down = loss().item<double>();
        flat[i] = saved;
        const double numeric = (up - down) / (2 * eps);
        const double analytic = grads[k].view({-1})[i].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << "element " << i;
      }
    }
  }
}

TEST(DeformConv, KernelGradientsEqualAutogradThroughGridSample) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Tensors a = random_tensors(c, torch::kDouble, 17);
    Tensors b = random_tensors(c, torch::kDouble, 17);
    for (Tensors* t : {&a, &b})
      for (torch::Tensor* x : {&t->input, &t->offset, &t->mask, &t->weight, &t->bias})
        x->requires_grad_(true);
    const torch::Tensor out_a =
        modulated_deform_conv2d(a.input, a.offset, a.mask, a.weight, a.bias, c.geometry);
    const torch::Tensor out_b =
        modulated_deform_conv2d_sampled(b.input, b.offset, b.mask, b.weight, b.bias, c.geometry);
    const torch::Tensor probe = torch::randn(out_a.sizes(), torch::kDouble);
    (out_a * probe).sum().backward();
    (out_b * probe).sum().backward();
    EXPECT_LT(max_abs_difference(a.input.grad(), b.input.grad()), 1e-9);
    EXPECT_LT(max_abs_difference(a.offset.grad(), b.offset.grad()), 1e-9);
    EXPECT_LT(max_abs_difference(a.mask.grad(), b.mask.grad()), 1e-9);
    EXPECT_LT(max_abs_difference(a.weight.grad(), b.weight.grad()), 1e-9);
    EXPECT_LT(max_abs_difference(a.bias.grad(), b.bias.grad()), 1e-9);
  }
}

TEST(DeformConv, EmptyBatchGivesAnEmptyOutputAndNoBiasIsZeroBias) {
  const Case& c = cases()[0];
  Tensors t = random_tensors(c, torch::kFloat, 2);
  const torch::Tensor without =
      modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, {}, c.geometry);
  const torch::Tensor with_zero = modulated_deform_conv2d(
      t.input, t.offset, t.mask, t.weight, torch::zeros({c.out_channels}), c.geometry);
  EXPECT_TRUE(torch::equal(without, with_zero));
  const auto [ho, wo] = output_size(c);
  const torch::Tensor empty =
      modulated_deform_conv2d(t.input.slice(0, 0, 0), t.offset.slice(0, 0, 0),
                              t.mask.slice(0, 0, 0), t.weight, t.bias, c.geometry);
  EXPECT_EQ(empty.sizes(), torch::IntArrayRef({0, c.out_channels, ho, wo}));
  const torch::Tensor empty_sampled =
      modulated_deform_conv2d_sampled(t.input.slice(0, 0, 0), t.offset.slice(0, 0, 0),
                                      t.mask.slice(0, 0, 0), t.weight, t.bias, c.geometry);
  EXPECT_EQ(empty_sampled.sizes(), empty.sizes());
}

TEST(DeformConv, HalfPrecisionInputsAreComputedInFloat) {
  const Case& c = cases()[0];
  const Tensors t = random_tensors(c, torch::kFloat, 4);
  const torch::Tensor offset_bf16 = t.offset.to(torch::kBFloat16);
  const torch::Tensor mask_bf16 = t.mask.to(torch::kBFloat16);
  const torch::Tensor from_bf16 =
      modulated_deform_conv2d(t.input, offset_bf16, mask_bf16, t.weight, t.bias, c.geometry);
  EXPECT_EQ(from_bf16.scalar_type(), torch::kFloat);
  // Computed in float from the bf16 values: exactly the float computation on the rounded
  // offsets and masks (the same kernel, the same order: bit for bit) ...
  const torch::Tensor widened =
      modulated_deform_conv2d(t.input, offset_bf16.to(torch::kFloat), mask_bf16.to(torch::kFloat),
                              t.weight, t.bias, c.geometry);
  EXPECT_TRUE(torch::equal(from_bf16, widened));
  // ... which differs from the unrounded inputs' output only by that rounding: bf16 keeps 8
  // significant bits (relative error ≤ 2^-9), so offsets of up to ~5 cells move by ≤ 0.01 cell
  // and masks by ≤ 0.002; through bilinear weights and 36 products of N(0, 1) values that is
  // well under 2 % of the output's range (measured: see the figure printed on failure).
  const torch::Tensor reference =
      modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias, c.geometry);
  EXPECT_LT(max_abs_difference(from_bf16, reference), 0.02 * reference.abs().max().item<double>());
}

void expect_error(const std::function<void()>& call, const std::string& expected) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one containing: " << expected;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
}

TEST(DeformConv, WrongShapesAreErrorsNamingTheExpectedShape) {
  const Case& c = cases()[0];  // output 3×6, 9 taps
  const Tensors t = random_tensors(c, torch::kFloat, 1);
  expect_error(
      [&] {
        modulated_deform_conv2d(t.input, t.offset.slice(1, 0, 17), t.mask, t.weight, t.bias,
                                c.geometry);
      },
      "offset has shape (2, 17, 3, 6); expected (N, 2·dg·kh·kw, Ho, Wo) = (2, 18, 3, 6)");
  expect_error(
      [&] {
        modulated_deform_conv2d(t.input, t.offset, t.mask.slice(2, 0, 2), t.weight, t.bias,
                                c.geometry);
      },
      "mask has shape (2, 9, 2, 6); expected (N, dg·kh·kw, Ho, Wo) = (2, 9, 3, 6)");
  expect_error(
      [&] {
        modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight.slice(1, 0, 3), t.bias,
                                c.geometry);
      },
      "weight has shape (6, 3, 3, 3); expected (6, 4, kh, kw)");
  expect_error(
      [&] {
        modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias.slice(0, 0, 5),
                                c.geometry);
      },
      "bias has shape (5); expected (6)");
  DeformConvGeometry three_groups = c.geometry;
  three_groups.deformable_groups = 3;
  expect_error(
      [&] { modulated_deform_conv2d(t.input, t.offset, t.mask, t.weight, t.bias, three_groups); },
      "4 input channels do not split into 3 deformable groups");
  expect_error(
      [&] {
        modulated_deform_conv2d(t.input.slice(2, 0, 0), t.offset, t.mask, t.weight, t.bias,
                                c.geometry);
      },
      "input has shape (2, 4, 0, 13)");
}

// The largest difference relative to the reference's own scale (at least 1).
double relative_difference(const torch::Tensor& value, const torch::Tensor& reference) {
  return max_abs_difference(value, reference) / std::max(1.0, reference.abs().max().item<double>());
}

// float32 on both sides, two formulations (the kernel's columns and products; grid_sample and
// a matmul) that sum in other orders: they agree to float's rounding of sums of at most 36
// products. This bound is the CUDA test's: on the GPU the same grid_sample formulation runs.
constexpr double kFloatFormulationTolerance = 1e-5;

TEST(DeformConv, FloatKernelAndGridSampleAgreeOnOutputsAndAllFiveGradients) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Tensors a = random_tensors(c, torch::kFloat, 23);
    Tensors b = random_tensors(c, torch::kFloat, 23);
    for (Tensors* t : {&a, &b})
      for (torch::Tensor* x : {&t->input, &t->offset, &t->mask, &t->weight, &t->bias})
        x->requires_grad_(true);
    const torch::Tensor out_a =
        modulated_deform_conv2d(a.input, a.offset, a.mask, a.weight, a.bias, c.geometry);
    const torch::Tensor out_b =
        modulated_deform_conv2d_sampled(b.input, b.offset, b.mask, b.weight, b.bias, c.geometry);
    EXPECT_LT(relative_difference(out_b, out_a), kFloatFormulationTolerance);
    out_a.sum().backward();
    out_b.sum().backward();
    EXPECT_LT(relative_difference(b.input.grad(), a.input.grad()), kFloatFormulationTolerance);
    EXPECT_LT(relative_difference(b.offset.grad(), a.offset.grad()), kFloatFormulationTolerance);
    EXPECT_LT(relative_difference(b.mask.grad(), a.mask.grad()), kFloatFormulationTolerance);
    EXPECT_LT(relative_difference(b.weight.grad(), a.weight.grad()), kFloatFormulationTolerance);
    EXPECT_LT(relative_difference(b.bias.grad(), a.bias.grad()), kFloatFormulationTolerance);
  }
}

TEST(DeformConv, CudaGivesTheCpuKernelsOutputsAndGradients) {
  CENTERMASK_CUDA_OR_SKIP();
  // TF32 would round the products' inputs to 10 bits: compare float32 with float32.
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    Tensors cpu = random_tensors(c, torch::kFloat, 21);
    Tensors gpu;
    for (auto [from, to] : {std::pair{&cpu.input, &gpu.input}, std::pair{&cpu.offset, &gpu.offset},
                            std::pair{&cpu.mask, &gpu.mask}, std::pair{&cpu.weight, &gpu.weight},
                            std::pair{&cpu.bias, &gpu.bias}}) {
      *to = from->to(torch::kCUDA).requires_grad_(true);
      from->requires_grad_(true);
    }
    const torch::Tensor out_cpu =
        modulated_deform_conv2d(cpu.input, cpu.offset, cpu.mask, cpu.weight, cpu.bias, c.geometry);
    const torch::Tensor out_gpu =
        modulated_deform_conv2d(gpu.input, gpu.offset, gpu.mask, gpu.weight, gpu.bias, c.geometry);
    EXPECT_TRUE(out_gpu.is_cuda());
    EXPECT_LT(relative_difference(out_gpu.cpu(), out_cpu), kFloatFormulationTolerance);
    out_cpu.sum().backward();
    out_gpu.sum().backward();
    const char* names[] = {"input", "offset", "mask", "weight", "bias"};
    const torch::Tensor* cpu_tensors[] = {&cpu.input, &cpu.offset, &cpu.mask, &cpu.weight,
                                          &cpu.bias};
    const torch::Tensor* gpu_tensors[] = {&gpu.input, &gpu.offset, &gpu.mask, &gpu.weight,
                                          &gpu.bias};
    for (int k = 0; k < 5; ++k)
      EXPECT_LT(relative_difference(gpu_tensors[k]->grad().cpu(), cpu_tensors[k]->grad()),
                kFloatFormulationTolerance)
          << names[k] << " gradient";
  }
}

TEST(DeformConv, UntrainedLayerIsThePlainConvolutionAtHalfWeight) {
  torch::manual_seed(8);
  ModulatedDeformConv2d layer(5, 7, 3);
  const torch::Tensor x = torch::randn({2, 5, 9, 10});
  // conv_offset_mask starts at zero: no shift, every tap's mask sigmoid(0) = 0.5.
  const torch::Tensor expected = torch::conv2d(x, layer->weight * 0.5, layer->bias, 1, 1);
  EXPECT_LT(max_abs_difference(layer->forward(x), expected), 1e-5);
  // DCNv2's parameter names, so CenterNet's checkpoints load.
  std::vector<std::string> names;
  for (const auto& p : layer->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias", "conv_offset_mask.weight",
                                             "conv_offset_mask.bias"}));
  // Gradients reach the offset branch (it learns from the first step).
  layer->forward(x).square().sum().backward();
  EXPECT_GT(layer->conv_offset_mask->weight.grad().abs().sum().item<double>(), 0.0);
}

}  // namespace
}  // namespace centermask
