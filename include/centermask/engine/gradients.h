#pragma once
// What the trainer does to gradients between backward and the optimizer step, written so that
// nothing waits for the device: the gradient norm stays a device tensor (read by the trainer
// with the losses, every log period on CUDA), and fp16 loss scaling reads one flag per step.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace centermask {

/// Scales the gradients of `parameters` so that their global L2 norm is at most `max_norm`
/// (as torch.nn.utils.clip_grad_norm_), and returns that norm before scaling as a 0-dim
/// float32 tensor on the parameters' device: no host synchronisation. A non-finite norm makes
/// the gradients non-finite too (the caller's divergence check reports it). Parameters without
/// a gradient are skipped; none at all gives 0.
torch::Tensor clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

/// Dynamic loss scaling for fp16 training (torch.cuda.amp.GradScaler's rule): the loss is
/// multiplied by the scale before backward so that small gradients survive fp16's range, and
/// the gradients are divided back before clipping and the step. A step whose gradients
/// overflowed (inf or NaN) is skipped and the scale multiplied by `backoff_factor`; after
/// `growth_interval` finite steps in a row it is multiplied by `growth_factor`.
class GradientScaler {
 public:
  struct Options {
    double initial_scale = 65536.0;
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    std::int64_t growth_interval = 2000;
  };
  explicit GradientScaler(Options options);
  GradientScaler() : GradientScaler(Options{}) {}

  torch::Tensor scaled(const torch::Tensor& loss) const { return loss * scale_; }
  /// Divides every gradient by the scale in place. True when all are finite (one flag read
  /// from the device: the step must know whether to skip).
  bool unscale(const std::vector<torch::Tensor>& parameters) const;
  /// After the step (taken or skipped): the scale for the next one.
  void update(bool gradients_finite);

  double scale() const { return scale_; }
  /// Finite steps in a row since the scale last changed.
  std::int64_t finite_steps() const { return finite_steps_; }
  /// Restores a saved state (resume). std::invalid_argument for a scale that is not > 0.
  void restore(double scale, std::int64_t finite_steps);

 private:
  Options options_;
  double scale_;
  std::int64_t finite_steps_ = 0;
};

}  // namespace centermask
