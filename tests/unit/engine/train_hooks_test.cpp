// The training loop and each of its hooks alone: when the loop stops and why, which iterations
// checkpoint, evaluate and log, what the ranks agree on, and what the step record reads, sums
// and refuses. (The whole trainer is held to identical losses by the resume and data-parallel
// tests; these pin the pieces.)

#include "engine/train_hooks.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "support/test_paths.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

// A step that takes `seconds` of training time and reports one image.
std::function<StepReport(TrainProgress&)> fixed_step(double seconds, std::vector<int>* taken) {
  return [seconds, taken](TrainProgress& progress) {
    ++progress.iteration;
    progress.train_seconds += seconds;
    if (taken != nullptr) taken->push_back(static_cast<int>(progress.iteration));
    StepReport report;
    report.images = 1;
    report.step_seconds = seconds;
    return report;
  };
}

// Records what it was asked and when, and stops the loop before a given iteration.
class ProbeHook : public TrainHook {
 public:
  ProbeHook(std::vector<std::string>* calls, std::string name, std::int64_t stop_before,
            TrainStatus status)
      : calls_(calls), name_(std::move(name)), stop_before_(stop_before), status_(status) {}
  std::optional<TrainStatus> stop_before_step(const TrainProgress& progress) override {
    if (progress.iteration + 1 == stop_before_) return status_;
    return std::nullopt;
  }
  void after_step(const StepReport&, TrainProgress& progress) override {
    calls_->push_back(name_ + "@" + std::to_string(progress.iteration));
  }

 private:
  std::vector<std::string>* calls_;
  std::string name_;
  std::int64_t stop_before_;
  TrainStatus status_;
};

TEST(TrainLoop, RunsEveryIterationAndCallsTheHooksInOrderAfterEachStep) {
  std::vector<std::string> calls;
  TrainHooks hooks;
  hooks.push_back(std::make_unique<ProbeHook>(&calls, "a", -1, TrainStatus::kInterrupted));
  hooks.push_back(std::make_unique<ProbeHook>(&calls, "b", -1, TrainStatus::kInterrupted));
  TrainProgress progress;
  progress.iteration = 1;  // a resumed run goes on from its checkpoint's iteration
  EXPECT_EQ(run_train_loop(progress, 3, fixed_step(1.0, nullptr), hooks), TrainStatus::kFinished);
  EXPECT_EQ(progress.iteration, 3);
  EXPECT_EQ(calls, (std::vector<std::string>{"a@2", "b@2", "a@3", "b@3"}));

  // Nothing left to do: no step, no hook.
  calls.clear();
  EXPECT_EQ(run_train_loop(progress, 3, fixed_step(1.0, nullptr), hooks), TrainStatus::kFinished);
  EXPECT_TRUE(calls.empty());
}

TEST(TrainLoop, TheFirstHookThatAsksToStopEndsTheLoopBeforeTheStep) {
  std::vector<std::string> calls;
  std::vector<int> taken;
  TrainHooks hooks;
  hooks.push_back(std::make_unique<ProbeHook>(&calls, "a", 3, TrainStatus::kInterrupted));
  hooks.push_back(std::make_unique<ProbeHook>(&calls, "b", 3, TrainStatus::kTimeLimit));
  TrainProgress progress;
  EXPECT_EQ(run_train_loop(progress, 10, fixed_step(1.0, &taken), hooks),
            TrainStatus::kInterrupted);
  EXPECT_EQ(taken, (std::vector<int>{1, 2}));
  EXPECT_EQ(progress.iteration, 2);
}

TEST(TrainHooks, TheTimeBudgetEndsTheLoopOnceTheTrainingTimeReachesIt) {
  TrainHooks hooks;
  hooks.push_back(std::make_unique<TimeBudgetHook>(4.0));
  TrainProgress progress;
  std::vector<int> taken;
  // 1.5 s a step: 1.5, 3.0 go on; 4.5 ≥ 4 stops before the fourth step.
  EXPECT_EQ(run_train_loop(progress, 100, fixed_step(1.5, &taken), hooks), TrainStatus::kTimeLimit);
  EXPECT_EQ(taken, (std::vector<int>{1, 2, 3}));

  // Exactly at the limit is the limit; 0 is no limit.
  TimeBudgetHook at_limit(3.0), none(0.0);
  TrainProgress three_seconds;
  three_seconds.train_seconds = 3.0;
  EXPECT_EQ(at_limit.stop_before_step(three_seconds), TrainStatus::kTimeLimit);
  three_seconds.train_seconds = 1e9;
  EXPECT_EQ(none.stop_before_step(three_seconds), std::nullopt);
}

TEST(TrainHooks, AStopRequestIsReportedBeforeAReachedTimeBudget) {
  bool requested = false;
  TrainHooks hooks;
  hooks.push_back(std::make_unique<StopRequestHook>([&] { return requested; }));
  hooks.push_back(std::make_unique<TimeBudgetHook>(2.0));
  TrainProgress progress;
  int steps = 0;
  const auto step = [&](TrainProgress& p) {
    ++steps;
    if (steps == 2) requested = true;  // Ctrl-C during the second step, which ends at 2 s
    return fixed_step(1.0, nullptr)(p);
  };
  EXPECT_EQ(run_train_loop(progress, 100, step, hooks), TrainStatus::kInterrupted);
  EXPECT_EQ(progress.iteration, 2);
}

TEST(TrainHooks, CheckpointsAndEvaluationsComeEveryNIterationsBeforeTheLast) {
  std::vector<std::int64_t> saved, evaluated;
  int reads = 0;
  TrainProgress progress;
  CheckpointHook checkpoint(3, 9, [&] { saved.push_back(progress.iteration); });
  EvaluationHook evaluation(
      4, 9, [&] { ++reads; }, [&](std::int64_t it) { evaluated.push_back(it); });
  CheckpointHook never_saves(0, 9, [&] { ADD_FAILURE() << "checkpoint_every_iters 0 saved"; });
  for (progress.iteration = 1; progress.iteration <= 9; ++progress.iteration) {
    checkpoint.after_step({}, progress);
    evaluation.after_step({}, progress);
    never_saves.after_step({}, progress);
  }
  // 9 itself is the trainer's final checkpoint and evaluation, not the hooks'.
  EXPECT_EQ(saved, (std::vector<std::int64_t>{3, 6}));
  EXPECT_EQ(evaluated, (std::vector<std::int64_t>{4, 8}));
  EXPECT_EQ(reads, 2);

  // A rank that does not evaluate still reads the losses (a collective) at the same iterations.
  reads = 0;
  EvaluationHook other_rank(
      4, 9, [&] { ++reads; }, nullptr);
  for (progress.iteration = 1; progress.iteration <= 9; ++progress.iteration)
    other_rank.after_step({}, progress);
  EXPECT_EQ(reads, 2);
}

// A group of two whose other rank reports fixed values.
class TwoRanks : public DataParallelGroup {
 public:
  TwoRanks(double other_seconds, double other_stop)
      : DataParallelGroup(0, 2), other_{other_seconds, other_stop} {}
  void broadcast_weights(torch::nn::Module&) override {}
  void average_gradients(const std::vector<torch::Tensor>&) override {}
  void average_over_ranks(torch::Tensor& values, const char*) override {
    values = (values + other_losses) / 2;
  }
  std::vector<double> max_over_ranks(const std::vector<double>& values, const char*) override {
    std::vector<double> out(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) out[i] = std::max(values[i], other_[i]);
    return out;
  }
  void barrier(const char*) override {}

  std::vector<double> other_;
  torch::Tensor other_losses;
};

TEST(TrainHooks, RanksAgreeOnTheSlowestClockAndOnAnyRanksStopRequest) {
  TwoRanks group(/*other_seconds=*/7.5, /*other_stop=*/0);
  RankAgreementHook agreement(group, [] { return false; });
  TrainProgress progress;
  progress.train_seconds = 5.0;
  agreement.after_step({}, progress);
  EXPECT_EQ(progress.train_seconds, 7.5);
  EXPECT_EQ(agreement.stop_before_step(progress), std::nullopt);

  // The other rank got the Ctrl-C: this one stops at the same iteration.
  group.other_ = {1.0, 1.0};
  agreement.after_step({}, progress);
  EXPECT_EQ(progress.train_seconds, 7.5);  // the slower clock is this rank's now
  EXPECT_EQ(agreement.stop_before_step(progress), TrainStatus::kInterrupted);
}

MethodLosses losses_of(double total, double a, double b) {
  MethodLosses losses;
  losses.total = torch::tensor(total);
  losses.terms = {{"a", torch::tensor(a)}, {"b", torch::tensor(b)}};
  return losses;
}

TEST(StepRecord, ReadsQueuedStepsIntoTheWindowAndKeepsTheLastHundred) {
  StepRecord record(/*clipping=*/true, nullptr, /*read_every_step=*/false);
  record.add(1, losses_of(3, 1, 2), torch::tensor(0.5), false);
  record.add(2, losses_of(5, 2, 3), torch::tensor(1.5), false);
  record.add(3, losses_of(9, 4, 5), torch::tensor(99.0), /*skipped=*/true);
  EXPECT_EQ(record.window().loss_sum.total, 0);  // queued, not read
  record.read();
  const TrainWindow& window = record.window();
  EXPECT_EQ(window.loss_sum.total, 17);
  ASSERT_EQ(window.loss_sum.terms.size(), 2u);
  EXPECT_EQ(window.loss_sum.terms[0], (std::pair<std::string, double>{"a", 7}));
  EXPECT_EQ(window.loss_sum.terms[1], (std::pair<std::string, double>{"b", 10}));
  // A skipped step's gradient norm is not averaged in.
  EXPECT_EQ(window.grad_norm, 2.0);
  EXPECT_EQ(window.grad_norm_steps, 2);
  EXPECT_EQ(window.skipped_steps, 1);

  for (int i = 4; i <= 150; ++i) record.add(i, losses_of(i, 0, 0), torch::Tensor(), false);
  record.read();
  ASSERT_EQ(record.recent().size(), StepRecord::kRecentSteps);
  EXPECT_EQ(record.recent().front().total, 51);
  EXPECT_EQ(record.recent().back().total, 150);
  record.clear_window();
  EXPECT_EQ(record.window().steps, 0);
  EXPECT_EQ(record.window().loss_sum.total, 0);
}

TEST(StepRecord, ANonFiniteLossOrGradientNormNamesTheIterationTheTermAndTheCheckpoint) {
  StepRecord record(/*clipping=*/true, nullptr, /*read_every_step=*/true);
  record.checkpoint_note = "The last good checkpoint is run/last.pt (kept)";
  record.add(1, losses_of(1, 0.5, 0.5), torch::tensor(1.0), false);
  const std::string loss_error = testing::error_message_of([&] {
    record.add(2, losses_of(std::nan(""), 0.5, std::nan("")), torch::tensor(1.0), false);
  });
  EXPECT_NE(loss_error.find("iteration 2: loss term 'b' is nan"), std::string::npos) << loss_error;
  EXPECT_NE(loss_error.find("The last good checkpoint is run/last.pt (kept)"), std::string::npos)
      << loss_error;

  const double inf = std::numeric_limits<double>::infinity();
  // fp16: an overflowing step is skipped, not a divergence.
  EXPECT_NO_THROW(record.add(3, losses_of(1, 0.5, 0.5), torch::tensor(inf), true));
  const std::string norm_error = testing::error_message_of(
      [&] { record.add(4, losses_of(1, 0.5, 0.5), torch::tensor(inf), false); });
  EXPECT_NE(norm_error.find("iteration 4: the gradient norm is inf"), std::string::npos)
      << norm_error;
}

TEST(StepRecord, InAGroupTheLoggedLossesAreTheMeanOverTheRanks) {
  TwoRanks group(0, 0);
  // total, a, b, grad norm of the other rank's step
  group.other_losses = torch::tensor({7.0F, 3.0F, 4.0F, 0.0F}).unsqueeze(0);
  StepRecord record(/*clipping=*/false, &group, /*read_every_step=*/true);
  record.add(1, losses_of(3, 1, 2), torch::Tensor(), false);
  EXPECT_EQ(record.window().loss_sum.total, 5);
  EXPECT_EQ(record.window().loss_sum.terms[0].second, 2);
  EXPECT_EQ(record.window().loss_sum.terms[1].second, 3);
}

TEST(TrainHooks, TheLogGetsEveryPeriodAndTheLastIterationWithThePeriodsMeanLoss) {
  testing::TempDir dir;
  StepRecord record(/*clipping=*/false, nullptr, /*read_every_step=*/false);
  {
    TrainingLog log(dir / "log.jsonl", -1, nullptr, false);
    LogSchedule schedule;
    schedule.every_iters = 2;
    schedule.total_iters = 5;
    schedule.iters_per_epoch = 5;
    LoggingHook logging(log, record, schedule, nullptr);
    TrainProgress progress;
    for (int it = 1; it <= 5; ++it) {
      record.add(it, losses_of(it, it, 0), torch::Tensor(), false);
      progress.iteration = it;
      StepReport step;
      step.images = 4;
      step.step_seconds = 0.25;
      logging.after_step(step, progress);
    }
  }
  // Periods 1–2, 3–4 and the last iteration alone: mean losses 1.5, 3.5, 5.
  const std::map<std::int64_t, double> losses = testing::logged_losses(dir / "log.jsonl");
  EXPECT_EQ(losses, (std::map<std::int64_t, double>{{2, 1.5}, {4, 3.5}, {5, 5.0}}));
  EXPECT_EQ(record.window().steps, 0);  // cleared after each period
}

}  // namespace
}  // namespace centermask
