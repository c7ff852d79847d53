// The learning check at a size where AP says more (label slow): 128-px pictures, more
// iterations (tests/data/learning/*_large.yaml). Floors measured as learning_test.cpp's, with
// scripts/experiments/learning_floors.sh 10 "..." large.

#include <gtest/gtest.h>

#include "support/learning_check.h"

namespace centermask {
namespace {

using testing::LearningCase;

class LearningSlow : public ::testing::TestWithParam<LearningCase> {};

TEST_P(LearningSlow, LossFallsAndValidationMaskApClearsItsFloor) {
  testing::expect_learns(GetParam(), testing::learning_split(128, 256, 48));
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, LearningSlow,
                         ::testing::Values(LearningCase{"centermask_large", 0.0, 0.0, 1.0},
                                           LearningCase{"polarmask_large", 0.0, 0.0, 1.0},
                                           LearningCase{"centermask_fcos_large", 0.0, 0.0, 1.0}),
                         [](const ::testing::TestParamInfo<LearningCase>& param_info) {
                           return param_info.param.config;
                         });

}  // namespace
}  // namespace centermask
