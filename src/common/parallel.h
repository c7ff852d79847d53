#pragma once
// A minimal parallel loop: indices are handed out one at a time to `num_threads` workers
// (the caller's thread is one of them), so uneven items balance themselves. The first
// exception thrown by any item stops the loop and is rethrown in the caller.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace centermask {

/// Worker count for `requested` (0 = all cores), never more than there are items.
inline int resolve_thread_count(int requested, std::size_t num_items) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int wanted = requested > 0 ? requested : cores;
  return static_cast<int>(
      std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(wanted), num_items)));
}

template <typename Fn>
void parallel_for(std::size_t num_items, int num_threads, const Fn& fn) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto worker = [&]() {
    try {
      for (std::size_t i = next++; i < num_items; i = next++) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = num_items;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < num_threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace centermask
