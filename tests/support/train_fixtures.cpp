#include "support/train_fixtures.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <sstream>

#include "centermask/data/synthetic_dataset.h"

namespace centermask::testing {

TinyTrainingData::TinyTrainingData() {
  SyntheticDatasetOptions options;
  options.image_size = 64;
  options.num_train = 12;
  options.num_val = 4;
  options.min_objects = 1;
  options.max_objects = 3;
  options.seed = 11;
  generate_synthetic_dataset(dir_.path(), options);
}

std::string TinyTrainingData::config_yaml() const {
  const std::string root = dir_.path().string();
  return fmt::format(R"(model:
  backbone: resnet18
  backbone_width: 16
  centermask:
    head_channels: 16
    shape_size: 8
data:
  train_json: {0}/train.json
  train_images: {0}/train
  val_json: {0}/val.json
  val_images: {0}/val
  input_size: 64
  scale_min: 0.9
  scale_max: 1.1
  center_border_px: 16
  workers: 1
solver:
  lr: 1.0e-3
  batch_size: 4
  epochs: 2
  lr_step_epochs: []
test:
  input_size: 64
  batch_size: 4
runtime:
  threads: 1
  checkpoint_every_iters: 2
  log_every_iters: 1
)",
                     root);
}

TrainConfig TinyTrainingData::config(const std::vector<std::string>& overrides) const {
  return parse_train_config(config_yaml(), "tiny.yaml", overrides);
}

double metrics_stat(const std::filesystem::path& run_dir, const std::string& section,
                    const std::string& stat) {
  const std::string text = read_text(run_dir / "metrics.json");
  const std::size_t at = text.find("\"" + section + "\":{");
  EXPECT_NE(at, std::string::npos) << section << " in " << text;
  const std::size_t value = text.find("\"" + stat + "\":", at);
  EXPECT_NE(value, std::string::npos) << stat << " in " << text;
  if (at == std::string::npos || value == std::string::npos) return -2;
  return std::stod(text.substr(value + stat.size() + 3));
}

void expect_outcome_is_the_written_evaluation(const std::filesystem::path& run_dir, double mask_ap,
                                              double box_ap) {
  EXPECT_GE(mask_ap, 0.0);
  EXPECT_LE(mask_ap, 1.0);
  EXPECT_GE(box_ap, 0.0);
  EXPECT_LE(box_ap, 1.0);
  EXPECT_EQ(mask_ap, metrics_stat(run_dir, "segm", "AP"));
  EXPECT_EQ(box_ap, metrics_stat(run_dir, "bbox", "AP"));
  const std::string log = read_text(run_dir / "log.jsonl");
  const std::size_t eval = log.rfind("{\"type\":\"eval\"");
  ASSERT_NE(eval, std::string::npos) << "no evaluation in the log";
  const std::string segm_ap = "\"segm\":{\"AP\":";
  const std::size_t at = log.find(segm_ap, eval);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(std::stod(log.substr(at + segm_ap.size())), mask_ap);
}

std::map<std::int64_t, double> logged_losses(const std::filesystem::path& log_path) {
  std::map<std::int64_t, double> losses;
  std::istringstream in(read_text(log_path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"type\":\"train\"") == std::string::npos) continue;
    const std::size_t iter = line.find("\"iter\":");
    const std::size_t loss = line.find("\"loss\":");
    losses[std::stoll(line.substr(iter + 7))] = std::stod(line.substr(loss + 7));
  }
  return losses;
}

}  // namespace centermask::testing
