#pragma once
// A tiny synthetic dataset and a config that trains on it in a second or two, for the tests
// of the training engine and the train / predict / test commands.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "centermask/engine/config.h"
#include "support/test_paths.h"

namespace centermask::testing {

class TinyTrainingData {
 public:
  /// 12 training and 4 validation images of 64 px with 1–3 objects of the 6 synthetic classes.
  TinyTrainingData();
  const std::filesystem::path& root() const { return dir_.path(); }
  /// YAML of a narrow (width 16) ResNet-18 config on this data: input 64, batch 4 (3 iterations per
  /// epoch), 2 epochs, constant lr, checkpoints every 2 iterations, a log line per iteration.
  std::string config_yaml() const;
  TrainConfig config(const std::vector<std::string>& overrides) const;

 private:
  TempDir dir_;
};

/// A stat of a run's metrics.json: section "segm" or "bbox", stat "AP", "AP50", ...
double metrics_stat(const std::filesystem::path& run_dir, const std::string& section,
                    const std::string& stat);

/// The final evaluation of a run is the one it wrote: the outcome's mask and box AP equal
/// metrics.json's and the log's last "eval" line's, and lie in [0, 1] (a model that has been
/// evaluated has an AP, however poor; -1 would mean no evaluation).
void expect_outcome_is_the_written_evaluation(const std::filesystem::path& run_dir, double mask_ap,
                                              double box_ap);

/// iteration → loss of the "train" lines of a run's log.jsonl.
std::map<std::int64_t, double> logged_losses(const std::filesystem::path& log_path);

}  // namespace centermask::testing
