#pragma once
// The learning check (tests/integration/learning_test.cpp, learning_slow_test.cpp): a method
// trained through the real engine on a small generated split must bring its loss down and reach
// a validation mask AP above a measured floor.

#include <ostream>
#include <string>

#include "centermask/data/synthetic_dataset.h"

namespace centermask::testing {

struct LearningCase {
  std::string config;  ///< tests/data/learning/<config>.yaml
  double min_mask_ap;  ///< the floor of the final validation mask AP
  /// The floor of its AP50: at these small sizes AP at the strict IoUs stays low for a long
  /// time while AP50 already shows whether objects are found and roughly segmented.
  double min_mask_ap50;
  double max_loss_ratio;  ///< ceiling of (mean of the last 5 logged losses) / first logged loss
};

inline std::ostream& operator<<(std::ostream& out, const LearningCase& c) {
  return out << c.config;
}

/// The split of `centermask synth --preset demo --size S --train N --val M --seed 7` (what
/// scripts/experiments/learning_floors.sh generates): flat-coloured shapes, 1–4 per picture,
/// 30–60 % of the side.
SyntheticDatasetOptions learning_split(int image_size, int train, int val);

/// Generates the split, trains the case's config on it with training seed 0, prints the
/// figures, and checks the loss ratio and the AP against the case's bounds.
void expect_learns(const LearningCase& c, const SyntheticDatasetOptions& split);

}  // namespace centermask::testing
