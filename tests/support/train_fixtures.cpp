#include "support/train_fixtures.h"

#include <fmt/format.h>

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
