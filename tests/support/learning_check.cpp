#include "support/learning_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numeric>
#include <vector>

#include "centermask/engine/trainer.h"
#include "support/test_paths.h"
#include "support/train_fixtures.h"

namespace centermask::testing {

SyntheticDatasetOptions learning_split(int image_size, int train, int val) {
  SyntheticDatasetOptions options;
  options.style = SyntheticStyle::kFlat;
  options.image_size = image_size;
  options.min_objects = 1;
  options.max_objects = 4;
  options.min_visible_fraction = 0.4;
  options.min_extent = 0.3;
  options.max_extent = 0.6;
  options.num_train = train;
  options.num_val = val;
  options.seed = 7;
  return options;
}

void expect_learns(const LearningCase& c, const SyntheticDatasetOptions& split) {
  TempDir dir;
  generate_synthetic_dataset(dir / "data", split);
  const std::string data = (dir / "data").string();
  const TrainConfig config = load_train_config(
      test_data_dir() / "learning" / (c.config + ".yaml"),
      {"data.train_json=" + data + "/train.json", "data.train_images=" + data + "/train",
       "data.val_json=" + data + "/val.json", "data.val_images=" + data + "/val",
       "runtime.seed=0"});
  const TrainOutcome outcome = train(config, dir / "run", {});
  ASSERT_EQ(outcome.status, TrainStatus::kFinished);

  std::vector<double> losses;
  for (const auto& [iteration, loss] : logged_losses(dir / "run" / "log.jsonl"))
    losses.push_back(loss);
  ASSERT_GE(losses.size(), 10u);
  const double last = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5;
  const double ratio = last / losses.front();
  const double ap50 = metrics_stat(dir / "run", "segm", "AP50");
  // Printed on every run, so that CI's log shows how far each method is from its floor.
  std::cout << c.config << ": " << outcome.iteration << " iterations in " << outcome.train_seconds
            << " s, mask AP " << outcome.mask_ap << " (floor " << c.min_mask_ap << "), box AP "
            << outcome.box_ap << ", mask AP50 " << ap50 << " (floor " << c.min_mask_ap50
            << "), last/first loss " << ratio << " (ceiling " << c.max_loss_ratio << ")"
            << std::endl;
  EXPECT_TRUE(std::isfinite(ratio));
  EXPECT_LT(ratio, c.max_loss_ratio) << "first loss " << losses.front() << ", last " << last;
  EXPECT_GE(outcome.mask_ap, c.min_mask_ap);
  EXPECT_GE(ap50, c.min_mask_ap50);
}

}  // namespace centermask::testing
