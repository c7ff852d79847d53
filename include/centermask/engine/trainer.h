#pragma once
// The training engine: a run directory, a config, and a loop of
//   batch (loader) → targets → forward → loss (checked finite) → backward → clip → step,
// with the learning rate from the schedule, JSON-lines logs, a live progress line, atomic
// checkpoints every N iterations and on Ctrl-C, periodic COCO evaluation, and exact resume.
//
// A run directory holds:
//   config.yaml      the resolved config (every key)
//   log.jsonl        one JSON object per log period ("type": "train") and evaluation ("eval")
//   last.pt          the latest checkpoint (weights, optimizer, iteration, data position, RNG)
//   model_final.pt   weights, config and categories when training finished (for predict)
//   metrics.json     the final evaluation (mask and box COCO stats)
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "centermask/engine/config.h"
#include "centermask/engine/distributed.h"
#include "centermask/engine/runtime.h"

namespace centermask {

struct TrainerOptions {
  bool resume = false;     ///< continue the run in the directory from its last.pt
  bool overwrite = false;  ///< replace a run already in the directory
  /// Where the progress line and messages go (the log file gets everything regardless).
  std::ostream* console = nullptr;
  /// Data-parallel training: this process's place in the group (joined by train()); unset =
  /// a single process. solver.batch_size is the global batch, split evenly over the ranks;
  /// rank 0 alone writes the run folder and evaluates, the others write nothing.
  std::optional<DistributedEnvironment> distributed;
};

enum class TrainStatus {
  kFinished,     ///< all iterations done, final checkpoint and evaluation written
  kInterrupted,  ///< Ctrl-C / SIGTERM: a checkpoint was written, resume with --resume
  kTimeLimit,    ///< runtime.time_limit_minutes reached: checkpoint and evaluation written
};

struct TrainOutcome {
  TrainStatus status = TrainStatus::kFinished;
  std::int64_t iteration = 0;
  double train_seconds = 0;
  /// The final evaluation, when there was a validation set and training did not stop on a
  /// signal: COCO AP (-1 where undefined).
  double mask_ap = -1;
  double box_ap = -1;
};

/// Loss became NaN or infinite: names the iteration and the term. The last checkpoint is kept.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Trains per `config` into `run_dir`. For a resume, pass the run's saved config (see
/// load_run_config). Throws InputError for unusable inputs (naming the file and field) and
/// TrainingDiverged.
TrainOutcome train(const TrainConfig& config, const std::filesystem::path& run_dir,
                   const TrainerOptions& options);

/// The config saved in a run directory, with overrides applied (e.g. more epochs).
TrainConfig load_run_config(const std::filesystem::path& run_dir,
                            const std::vector<std::string>& overrides);

/// Training mode for every module; with BatchNormMode::kFrozen every BatchNorm then back in
/// eval mode (running statistics, not updated), which makes the network's output for an image
/// independent of the rest of its batch.
void set_training_mode(torch::nn::Module& model, BatchNormMode batch_norm);

/// Asks a running train() to stop at the end of the current iteration and write a checkpoint.
/// Async-signal-safe: this is what the SIGINT/SIGTERM handler calls.
void request_training_stop();
/// Installs SIGINT and SIGTERM handlers that call request_training_stop (a second Ctrl-C
/// kills the program as usual).
void install_training_signal_handlers();

}  // namespace centermask
