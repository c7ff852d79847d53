#pragma once
// Timing for the benchmark programs.

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace centermask::bench {

/// Median milliseconds of `fn` over `iters` runs after two warm-up runs.
inline double median_ms(int iters, const std::function<void()>& fn) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> times;
  for (int i = 0; i < iters + 2; ++i) {
    const auto start = Clock::now();
    fn();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (i >= 2) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace centermask::bench
