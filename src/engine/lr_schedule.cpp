#include "centermask/engine/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace centermask {

LrScheduleFunction::LrScheduleFunction(const SolverConfig& solver, std::int64_t iters_per_epoch,
                                       double time_budget_seconds)
    : solver_(solver) {
  if (solver.schedule_length == ScheduleLength::kTimeLimit) {
    if (solver.schedule != LrSchedule::kCosine)
      throw std::invalid_argument(
          "solver.schedule_length: time_limit needs solver.schedule: cosine (a step schedule's "
          "epochs cannot follow the clock); use epochs");
    if (!(time_budget_seconds > 0))
      throw std::invalid_argument(
          "solver.schedule_length: time_limit needs runtime.time_limit_minutes > 0 (the budget "
          "the cosine ends at)");
    time_budget_seconds_ = time_budget_seconds;
  }
  const double per_epoch = static_cast<double>(std::max<std::int64_t>(1, iters_per_epoch));
  // epochs 0 with a time budget: no cap, the clock alone ends the run (config checks that a
  // budget is set); the iteration count is then only a bound the loop never reaches.
  total_iters_ = solver.epochs > 0
                     ? std::max<std::int64_t>(1, std::llround(solver.epochs * per_epoch))
                     : kNoIterationCap;
  for (double epoch : solver.lr_step_epochs) step_iters_.push_back(std::llround(epoch * per_epoch));
}

double LrScheduleFunction::at(std::int64_t iteration, double train_seconds) const {
  double lr = solver_.lr;
  if (solver_.schedule == LrSchedule::kStep) {
    for (std::int64_t step : step_iters_)
      if (iteration >= step) lr *= solver_.lr_gamma;
  } else {
    // Cosine from the end of warm-up to the last iteration.
    const double start =
        static_cast<double>(std::min<std::int64_t>(solver_.warmup_iters, total_iters_ - 1));
    double progress = std::clamp(
        (static_cast<double>(iteration) - start) / (static_cast<double>(total_iters_) - start), 0.0,
        1.0);
    // The time budget is counted from the start of training, warm-up included: warm-up is a
    // few percent of a budget, and counting from its end would need its duration saved too.
    if (time_budget_seconds_ > 0 && iteration >= solver_.warmup_iters)
      progress = std::max(progress, std::clamp(train_seconds / time_budget_seconds_, 0.0, 1.0));
    const double floor = solver_.min_lr_factor;
    lr *= floor + (1 - floor) * 0.5 * (1 + std::cos(M_PI * progress));
  }
  if (iteration < solver_.warmup_iters) {
    const double alpha = static_cast<double>(iteration) / solver_.warmup_iters;
    lr *= solver_.warmup_factor * (1 - alpha) + alpha;
  }
  return lr;
}

}  // namespace centermask
