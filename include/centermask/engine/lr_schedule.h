#pragma once
// The learning rate as a pure function of the iteration, so that a resumed run needs only the
// iteration to continue the same schedule. Step (÷ at given epochs) or cosine, both after an
// optional linear warm-up.
#include <cstdint>
#include <vector>

#include "centermask/engine/config.h"

namespace centermask {

class LrScheduleFunction {
 public:
  /// `iters_per_epoch` converts the config's epochs into iterations.
  LrScheduleFunction(const SolverConfig& solver, std::int64_t iters_per_epoch);
  /// Learning rate for the step that takes the run from `iteration` to `iteration + 1`.
  double at(std::int64_t iteration) const;
  std::int64_t total_iters() const { return total_iters_; }

 private:
  SolverConfig solver_;
  std::int64_t total_iters_ = 0;
  std::vector<std::int64_t> step_iters_;
};

}  // namespace centermask
