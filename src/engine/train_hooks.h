#pragma once
// The training loop and what runs between its steps. train() (trainer.cpp) prepares a run,
// builds its state and hands run_train_loop one step function and a list of hooks; each hook is
// one concern — a stop request, the ranks' agreement, the time budget, the log, checkpoints,
// evaluations — that can be read and tested without the others.
//
// The order of the list is the order of their effects: before a step the first hook that asks
// to stop wins (a stop request is reported over a reached time budget); after a step the ranks
// agree on the time before it is logged, and the log is written before a checkpoint or an
// evaluation that could fail.
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "centermask/engine/checkpoint.h"
#include "centermask/engine/distributed.h"
#include "centermask/engine/trainer.h"
#include "centermask/modeling/meta_arch.h"
#include "engine/training_log.h"

namespace centermask {

/// One optimizer step as the hooks see it.
struct StepReport {
  std::int64_t images = 0;  ///< over every rank
  double lr = 0;
  double step_seconds = 0;  ///< this rank's, data wait included
  double data_wait_seconds = 0;
};

class TrainHook {
 public:
  virtual ~TrainHook() = default;
  /// Asked before every step: why the loop must end now, or nullopt to go on.
  virtual std::optional<TrainStatus> stop_before_step(const TrainProgress& /*progress*/) {
    return std::nullopt;
  }
  /// After every step, with the progress the step left (the hook may correct it: the ranks'
  /// agreed time).
  virtual void after_step(const StepReport& /*step*/, TrainProgress& /*progress*/) {}
};

using TrainHooks = std::vector<std::unique_ptr<TrainHook>>;

/// Runs `step` until `progress.iteration` reaches `total_iters` or a hook stops the loop;
/// returns why it ended (kFinished when every iteration was done).
TrainStatus run_train_loop(TrainProgress& progress, std::int64_t total_iters,
                           const std::function<StepReport(TrainProgress&)>& step,
                           const TrainHooks& hooks);

// ---- What each step leaves to be read --------------------------------------------------------

/// Each step's loss terms and gradient norm, kept on the device until read. Reading a CUDA
/// scalar waits for the GPU to finish the step and stalls the launch of the next, so on CUDA
/// they are read every log period and before each checkpoint and evaluation (a divergence is
/// then reported with its iteration a few steps late, and no checkpoint holds the diverged
/// weights); on the CPU there is nothing to wait for and they are read every step.
class StepRecord {
 public:
  struct Step {
    std::int64_t iteration = 0;
    LossTerms loss;
    double grad_norm = 0;  ///< 0 without clipping
    bool skipped = false;  ///< fp16: the gradients overflowed and the step was not taken
  };
  static constexpr std::size_t kRecentSteps = 100;

  /// `data_parallel`: the logged losses are the mean over its ranks (reading is then a
  /// collective every rank must join). `read_every_step`: read in add().
  StepRecord(bool clipping, DataParallelGroup* data_parallel, bool read_every_step);

  void add(std::int64_t iteration, const MethodLosses& losses, const torch::Tensor& grad_norm,
           bool skipped);
  /// Reads every queued step (one transfer) into the window and the recent losses. A
  /// non-finite loss, or a non-finite gradient norm of a step that was taken, throws
  /// TrainingDiverged naming the iteration and what the user has left (checkpoint_note).
  void read();
  /// Counts a step's images and time into the window.
  void count(const StepReport& step);

  const TrainWindow& window() const { return window_; }
  void clear_window() { window_.clear(); }
  /// The loss terms of the last kRecentSteps steps read, oldest first.
  const std::deque<LossTerms>& recent() const { return recent_; }
  bool clipping() const { return clipping_; }

  /// What a divergence message says the user has left ("No checkpoint had been written yet",
  /// "The last good checkpoint is … (kept)"); kept current by the trainer.
  std::string checkpoint_note = "No checkpoint had been written yet";

  /// What every divergence says: the iteration, the cause, and what the user has left.
  static std::string diverged_message(std::int64_t iteration, const std::string& cause,
                                      const std::string& checkpoint_note);

 private:
  [[noreturn]] void throw_diverged(std::int64_t iteration, const std::string& cause) const;

  bool clipping_;
  DataParallelGroup* data_parallel_;
  bool read_every_step_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> rows_;
  std::vector<std::pair<std::int64_t, bool>> pending_;  // iteration, skipped
  TrainWindow window_;
  std::deque<LossTerms> recent_;
};

// ---- The hooks -------------------------------------------------------------------------------

/// A single process's stop request (Ctrl-C, SIGTERM): the loop ends before the next step.
class StopRequestHook : public TrainHook {
 public:
  explicit StopRequestHook(std::function<bool()> requested) : requested_(std::move(requested)) {}
  std::optional<TrainStatus> stop_before_step(const TrainProgress& progress) override;

 private:
  std::function<bool()> requested_;
};

/// A data-parallel group's agreement after every step: every rank must take the same steps, so
/// the ranks agree on the training time (the slowest rank's: the schedule's learning rate and
/// the time budget read it) and on a stop request (any rank's: Ctrl-C reaches one rank or
/// all), and the loop ends on the agreed request.
class RankAgreementHook : public TrainHook {
 public:
  RankAgreementHook(DataParallelGroup& group, std::function<bool()> requested)
      : group_(group), requested_(std::move(requested)) {}
  std::optional<TrainStatus> stop_before_step(const TrainProgress& progress) override;
  void after_step(const StepReport& step, TrainProgress& progress) override;

 private:
  DataParallelGroup& group_;
  std::function<bool()> requested_;
  bool stop_agreed_ = false;
};

/// runtime.time_limit_minutes: the loop ends once the training time reaches it (0 = none).
class TimeBudgetHook : public TrainHook {
 public:
  explicit TimeBudgetHook(double limit_seconds) : limit_seconds_(limit_seconds) {}
  std::optional<TrainStatus> stop_before_step(const TrainProgress& progress) override;

 private:
  double limit_seconds_;
};

/// What a log period reports besides the window.
struct LogSchedule {
  std::int64_t every_iters = 1;  ///< runtime.log_every_iters
  std::int64_t total_iters = 0;  ///< the last iteration is always logged
  std::int64_t iters_per_epoch = 1;
  double total_epochs = 0;
  double time_limit_seconds = 0;
  int world_size = 1;
};

/// Counts every step into the record's window and, every log period and at the last
/// iteration, reads the record and writes the period to the log.
class LoggingHook : public TrainHook {
 public:
  /// `loss_scale`: fp16's current loss scale (null: not scaled).
  LoggingHook(TrainingLog& log, StepRecord& record, LogSchedule schedule,
              std::function<double()> loss_scale)
      : log_(log), record_(record), schedule_(schedule), loss_scale_(std::move(loss_scale)) {}
  void after_step(const StepReport& step, TrainProgress& progress) override;

 private:
  TrainingLog& log_;
  StepRecord& record_;
  LogSchedule schedule_;
  std::function<double()> loss_scale_;
};

/// Calls `save` every `every_iters` iterations (0 = never) before the last one (the trainer
/// saves the last itself, with the final weights).
class CheckpointHook : public TrainHook {
 public:
  CheckpointHook(std::int64_t every_iters, std::int64_t total_iters, std::function<void()> save)
      : every_iters_(every_iters), total_iters_(total_iters), save_(std::move(save)) {}
  void after_step(const StepReport& step, TrainProgress& progress) override;

 private:
  std::int64_t every_iters_, total_iters_;
  std::function<void()> save_;
};

/// Every `every_iters` iterations (0 = never) before the last one (evaluated by the trainer
/// after training): `read_losses` on every rank (in a group reading them is a collective), then
/// `evaluate` with the iteration where there is one (rank 0; null on the others).
class EvaluationHook : public TrainHook {
 public:
  EvaluationHook(std::int64_t every_iters, std::int64_t total_iters,
                 std::function<void()> read_losses, std::function<void(std::int64_t)> evaluate)
      : every_iters_(every_iters),
        total_iters_(total_iters),
        read_losses_(std::move(read_losses)),
        evaluate_(std::move(evaluate)) {}
  void after_step(const StepReport& step, TrainProgress& progress) override;

 private:
  std::int64_t every_iters_, total_iters_;
  std::function<void()> read_losses_;
  std::function<void(std::int64_t)> evaluate_;
};

}  // namespace centermask
