// Stage timing for `centermask bench`: stages are listed in the order they are entered, a
// nested stage's time is not counted in its parent, repeated stages add up, the synchronise
// hook runs at every boundary, and nothing is recorded without a recording on the thread.

#include "centermask/common/stage_timer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace centermask {
namespace {

double stage_ms(const StageRecording& recording, const std::string& name) {
  for (const auto& [stage, ms] : recording.milliseconds())
    if (stage == name) return ms;
  return -1;
}

TEST(StageTimer, NestedStagesAreExclusiveAndListedInEntryOrder) {
  int synchronised = 0;
  StageRecording recording([&] { ++synchronised; });
  {
    const ScopedStage outer("decode");
    {
      const ScopedStage inner("nms");
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
    }
  }
  {
    const ScopedStage again("nms");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(recording.milliseconds().size(), 2u);
  EXPECT_EQ(recording.milliseconds()[0].first, "decode");
  EXPECT_EQ(recording.milliseconds()[1].first, "nms");
  EXPECT_GE(stage_ms(recording, "nms"), 65.0);  // both entries, summed
  // The 60 ms spent inside "nms" is not "decode"'s: only its own bookkeeping remains.
  EXPECT_LT(stage_ms(recording, "decode"), 30.0);
  EXPECT_GE(stage_ms(recording, "decode"), 0.0);
  EXPECT_EQ(synchronised, 6);  // on entering and leaving each of the three scopes
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
