// `centermask info`: what this build runs on (LibTorch version, devices, threads) and a quick
// matrix-product figure that shows whether an optimised BLAS is in use.

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.h"

namespace centermask::cli {

CommandRunner add_info_command(CLI::App& app) {
  app.add_subcommand("info", "show the build, LibTorch, threads and BLAS speed");
  return []() {
    // Debian's LibTorch starts with one thread; use every core as the trainer will.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    torch::set_num_threads(cores);
    std::printf("centermask %s\n", CENTERMASK_VERSION);
    std::printf("LibTorch %s, CUDA available: %s (%d devices)\n", TORCH_VERSION,
                torch::cuda::is_available() ? "yes" : "no",
                torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0);
    std::printf("threads: %d (cores: %d)\n", torch::get_num_threads(), cores);
    const int n = 512;
    torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
    torch::Tensor c = torch::mm(a, b);  // warm-up
    const int reps = 20;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) c = torch::mm(a, b);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double gflops = 2.0 * n * n * n * reps / seconds / 1e9;
    std::printf("float32 %dx%d matmul: %.1f GFLOP/s%s\n", n, n, gflops,
                gflops < 20 ? "  (slow: install libopenblas0-pthread, see scripts/install-deps.sh)" : "");
    return 0;
  };
}

}  // namespace centermask::cli
