// Gradient clipping that never reads the norm on the host, checked against LibTorch's
// clip_grad_norm_ (the reference), and fp16 loss scaling: unscaling, overflow detection and
// torch.cuda.amp.GradScaler's rule for the scale, and its round trip through a checkpoint.

#include "centermask/engine/gradients.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "centermask/engine/checkpoint.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

// Parameters of odd shapes with gradients of a known loss; the last has no gradient.
std::vector<torch::Tensor> parameters_with_gradients(double gradient_size) {
  torch::manual_seed(4);
  std::vector<torch::Tensor> params{torch::randn({7, 13}, torch::requires_grad()),
                                    torch::randn({5}, torch::requires_grad()),
                                    torch::randn({3, 1, 3}, torch::requires_grad()),
                                    torch::randn({2, 2}, torch::requires_grad())};
  torch::Tensor loss = torch::zeros({});
  for (std::size_t i = 0; i + 1 < params.size(); ++i)
    loss = loss + gradient_size * (params[i] * torch::randn_like(params[i])).sum();
  loss.backward();
  return params;
}

std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& p : params) {
    torch::Tensor c = p.detach().clone().requires_grad_(true);
    if (p.grad().defined()) c.mutable_grad() = p.grad().clone();
    out.push_back(c);
  }
  return out;
}

TEST(ClipGradientNorm, MatchesLibTorchsClipGradNormWhenItClipsAndWhenItDoesNot) {
  for (const double max_norm : {0.5, 3.0, 1e6}) {
    std::vector<torch::Tensor> ours = parameters_with_gradients(1.0);
    std::vector<torch::Tensor> reference = copies(ours);
    const double expected = torch::nn::utils::clip_grad_norm_(reference, max_norm);
    const torch::Tensor norm = clip_gradient_norm(ours, max_norm);
    EXPECT_EQ(norm.dim(), 0);
    EXPECT_NEAR(norm.item<double>(), expected, 1e-5 * expected) << max_norm;
    for (std::size_t i = 0; i + 1 < ours.size(); ++i)
      EXPECT_TRUE(torch::allclose(ours[i].grad(), reference[i].grad(), 1e-5, 1e-7))
          << "max_norm " << max_norm << " parameter " << i;
    EXPECT_FALSE(ours.back().grad().defined());
  }
}

TEST(ClipGradientNorm, NoGradientsGiveZeroAndANonFiniteGradientANonFiniteNorm) {
  const std::vector<torch::Tensor> none{torch::zeros({3}, torch::requires_grad())};
  EXPECT_EQ(clip_gradient_norm(none, 1.0).item<double>(), 0.0);
  EXPECT_EQ(clip_gradient_norm({}, 1.0).item<double>(), 0.0);

  std::vector<torch::Tensor> params = parameters_with_gradients(1.0);
  params[1].mutable_grad()[2] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(std::isfinite(clip_gradient_norm(params, 1.0).item<double>()));
}

TEST(GradientScaler, UnscalingGivesTheUnscaledGradientsAndDetectsOverflow) {
  GradientScaler scaler;
  EXPECT_EQ(scaler.scale(), 65536.0);
  torch::manual_seed(5);
  const torch::Tensor x = torch::randn({6, 5});
  torch::Tensor w = torch::randn({5, 3}, torch::requires_grad());
  torch::Tensor plain_w = w.detach().clone().requires_grad_(true);
  const auto loss_of = [&](const torch::Tensor& weight) { return x.mm(weight).tanh().sum(); };
  scaler.scaled(loss_of(w)).backward();
  loss_of(plain_w).backward();
  EXPECT_FALSE(torch::allclose(w.grad(), plain_w.grad()));
  EXPECT_TRUE(scaler.unscale({w}));
  EXPECT_TRUE(torch::allclose(w.grad(), plain_w.grad(), 1e-6, 1e-7));

  w.mutable_grad()[1][2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(scaler.unscale({w}));
  w.mutable_grad()[1][2] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(scaler.unscale({w}));
  // No gradients at all: nothing overflowed.
  EXPECT_TRUE(scaler.unscale({torch::zeros({2}, torch::requires_grad())}));
}

TEST(GradientScaler, BacksOffOnOverflowAndGrowsAfterTheIntervalOfFiniteSteps) {
  GradientScaler::Options options;
  options.initial_scale = 8;
  options.growth_interval = 3;
  GradientScaler scaler(options);
  scaler.update(false);
  EXPECT_EQ(scaler.scale(), 4);
  scaler.update(true);
  scaler.update(true);
  EXPECT_EQ(scaler.scale(), 4);
  EXPECT_EQ(scaler.finite_steps(), 2);
  scaler.update(false);  // an overflow restarts the count
  EXPECT_EQ(scaler.scale(), 2);
  EXPECT_EQ(scaler.finite_steps(), 0);
  for (int i = 0; i < 3; ++i) scaler.update(true);
  EXPECT_EQ(scaler.scale(), 4);
  EXPECT_EQ(scaler.finite_steps(), 0);

  // Growth stops at the largest finite scale.
  options.initial_scale = std::numeric_limits<double>::max();
  options.growth_interval = 1;
  GradientScaler huge(options);
  huge.update(true);
  EXPECT_EQ(huge.scale(), std::numeric_limits<double>::max());
}

TEST(GradientScaler, RefusesBadOptionsAndBadSavedStates) {
  GradientScaler::Options bad;
  bad.backoff_factor = 1.5;
  EXPECT_THROW(GradientScaler{bad}, std::invalid_argument);
  bad = {};
  bad.initial_scale = 0;
  EXPECT_THROW(GradientScaler{bad}, std::invalid_argument);
  GradientScaler scaler;
  EXPECT_THROW(scaler.restore(0, 1), std::invalid_argument);
  EXPECT_THROW(scaler.restore(std::numeric_limits<double>::infinity(), 1), std::invalid_argument);
  EXPECT_THROW(scaler.restore(2, -1), std::invalid_argument);
  scaler.restore(512, 7);
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_EQ(scaler.finite_steps(), 7);
}

TEST(GradientScaler, ItsStateRoundTripsThroughACheckpointAndOlderOnesHaveNone) {
  testing::TempDir dir;
  torch::nn::Linear model(2, 2);
  TrainProgress progress;
  progress.iteration = 9;
  progress.loss_scale = 1024;
  progress.loss_scale_finite_steps = 37;
  save_checkpoint(dir / "scaled.pt", *model, nullptr, "model:\n", {}, progress);
  const CheckpointReader scaled(dir / "scaled.pt");
  EXPECT_EQ(scaled.contents().progress.loss_scale, 1024);
  EXPECT_EQ(scaled.contents().progress.loss_scale_finite_steps, 37);

  progress.loss_scale = 0;  // a run that does not scale writes nothing
  save_checkpoint(dir / "plain.pt", *model, nullptr, "model:\n", {}, progress);
  const CheckpointReader plain(dir / "plain.pt");
  EXPECT_EQ(plain.contents().progress.loss_scale, 0);
  EXPECT_EQ(plain.contents().progress.loss_scale_finite_steps, 0);
}

}  // namespace
}  // namespace centermask
