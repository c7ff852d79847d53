// The training loop and its hooks; see train_hooks.h.

#include "engine/train_hooks.h"

#include <fmt/format.h>

#include <cmath>

namespace centermask {

TrainStatus run_train_loop(TrainProgress& progress, std::int64_t total_iters,
                           const std::function<StepReport(TrainProgress&)>& step,
                           const TrainHooks& hooks) {
  while (progress.iteration < total_iters) {
    for (const auto& hook : hooks)
      if (const std::optional<TrainStatus> stop = hook->stop_before_step(progress)) return *stop;
    const StepReport report = step(progress);
    for (const auto& hook : hooks) hook->after_step(report, progress);
  }
  return TrainStatus::kFinished;
}

// ---- StepRecord ------------------------------------------------------------------------------

namespace {

// The first non-finite term by name (the total when every term is finite).
std::string non_finite_loss_message(const LossTerms& loss) {
  std::string bad = "total", values;
  double bad_value = loss.total;
  for (const auto& [name, value] : loss.terms) {
    if (!std::isfinite(value) && bad == "total") bad = name, bad_value = value;
    values += fmt::format(" {} {}", name, value);
  }
  return fmt::format("loss term '{}' is {} (terms:{})", bad, bad_value, values);
}

}  // namespace

StepRecord::StepRecord(bool clipping, DataParallelGroup* data_parallel, bool read_every_step)
    : clipping_(clipping), data_parallel_(data_parallel), read_every_step_(read_every_step) {}

void StepRecord::add(std::int64_t iteration, const MethodLosses& losses,
                     const torch::Tensor& grad_norm, bool skipped) {
  if (names_.empty())
    for (const auto& term : losses.terms) names_.push_back(term.first);
  std::vector<torch::Tensor> row{losses.total.detach().to(torch::kFloat32)};
  for (const auto& term : losses.terms) row.push_back(term.second.detach().to(torch::kFloat32));
  row.push_back(grad_norm.defined() ? grad_norm.detach().to(torch::kFloat32).to(row[0].device())
                                    : torch::zeros({}, row[0].options()));
  rows_.push_back(torch::stack(row));
  pending_.emplace_back(iteration, skipped);
  if (read_every_step_) read();
}

void StepRecord::read() {
  if (rows_.empty()) return;
  // Taken out first: whatever is read (or thrown) below, the queue is empty afterwards.
  const std::vector<torch::Tensor> rows = std::exchange(rows_, {});
  const std::vector<std::pair<std::int64_t, bool>> pending = std::exchange(pending_, {});
  torch::Tensor values = torch::stack(rows);
  // Each rank's losses are its shard's: the mean over ranks is the global batch's loss (the
  // gradient norm, of averaged gradients, is the same on every rank already).
  if (data_parallel_ != nullptr) data_parallel_->average_over_ranks(values, "averaging the losses");
  values = values.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* v = values.data_ptr<double>();
  const std::size_t width = names_.size() + 2;
  for (std::size_t i = 0; i < pending.size(); ++i, v += width) {
    Step step;
    step.iteration = pending[i].first;
    step.skipped = pending[i].second;
    step.loss.total = v[0];
    for (std::size_t t = 0; t < names_.size(); ++t)
      step.loss.terms.emplace_back(names_[t], v[1 + t]);
    step.grad_norm = v[width - 1];
    if (!std::isfinite(step.loss.total))
      throw_diverged(step.iteration, non_finite_loss_message(step.loss));
    if (clipping_ && !step.skipped && !std::isfinite(step.grad_norm))
      throw_diverged(step.iteration, fmt::format("the gradient norm is {}", step.grad_norm));
    recent_.push_back(step.loss);
    if (recent_.size() > kRecentSteps) recent_.pop_front();
    window_.loss_sum += step.loss;
    if (step.skipped) {
      window_.skipped_steps += 1;
    } else {
      window_.grad_norm += step.grad_norm;
      window_.grad_norm_steps += 1;
    }
  }
}

void StepRecord::count(const StepReport& step) {
  window_.steps += 1;
  window_.images += step.images;
  window_.step_seconds += step.step_seconds;
  window_.data_wait_seconds += step.data_wait_seconds;
}

std::string StepRecord::diverged_message(std::int64_t iteration, const std::string& cause,
                                         const std::string& checkpoint_note) {
  return fmt::format(
      "iteration {}: {}; training stopped without saving. {}. Try a lower solver.lr, "
      "solver.warmup_iters or solver.clip_grad_norm.",
      iteration, cause, checkpoint_note);
}

void StepRecord::throw_diverged(std::int64_t iteration, const std::string& cause) const {
  throw TrainingDiverged(diverged_message(iteration, cause, checkpoint_note));
}

// ---- Hooks -----------------------------------------------------------------------------------

std::optional<TrainStatus> StopRequestHook::stop_before_step(const TrainProgress&) {
  if (requested_()) return TrainStatus::kInterrupted;
  return std::nullopt;
}

std::optional<TrainStatus> RankAgreementHook::stop_before_step(const TrainProgress&) {
  if (stop_agreed_) return TrainStatus::kInterrupted;
  return std::nullopt;
}

void RankAgreementHook::after_step(const StepReport&, TrainProgress& progress) {
  const std::vector<double> agreed = group_.max_over_ranks(
      {progress.train_seconds, requested_() ? 1.0 : 0.0}, "agreeing on the training time");
  progress.train_seconds = agreed[0];
  stop_agreed_ = agreed[1] > 0;
}

std::optional<TrainStatus> TimeBudgetHook::stop_before_step(const TrainProgress& progress) {
  if (limit_seconds_ > 0 && progress.train_seconds >= limit_seconds_)
    return TrainStatus::kTimeLimit;
  return std::nullopt;
}

void LoggingHook::after_step(const StepReport& step, TrainProgress& progress) {
  record_.count(step);
  const std::int64_t it = progress.iteration;
  if (it % schedule_.every_iters != 0 && it != schedule_.total_iters) return;
  record_.read();
  TrainPosition position;
  position.iteration = it;
  position.total_iterations = schedule_.total_iters;
  position.epoch = static_cast<double>(it) / static_cast<double>(schedule_.iters_per_epoch);
  position.total_epochs = schedule_.total_epochs;
  position.lr = step.lr;
  position.train_seconds = progress.train_seconds;
  position.time_limit_seconds = schedule_.time_limit_seconds;
  position.loss_scale = loss_scale_ ? loss_scale_() : 0;
  position.world_size = schedule_.world_size;
  log_.train_period(position, record_.window(), record_.clipping());
  record_.clear_window();
}

void CheckpointHook::after_step(const StepReport&, TrainProgress& progress) {
  const std::int64_t it = progress.iteration;
  if (every_iters_ > 0 && it % every_iters_ == 0 && it < total_iters_) save_();
}

void EvaluationHook::after_step(const StepReport&, TrainProgress& progress) {
  const std::int64_t it = progress.iteration;
  if (every_iters_ <= 0 || it % every_iters_ != 0 || it >= total_iters_) return;
  read_losses_();
  if (evaluate_) evaluate_(it);
}

}  // namespace centermask
