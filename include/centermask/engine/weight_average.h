#pragma once
// An exponential moving average of a model's weights (Polyak averaging; what YOLOX, timm's
// ModelEma and TensorFlow's ExponentialMovingAverage keep beside the trained weights).
// After each optimizer step every floating-point parameter and buffer (BatchNorm's running
// statistics included) moves towards the model's:
//   average ← d · average + (1 − d) · weights,   d = min(decay, (1 + t) / (10 + t)),
// t the number of updates so far. The ramp (TensorFlow's num_updates rule) keeps the average
// from being dominated by the initial weights in short runs and early evaluations; after
// ~10/(1 − decay) updates d is the configured decay. Integer buffers (BatchNorm's batch
// counter) are copied.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace centermask {

class WeightAverage {
 public:
  /// Starts the average at the model's current weights. decay in (0, 1).
  WeightAverage(torch::nn::Module& model, double decay);

  /// One step of the average towards the model's weights (call after optimizer.step()).
  void update(torch::nn::Module& model);

  /// The decay the next update will use.
  double next_decay() const;
  double decay() const { return decay_; }
  std::int64_t updates() const { return updates_; }

  /// The averaged tensors by the model's dotted names (parameters, then buffers).
  const std::vector<std::pair<std::string, torch::Tensor>>& state() const { return state_; }
  /// Restores a saved average (see checkpoint.h); the names and shapes must be the model's
  /// (std::invalid_argument naming the first that is not).
  void restore(const std::vector<std::pair<std::string, torch::Tensor>>& state,
               std::int64_t updates);

  /// Exchanges the model's weights with the average's, in place: swap, evaluate or save,
  /// swap back. The model keeps its tensor objects (the optimizer holds them).
  void swap_with(torch::nn::Module& model);

 private:
  double decay_;
  std::int64_t updates_ = 0;
  std::vector<std::pair<std::string, torch::Tensor>> state_;
};

/// The model's parameters and buffers by dotted name, in the order WeightAverage::state uses.
std::vector<std::pair<std::string, torch::Tensor>> named_weights(torch::nn::Module& model);

}  // namespace centermask
