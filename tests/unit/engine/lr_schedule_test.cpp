// The learning rate is a pure function of the iteration (and, for a time-limited cosine, of the
// training time): step and cosine schedules after a linear warm-up, with epochs converted
// through the iterations per epoch.

#include "centermask/engine/lr_schedule.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace centermask {
namespace {

TEST(LrSchedule, StepDividesAtTheGivenEpochs) {
  SolverConfig solver;
  solver.lr = 2.5e-4;
  solver.epochs = 130;
  solver.lr_step_epochs = {100, 120};
  const LrScheduleFunction schedule(solver, 10);
  EXPECT_EQ(schedule.total_iters(), 1300);
  EXPECT_DOUBLE_EQ(schedule.at(0), 2.5e-4);
  EXPECT_DOUBLE_EQ(schedule.at(999), 2.5e-4);
  EXPECT_DOUBLE_EQ(schedule.at(1000), 2.5e-5);
  EXPECT_DOUBLE_EQ(schedule.at(1199), 2.5e-5);
  EXPECT_NEAR(schedule.at(1200), 2.5e-6, 1e-18);
}

TEST(LrSchedule, WarmupRisesLinearlyFromTheFactor) {
  SolverConfig solver;
  solver.lr = 1.0;
  solver.epochs = 1;
  solver.lr_step_epochs = {};
  solver.warmup_iters = 10;
  solver.warmup_factor = 0.1;
  const LrScheduleFunction schedule(solver, 100);
  EXPECT_DOUBLE_EQ(schedule.at(0), 0.1);
  EXPECT_DOUBLE_EQ(schedule.at(5), 0.55);
  EXPECT_DOUBLE_EQ(schedule.at(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(99), 1.0);
}

TEST(LrSchedule, CosineFallsMonotonicallyToTheFloorAfterWarmup) {
  SolverConfig solver;
  solver.lr = 1.0;
  solver.epochs = 2.5;  // fractional epochs: 2.5 × 7 = 17.5 → 18 iterations
  solver.schedule = LrSchedule::kCosine;
  solver.min_lr_factor = 0.05;
  solver.warmup_iters = 3;
  solver.warmup_factor = 0.5;
  const LrScheduleFunction schedule(solver, 7);
  EXPECT_EQ(schedule.total_iters(), 18);
  EXPECT_DOUBLE_EQ(schedule.at(3), 1.0);
  for (int i = 4; i < 18; ++i) EXPECT_LT(schedule.at(i), schedule.at(i - 1)) << i;
  EXPECT_NEAR(schedule.at(18), 0.05, 1e-12);
  EXPECT_GT(schedule.at(17), 0.05);
  // Half way through the cosine part the rate is half way between base and floor.
  const LrScheduleFunction even(
      [] {
        SolverConfig s;
        s.lr = 1.0;
        s.epochs = 1;
        s.schedule = LrSchedule::kCosine;
        return s;
      }(),
      100);
  EXPECT_NEAR(even.at(50), 0.5, 1e-12);
}

TEST(LrSchedule, ATimeLimitedCosineFollowsTheLargerOfIterationAndTimeProgress) {
  SolverConfig solver;
  solver.lr = 1.0;
  solver.epochs = 10;  // 1000 iterations: far more than the budget allows on a slow machine
  solver.schedule = LrSchedule::kCosine;
  solver.schedule_length = ScheduleLength::kTimeLimit;
  solver.warmup_iters = 10;
  solver.warmup_factor = 0.5;
  const LrScheduleFunction schedule(solver, 100, /*time_budget_seconds=*/60);
  EXPECT_EQ(schedule.total_iters(), 1000);
  // Warm-up is by iteration whatever the clock says.
  EXPECT_DOUBLE_EQ(schedule.at(0, 30), 0.5);
  // Half the budget spent at iteration 100 (a slow machine): half way down the cosine.
  EXPECT_NEAR(schedule.at(100, 30), 0.5, 1e-12);
  // The budget spent: the floor, wherever the iterations are.
  EXPECT_NEAR(schedule.at(200, 60), 0.0, 1e-12);
  EXPECT_NEAR(schedule.at(200, 90), 0.0, 1e-12);
  // A fast machine that runs out of iterations first ends by iteration, as without a limit.
  SolverConfig by_epochs = solver;
  by_epochs.schedule_length = ScheduleLength::kEpochs;
  const LrScheduleFunction plain(by_epochs, 100);
  for (std::int64_t it : {250, 505, 999})
    EXPECT_DOUBLE_EQ(schedule.at(it, 1.0), plain.at(it)) << it;
  // Time alone moves it down monotonically at a fixed iteration.
  for (double t = 1; t <= 60; t += 1) EXPECT_LE(schedule.at(50, t), schedule.at(50, t - 1)) << t;
}

// epochs 0: no cap, so that a 20-minute recipe trains 20 minutes on 150 images as on 20,000;
// the cosine then follows the clock alone.
TEST(LrSchedule, WithNoEpochCapTheClockAloneEndsTheCosine) {
  SolverConfig solver;
  solver.lr = 1.0;
  solver.epochs = 0;
  solver.schedule = LrSchedule::kCosine;
  solver.schedule_length = ScheduleLength::kTimeLimit;
  solver.warmup_iters = 10;
  const LrScheduleFunction schedule(solver, /*iters_per_epoch=*/3, /*time_budget_seconds=*/60);
  EXPECT_FALSE(schedule.has_iteration_cap());
  EXPECT_EQ(schedule.total_iters(), LrScheduleFunction::kNoIterationCap);
  // Thousands of epochs of a 3-iteration dataset later, only the time moved the rate.
  EXPECT_NEAR(schedule.at(100000, 0.0), 1.0, 1e-6);
  EXPECT_NEAR(schedule.at(100000, 30), 0.5, 1e-6);
  EXPECT_NEAR(schedule.at(100000, 60), 0.0, 1e-12);
  solver.epochs = 2;
  EXPECT_TRUE(LrScheduleFunction(solver, 3, 60).has_iteration_cap());
}

TEST(LrSchedule, ATimeLimitedScheduleNeedsCosineAndABudget) {
  SolverConfig solver;
  solver.schedule_length = ScheduleLength::kTimeLimit;
  solver.schedule = LrSchedule::kStep;
  EXPECT_THROW(LrScheduleFunction(solver, 10, 60), std::invalid_argument);
  solver.schedule = LrSchedule::kCosine;
  EXPECT_THROW(LrScheduleFunction(solver, 10, 0), std::invalid_argument);
  EXPECT_NO_THROW(LrScheduleFunction(solver, 10, 60));
}

}  // namespace
}  // namespace centermask
