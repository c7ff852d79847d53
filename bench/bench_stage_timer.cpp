// What `centermask bench`'s stage times cost and how faithful they are on the real clock, as
// figures (the unit test checks the bookkeeping with a clock it advances itself):
//   * the cost of a ScopedStage with no recording alive (every inference pays it) and with one;
//   * a stage that sleeps S ms inside another: the inner one's reading minus S (the clock's
//     and the scheduler's overhead) and the outer one's exclusive remainder.
//   bench_stage_timer [--sleep-ms 20] [--scopes 1000000]

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "bench_timing.h"
#include "centermask/common/stage_timer.h"

int main(int argc, char** argv) {
  int sleep_ms = 20;
  int scopes = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--sleep-ms") == 0) sleep_ms = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--scopes") == 0) scopes = std::atoi(argv[i + 1]);
  }
  using centermask::ScopedStage;
  using centermask::StageRecording;

  const double unrecorded_ms = centermask::bench::median_ms(5, [&] {
    for (int i = 0; i < scopes; ++i) const ScopedStage stage("decode");
  });
  const double recorded_ms = centermask::bench::median_ms(5, [&] {
    StageRecording recording;
    for (int i = 0; i < scopes; ++i) const ScopedStage stage("decode");
  });
  fmt::print("ScopedStage without a recording: {:.2f} ns; with one: {:.1f} ns ({} scopes)\n",
             unrecorded_ms * 1e6 / scopes, recorded_ms * 1e6 / scopes, scopes);

  for (int round = 0; round < 3; ++round) {
    StageRecording recording;
    {
      const ScopedStage outer("outer");
      const ScopedStage inner("inner");
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    }
    double inner = 0, outer = 0;
    for (const auto& [name, ms] : recording.milliseconds()) (name == "inner" ? inner : outer) = ms;
    fmt::print(
        "sleep {} ms inside a nested stage: inner read {:.3f} ms (+{:.3f}), outer's own {:.4f} "
        "ms\n",
        sleep_ms, inner, inner - sleep_ms, outer);
  }
  return 0;
}
