#pragma once
// What a run reports: JSON lines in RUN/log.jsonl (machine-readable, one object per log period
// or evaluation) and a human progress line on the console (rewritten in place on a terminal,
// one line per period otherwise).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "centermask/evaluation/coco_evaluator.h"

namespace centermask {

/// The loss of one step, or its sum or mean over several: the total and the method's terms
/// by name, in the method's order (the same every step of a run).
struct LossTerms {
  double total = 0;
  std::vector<std::pair<std::string, double>> terms;
  LossTerms& operator+=(const LossTerms& o) {
    total += o.total;
    if (terms.empty()) {
      terms = o.terms;
    } else {
      for (std::size_t i = 0; i < o.terms.size() && i < terms.size(); ++i)
        terms[i].second += o.terms[i].second;
    }
    return *this;
  }
  LossTerms operator/(double n) const {
    LossTerms mean = *this;
    mean.total /= n;
    for (auto& term : mean.terms) term.second /= n;
    return mean;
  }
};

/// Loss terms and timing summed over a log period.
struct TrainWindow {
  std::int64_t steps = 0;
  std::int64_t images = 0;
  LossTerms loss_sum;
  double grad_norm = 0;  ///< summed over the steps taken; only meaningful when clipping
  std::int64_t grad_norm_steps = 0;
  std::int64_t skipped_steps = 0;  ///< fp16: steps whose gradients overflowed (not taken)
  double step_seconds = 0;
  double data_wait_seconds = 0;
  void clear() { *this = TrainWindow{}; }
};

struct TrainPosition {
  std::int64_t iteration = 0;
  std::int64_t total_iterations = 0;
  double epoch = 0;  ///< fractional
  double total_epochs = 0;
  double lr = 0;
  double train_seconds = 0;
  double time_limit_seconds = 0;  ///< runtime.time_limit_minutes · 60; 0 = none
  double loss_scale = 0;          ///< fp16 training's loss scale at the end; 0 = not scaled
  int world_size = 1;             ///< processes training together (data-parallel)
};

/// COCO stat names in pycocotools' order.
const char* coco_stat_name(std::size_t i);

class TrainingLog {
 public:
  /// Appends to `path` (empty: writes nothing, for data-parallel ranks other than 0); with
  /// `keep_through_iteration` ≥ 0, first drops lines of iterations after it (a resumed run replaces
  /// what the interrupted run logged past its checkpoint).
  TrainingLog(const std::filesystem::path& path, std::int64_t keep_through_iteration,
              std::ostream* console, bool interactive);
  ~TrainingLog();
  TrainingLog(const TrainingLog&) = delete;
  TrainingLog& operator=(const TrainingLog&) = delete;

  void train_period(const TrainPosition& position, const TrainWindow& window, bool has_grad_norm);
  void evaluation(std::int64_t iteration, const CocoEvalResult& segm, const CocoEvalResult& bbox,
                  std::int64_t images, double seconds);
  /// A message for the console (ends the progress line first) and the log ("type": "event").
  void event(const std::string& message);

 private:
  void write_line(const std::string& json);
  void end_progress_line();

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  std::ostream* console_ = nullptr;
  bool interactive_ = false;
  bool progress_open_ = false;
};

/// "1h02m", "4m05s", "12s".
std::string format_duration(double seconds);

}  // namespace centermask
