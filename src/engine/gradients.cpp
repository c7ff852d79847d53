#include "centermask/engine/gradients.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace centermask {

torch::Tensor clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({}, torch::kFloat32);
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const torch::Tensor& g : grads) norms.push_back(g.norm(2).to(torch::kFloat32));
  const torch::Tensor total = torch::stack(norms).norm(2);
  // min(1, max_norm / (norm + 1e-6)) as a device tensor: the multiply happens whatever the
  // norm, so nothing here needs its value on the host.
  const torch::Tensor factor = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (torch::Tensor& g : grads) g.mul_(factor.to(g.scalar_type()));
  return total;
}

GradientScaler::GradientScaler(Options options) : options_(options), scale_(options.initial_scale) {
  if (!(options_.initial_scale > 0) || !(options_.growth_factor > 1) ||
      !(options_.backoff_factor > 0 && options_.backoff_factor < 1) ||
      options_.growth_interval <= 0)
    throw std::invalid_argument(
        "GradientScaler: need initial_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and "
        "growth_interval > 0");
}

bool GradientScaler::unscale(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> finite;
  for (const torch::Tensor& p : parameters) {
    if (!p.grad().defined()) continue;
    torch::Tensor g = p.grad();
    g.mul_(1.0 / scale_);
    finite.push_back(torch::isfinite(g).all());
  }
  if (finite.empty()) return true;
  return torch::stack(finite).all().item<bool>();
}

void GradientScaler::update(bool gradients_finite) {
  if (!gradients_finite) {
    scale_ *= options_.backoff_factor;
    finite_steps_ = 0;
    return;
  }
  if (++finite_steps_ >= options_.growth_interval) {
    // Growing into inf would end scaling: stay at the largest finite scale instead.
    const double grown = scale_ * options_.growth_factor;
    if (std::isfinite(grown)) scale_ = grown;
    finite_steps_ = 0;
  }
}

void GradientScaler::restore(double scale, std::int64_t finite_steps) {
  if (!(scale > 0) || !std::isfinite(scale) || finite_steps < 0)
    throw std::invalid_argument(fmt::format(
        "GradientScaler: a saved scale must be finite and > 0 and its step count ≥ 0, got {} "
        "and {}",
        scale, finite_steps));
  scale_ = scale;
  finite_steps_ = finite_steps;
}

}  // namespace centermask
