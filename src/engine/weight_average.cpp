#include "centermask/engine/weight_average.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace centermask {

std::vector<std::pair<std::string, torch::Tensor>> named_weights(torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& item : model.named_parameters(true))
    weights.emplace_back(item.key(), item.value());
  for (const auto& item : model.named_buffers(true)) weights.emplace_back(item.key(), item.value());
  return weights;
}

WeightAverage::WeightAverage(torch::nn::Module& model, double decay) : decay_(decay) {
  if (!(decay > 0 && decay < 1))
    throw std::invalid_argument(fmt::format("weight average: decay {} is not in (0, 1)", decay));
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : named_weights(model))
    state_.emplace_back(name, tensor.detach().clone());
}

double WeightAverage::next_decay() const {
  const double t = static_cast<double>(updates_);
  return std::min(decay_, (1 + t) / (10 + t));
}

void WeightAverage::update(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const double d = next_decay();
  const auto weights = named_weights(model);
  if (weights.size() != state_.size())
    throw std::logic_error("weight average: the model's weights changed in number");
  std::vector<torch::Tensor> averages, currents;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    torch::Tensor& average = state_[i].second;
    const torch::Tensor current = weights[i].second.detach();
    if (average.is_floating_point()) {
      averages.push_back(average);
      currents.push_back(current);
    } else {
      average.copy_(current);
    }
  }
  // One fused call per operation over all tensors: the model has hundreds of small ones, and
  // per-tensor calls cost more in dispatch than in arithmetic.
  at::_foreach_mul_(averages, d);
  at::_foreach_add_(averages, currents, 1 - d);
  ++updates_;
}

void WeightAverage::restore(const std::vector<std::pair<std::string, torch::Tensor>>& state,
                            std::int64_t updates) {
  torch::NoGradGuard no_grad;
  for (auto& [name, average] : state_) {
    const auto found = std::find_if(state.begin(), state.end(),
                                    [&](const auto& item) { return item.first == name; });
    if (found == state.end())
      throw std::invalid_argument(fmt::format("weight average: no '{}'", name));
    if (found->second.sizes() != average.sizes())
      throw std::invalid_argument(fmt::format("weight average: '{}' has another shape", name));
    average.copy_(found->second);
  }
  if (state.size() != state_.size())
    throw std::invalid_argument(fmt::format("weight average: {} tensors where the model has {}",
                                            state.size(), state_.size()));
  updates_ = updates;
}

void WeightAverage::swap_with(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const auto weights = named_weights(model);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    torch::Tensor model_tensor = weights[i].second;
    torch::Tensor& average = state_[i].second;
    // Three copies through a scratch buffer: the model's tensors must stay the same objects
    // (the optimizer holds them), so their contents move, not the handles.
    const torch::Tensor scratch = model_tensor.detach().clone();
    model_tensor.detach().copy_(average);
    average.copy_(scratch);
  }
}

}  // namespace centermask
