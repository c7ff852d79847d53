#pragma once
// Checkpoints: one file holding what is needed to predict (weights, the resolved config, the
// categories) and, for training checkpoints, to resume exactly (optimizer state, iteration,
// position in the data stream, RNG state). Written to a temporary file and renamed, so a crash
// or a full disk leaves the previous checkpoint intact.
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/engine/weight_average.h"

namespace centermask {

/// Where a run stands: enough to continue the same curve.
struct TrainProgress {
  std::int64_t iteration = 0;  ///< optimizer steps done
  std::int64_t epoch = 0;      ///< data stream position of the next batch
  std::int64_t batch_in_epoch = 0;
  double train_seconds = 0;  ///< training time so far (for time limits and ETA)
  /// fp16 training's loss scale and its finite steps in a row (engine/gradients.h); 0 = the
  /// run does not scale its loss.
  double loss_scale = 0;
  std::int64_t loss_scale_finite_steps = 0;
};

struct CheckpointContents {
  std::string config_yaml;               ///< the resolved config of the run
  std::vector<CocoCategory> categories;  ///< class index i = categories[i]
  TrainProgress progress;
  bool has_optimizer = false;
};

/// Writes a checkpoint atomically. `optimizer` may be null (a weights-only file for
/// deployment); `average`, the run's weight average, is saved beside the weights when given
/// (for resume). InputError naming the path when it cannot be written (disk full, ...).
void save_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const std::string& config_yaml,
                     const std::vector<CocoCategory>& categories, const TrainProgress& progress,
                     const WeightAverage* average = nullptr);

/// An opened checkpoint. Opening checks that the file is a complete checkpoint of ours;
/// InputError naming the file otherwise (truncated, another program's file, a folder).
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::filesystem::path& path);
  const CheckpointContents& contents() const { return contents_; }
  const std::filesystem::path& path() const { return path_; }
  /// Copies the weights into `model`. Every parameter and buffer must be present with its
  /// shape; InputError naming the first that is not (a checkpoint of another architecture).
  void load_model(torch::nn::Module& model) const;
  /// Restores the optimizer state (InputError when the checkpoint has none or it does not
  /// match the optimizer).
  void load_optimizer(torch::optim::Optimizer& optimizer) const;
  /// Restores the weight average saved with the checkpoint; false when it holds none (written
  /// with solver.ema_decay off). InputError when it does not fit the model.
  bool load_weight_average(WeightAverage& average) const;
  /// Restores the default CPU generator's state saved with the checkpoint.
  void restore_rng_state() const;

 private:
  std::filesystem::path path_;
  CheckpointContents contents_;
  mutable torch::serialize::InputArchive archive_;  ///< reading is not const in LibTorch
};

}  // namespace centermask
