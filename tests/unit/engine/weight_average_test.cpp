// The weight average against a step-by-step reference in doubles, its ramp, the swap that
// evaluation and the final checkpoint use, and its round trip through a checkpoint.

#include "centermask/engine/weight_average.h"

#include <gtest/gtest.h>

#include <cmath>

#include "centermask/common/error.h"
#include "centermask/engine/checkpoint.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

// Parameters, a float buffer (BatchNorm's running mean) and an integer one (its counter).
struct SmallNetImpl : torch::nn::Module {
  SmallNetImpl()
      : linear(register_module("linear", torch::nn::Linear(3, 2))),
        norm(register_module("norm", torch::nn::BatchNorm1d(2))) {}
  torch::Tensor forward(const torch::Tensor& x) { return norm(linear(x)); }
  torch::nn::Linear linear;
  torch::nn::BatchNorm1d norm;
};
TORCH_MODULE(SmallNet);

// One training-like change of every weight: parameters jump, BatchNorm's statistics move.
void perturb(SmallNet& net, int step) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->parameters()) p.add_(torch::full_like(p, 0.1 * step) + 0.01 * step * step);
  net->train();
  net->forward(torch::randn({4, 3}));
}

TEST(WeightAverage, FollowsTheReferenceRecursionWithItsRamp) {
  torch::manual_seed(0);
  SmallNet net;
  const double decay = 0.6;
  WeightAverage average(*net, decay);
  // Reference: each float tensor's average in doubles, updated element by element.
  std::vector<std::vector<double>> reference;
  const auto initial = named_weights(*net);
  for (const auto& [name, tensor] : initial) {
    const torch::Tensor flat = tensor.to(torch::kDouble).flatten();
    reference.emplace_back(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  }
  for (int step = 1; step <= 25; ++step) {
    perturb(net, step);
    // The ramp: (1 + t) / (10 + t) until it passes the configured decay (t ≥ 12.5 here).
    const double t = step - 1;
    const double expected_d = std::min(decay, (1 + t) / (10 + t));
    EXPECT_DOUBLE_EQ(average.next_decay(), expected_d);
    const auto current = named_weights(*net);
    for (std::size_t i = 0; i < current.size(); ++i) {
      const torch::Tensor flat = current[i].second.to(torch::kDouble).flatten();
      for (std::int64_t k = 0; k < flat.numel(); ++k) {
        const double w = flat.data_ptr<double>()[k];
        double& r = reference[i][k];
        r = current[i].second.is_floating_point() ? expected_d * r + (1 - expected_d) * w : w;
      }
    }
    average.update(*net);
  }
  EXPECT_EQ(average.updates(), 25);
  EXPECT_DOUBLE_EQ(average.next_decay(), decay);
  for (std::size_t i = 0; i < average.state().size(); ++i) {
    const auto& [name, tensor] = average.state()[i];
    const torch::Tensor flat = tensor.to(torch::kDouble).flatten();
    for (std::int64_t k = 0; k < flat.numel(); ++k)
      EXPECT_NEAR(flat.data_ptr<double>()[k], reference[i][k],
                  1e-6 * (1 + std::abs(reference[i][k])))
          << name << "[" << k << "]";
  }
  // The counter is copied, not averaged.
  const auto counter =
      std::find_if(average.state().begin(), average.state().end(),
                   [](const auto& item) { return item.first == "norm.num_batches_tracked"; });
  ASSERT_NE(counter, average.state().end());
  EXPECT_EQ(counter->second.item<std::int64_t>(), 25);
}

TEST(WeightAverage, SwappingTwiceGivesBothBackAndKeepsTheModelsTensors) {
  torch::manual_seed(1);
  SmallNet net;
  WeightAverage average(*net, 0.5);
  for (int step = 1; step <= 3; ++step) {
    perturb(net, step);
    average.update(*net);
  }
  const torch::Tensor weight = net->linear->weight;  // the handle an optimizer would hold
  const void* storage = weight.data_ptr();
  const torch::Tensor trained = weight.clone();
  const torch::Tensor averaged = average.state()[0].second.clone();
  ASSERT_FALSE(torch::equal(trained, averaged));

  average.swap_with(*net);
  EXPECT_TRUE(torch::equal(net->linear->weight, averaged));
  EXPECT_TRUE(torch::equal(average.state()[0].second, trained));
  EXPECT_EQ(net->linear->weight.data_ptr(), storage);
  average.swap_with(*net);
  EXPECT_TRUE(torch::equal(net->linear->weight, trained));
  EXPECT_TRUE(torch::equal(average.state()[0].second, averaged));
}

TEST(WeightAverage, RoundTripsThroughACheckpoint) {
  testing::TempDir dir;
  torch::manual_seed(2);
  CenterMaskOptions options;
  options.num_classes = 2;
  options.shape_size = 8;
  options.backbone.name = "resnet18";
  CenterMask model(options);
  WeightAverage average(*model, 0.99);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(1.0);
  }
  average.update(*model);
  average.update(*model);
  save_checkpoint(dir / "with.pt", *model, nullptr, "", {{1, "a", ""}, {2, "b", ""}}, {}, &average);
  save_checkpoint(dir / "without.pt", *model, nullptr, "", {{1, "a", ""}, {2, "b", ""}}, {});

  CenterMask other(options);
  WeightAverage restored(*other, 0.99);
  EXPECT_TRUE(CheckpointReader(dir / "with.pt").load_weight_average(restored));
  EXPECT_EQ(restored.updates(), 2);
  ASSERT_EQ(restored.state().size(), average.state().size());
  for (std::size_t i = 0; i < restored.state().size(); ++i)
    EXPECT_TRUE(torch::equal(restored.state()[i].second, average.state()[i].second))
        << restored.state()[i].first;
  EXPECT_FALSE(CheckpointReader(dir / "without.pt").load_weight_average(restored));

  // An average of another architecture is refused with the file named.
  CenterMaskOptions deeper = options;
  deeper.backbone.name = "resnet34";
  CenterMask deep(deeper);
  WeightAverage deep_average(*deep, 0.99);
  const std::string message = testing::error_message_of(
      [&] { CheckpointReader(dir / "with.pt").load_weight_average(deep_average); });
  EXPECT_NE(message.find("with.pt: weight average: no 'backbone.layer1.2"), std::string::npos)
      << message;
}

TEST(WeightAverage, RefusesADecayOutsideZeroToOne) {
  SmallNet net;
  for (double bad : {0.0, 1.0, -0.5, 1.5, std::nan("")})
    EXPECT_THROW(WeightAverage(*net, bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace centermask
