// Stage timing for `centermask bench`: stages are listed in the order they are entered, a
// nested stage's time is not counted in its parent, repeated stages add up, the synchronise
// hook runs at every boundary, and nothing is recorded without a recording on the thread.
// The recording reads a clock the test advances itself, so every figure is exact and nothing
// depends on how busy the machine is (bench/bench_stage_timer shows the real clock's figures).

#include "centermask/common/stage_timer.h"

#include <gtest/gtest.h>

namespace centermask {
namespace {

double stage_ms(const StageRecording& recording, const std::string& name) {
  for (const auto& [stage, ms] : recording.milliseconds())
    if (stage == name) return ms;
  ADD_FAILURE() << "no stage " << name;
  return -1;
}

TEST(StageTimer, NestedStagesAreExclusiveAndListedInEntryOrder) {
  int synchronised = 0;
  double now_ms = 1000;  // the fake clock: only the test moves it
  StageRecording recording([&] { ++synchronised; }, [&] { return now_ms; });
  {
    const ScopedStage outer("decode");
    now_ms += 1.5;  // decode's own work before the nested stage
    {
      const ScopedStage inner("nms");
      now_ms += 60;
    }
    now_ms += 0.25;  // and after it
  }
  now_ms += 100;  // outside every stage: nobody's
  {
    const ScopedStage again("nms");
    now_ms += 5;
  }
  ASSERT_EQ(recording.milliseconds().size(), 2u);
  EXPECT_EQ(recording.milliseconds()[0].first, "decode");
  EXPECT_EQ(recording.milliseconds()[1].first, "nms");
  EXPECT_DOUBLE_EQ(stage_ms(recording, "nms"), 65.0);  // both entries, summed
  // The 60 ms spent inside "nms" is not "decode"'s: only its own 1.5 + 0.25 ms remain.
  EXPECT_DOUBLE_EQ(stage_ms(recording, "decode"), 1.75);
  EXPECT_EQ(synchronised, 6);  // on entering and leaving each of the three scopes
}

TEST(StageTimer, DeeplyNestedStagesAddUpToTheWallTime) {
  double now_ms = 0;
  StageRecording recording({}, [&] { return now_ms; });
  {
    const ScopedStage a("backbone");
    now_ms += 1;
    {
      const ScopedStage b("heads");
      now_ms += 2;
      {
        const ScopedStage c("decode");
        now_ms += 4;
      }
      now_ms += 8;
    }
    now_ms += 16;
  }
  EXPECT_DOUBLE_EQ(stage_ms(recording, "backbone"), 17.0);
  EXPECT_DOUBLE_EQ(stage_ms(recording, "heads"), 10.0);
  EXPECT_DOUBLE_EQ(stage_ms(recording, "decode"), 4.0);
  double sum = 0;
  for (const auto& [stage, ms] : recording.milliseconds()) sum += ms;
  EXPECT_DOUBLE_EQ(sum, now_ms);
}

TEST(StageTimer, NothingIsRecordedWithoutARecordingAndRecordingsNest) {
  { const ScopedStage unrecorded("backbone"); }  // no recording alive: a no-op
  StageRecording outer;
  {
    StageRecording inner;
    { const ScopedStage stage("heads"); }
    EXPECT_EQ(inner.milliseconds().size(), 1u);
  }
  { const ScopedStage stage("assembly"); }  // back to the outer recording
  ASSERT_EQ(outer.milliseconds().size(), 1u);
  EXPECT_EQ(outer.milliseconds()[0].first, "assembly");
}

}  // namespace
}  // namespace centermask
