#pragma once
// Wall time per inference stage, for `centermask bench`: a method marks its stages with
// ScopedStage ("backbone", "heads", "decode", "nms", "assembly"); nothing is recorded, and a
// scope costs one thread-local pointer test, unless a StageRecording is alive on the thread.
//
// Stages nest and their times are exclusive: the time of a stage opened inside another is
// not counted in the outer one (decode_fcos_boxes is "decode" with an "nms" inside it), so
// the stages of one run add up to at most its wall time.

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace centermask {

class StageRecording {
 public:
  /// `synchronize` (may be empty) runs before every clock read: e.g. waiting for the GPU's
  /// queued work, without which asynchronous kernels would be timed in whichever stage
  /// happens to wait for them. `clock_ms` (may be empty: std::chrono::steady_clock) gives the
  /// time in milliseconds; the tests pass a clock they advance themselves, so that what is
  /// checked is the bookkeeping, never how long the machine took.
  explicit StageRecording(std::function<void()> synchronize = {},
                          std::function<double()> clock_ms = {});
  ~StageRecording();
  StageRecording(const StageRecording&) = delete;
  StageRecording& operator=(const StageRecording&) = delete;

  /// Exclusive milliseconds per stage, in the order the stages were first entered; a stage
  /// entered several times is summed.
  const std::vector<std::pair<std::string, double>>& milliseconds() const { return totals_; }

 private:
  friend class ScopedStage;
  struct Open {
    double start_ms = 0;
    double nested_ms = 0;  ///< time of stages opened inside this one
  };
  void add(const std::string& name, double ms);
  double now_ms() const;

  std::function<void()> synchronize_;
  std::function<double()> clock_ms_;
  std::vector<Open> open_;
  std::vector<std::pair<std::string, double>> totals_;
  StageRecording* previous_ = nullptr;
};

class ScopedStage {
 public:
  explicit ScopedStage(const char* name);
  ~ScopedStage();
  ScopedStage(const ScopedStage&) = delete;
  ScopedStage& operator=(const ScopedStage&) = delete;

 private:
  const char* name_;
  StageRecording* recording_;
};

}  // namespace centermask
