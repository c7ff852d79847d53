// LibTorch matrix-product speed: shows whether an optimised BLAS is in use (Debian's
// LibTorch runs reference BLAS at ~6 GFLOP/s unless libopenblas0-pthread is installed).

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <thread>

int main() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(cores);  // Debian's LibTorch starts with one thread
  fmt::print("LibTorch {}, threads {}, CUDA {}\n", TORCH_VERSION, torch::get_num_threads(),
             torch::cuda::is_available() ? "available" : "not available");
  for (int n : {256, 512, 1024}) {
    torch::Tensor a = torch::randn({n, n}), b = torch::randn({n, n});
    torch::Tensor c = torch::mm(a, b);
    const int reps = n <= 512 ? 20 : 5;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) c = torch::mm(a, b);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("float32 {}x{} matmul: {:.1f} GFLOP/s\n", n, n, 2.0 * n * n * n * reps / s / 1e9);
  }
  return 0;
}
