#pragma once
// The learning rate as a pure function of the iteration, so that a resumed run needs only the
// iteration to continue the same schedule. Step (÷ at given epochs) or cosine, both after an
// optional linear warm-up. With solver.schedule_length = time_limit the cosine's progress is
// also driven by the training time spent (the run's saved train_seconds on resume).
#include <cstdint>
#include <vector>

#include "centermask/engine/config.h"

namespace centermask {

class LrScheduleFunction {
 public:
  /// `iters_per_epoch` converts the config's epochs into iterations; `time_budget_seconds` is
  /// the training time the schedule ends at when solver.schedule_length is time_limit.
  LrScheduleFunction(const SolverConfig& solver, std::int64_t iters_per_epoch,
                     double time_budget_seconds = 0);
  /// Learning rate for the step that takes the run from `iteration` to `iteration + 1`, after
  /// `train_seconds` of training (used only by a time-limited schedule).
  double at(std::int64_t iteration, double train_seconds = 0) const;
  std::int64_t total_iters() const { return total_iters_; }
  /// total_iters() of a run with no epoch cap (solver.epochs 0: the time limit ends it).
  static constexpr std::int64_t kNoIterationCap = std::int64_t{1} << 50;
  bool has_iteration_cap() const { return total_iters_ < kNoIterationCap; }

 private:
  SolverConfig solver_;
  std::int64_t total_iters_ = 0;
  double time_budget_seconds_ = 0;  ///< > 0 only when the schedule ends at a time budget
  std::vector<std::int64_t> step_iters_;
};

}  // namespace centermask
