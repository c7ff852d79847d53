#pragma once
// GPU tests. Such a test is named Suite.Cuda* (scripts/gpu_check.sh counts them by that name)
// and starts with CENTERMASK_CUDA_OR_SKIP(): without a GPU it skips, except where
// CENTERMASK_REQUIRE_CUDA=1 (set by scripts/gpu_check.sh): there a missing GPU is a failure, so
// a GPU log cannot look green with its CUDA tests skipped.

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cstdlib>
#include <string>

namespace centermask::testing {

inline bool cuda_required() {
  const char* value = std::getenv("CENTERMASK_REQUIRE_CUDA");
  return value != nullptr && std::string(value) == "1";
}

}  // namespace centermask::testing

#define CENTERMASK_CUDA_OR_SKIP()                                                        \
  do {                                                                                   \
    if (!torch::cuda::is_available()) {                                                  \
      if (::centermask::testing::cuda_required())                                        \
        FAIL() << "CENTERMASK_REQUIRE_CUDA=1 but LibTorch sees no CUDA device";          \
      GTEST_SKIP() << "no CUDA device (CENTERMASK_REQUIRE_CUDA=1 makes this a failure)"; \
    }                                                                                    \
  } while (false)
