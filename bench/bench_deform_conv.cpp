// The modulated deformable convolution (DCNv2) on the CPU against the plain 3×3 convolution it
// replaces in DLA-34's up path, side by side in one run, at the up path's shapes for a 512²
// input (64 channels at 128², 128 at 64², 256 at 32²), batch 1: forward (inference, no
// autograd) and forward + backward (training), for
//   conv       torch::conv2d (oneDNN), the plain layer;
//   dcn        our CPU kernel (sampling into columns, GEMM);
//   dcn-grid   the same op through grid_sample (the path other devices take).
// Offsets N(0, 1) cells, masks uniform. Prints median ms; not a test.
//
//   bench_deform_conv [--iters 10] [--threads N] [--batch 1] [--blas-threads 1|0]

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "bench_timing.h"
#include "centermask/common/blas_threads.h"
#include "centermask/modeling/deform_conv.h"

using centermask::bench::median_ms;

int main(int argc, char** argv) {
  int iters = 10, batch = 1, blas_thread_count = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (flag == "--iters")
      iters = value;
    else if (flag == "--threads")
      threads = value;
    else if (flag == "--batch")
      batch = value;
    else if (flag == "--blas-threads")
      blas_thread_count = value;
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  torch::set_num_threads(threads);
  centermask::set_blas_threads(blas_thread_count);
  fmt::print("threads {}, batch {}, median of {} runs (ms)\n", threads, batch, iters);
  fmt::print("{:>22} | {:>8} {:>8} {:>9} | {:>8} {:>8} {:>9}\n", "layer (C, side)", "conv", "dcn",
             "dcn-grid", "conv f+b", "dcn f+b", "grid f+b");
  torch::manual_seed(0);
  const centermask::DeformConvGeometry geometry{1, 1, 1, 1, 1, 1, 1, 1};
  for (const auto& [channels, side] :
       std::vector<std::pair<int, int>>{{64, 128}, {128, 64}, {256, 32}}) {
    const torch::Tensor x = torch::randn({batch, channels, side, side});
    const torch::Tensor weight = torch::randn({channels, channels, 3, 3}) * 0.05;
    const torch::Tensor bias = torch::zeros({channels});
    const torch::Tensor offset = torch::randn({batch, 18, side, side});
    const torch::Tensor mask = torch::rand({batch, 9, side, side});
    double forward[3], training[3];
    {
      torch::NoGradGuard no_grad;
      forward[0] = median_ms(iters, [&] { torch::conv2d(x, weight, bias, 1, 1); });
      forward[1] = median_ms(iters, [&] {
        centermask::modulated_deform_conv2d(x, offset, mask, weight, bias, geometry);
      });
      forward[2] = median_ms(iters, [&] {
        centermask::modulated_deform_conv2d_sampled(x, offset, mask, weight, bias, geometry);
      });
    }
    const auto leaf = [](const torch::Tensor& t) { return t.clone().requires_grad_(true); };
    torch::Tensor xg = leaf(x), wg = leaf(weight), bg = leaf(bias), og = leaf(offset),
                  mg = leaf(mask);
    training[0] = median_ms(iters, [&] { torch::conv2d(xg, wg, bg, 1, 1).sum().backward(); });
    training[1] = median_ms(iters, [&] {
      centermask::modulated_deform_conv2d(xg, og, mg, wg, bg, geometry).sum().backward();
    });
    training[2] = median_ms(iters, [&] {
      centermask::modulated_deform_conv2d_sampled(xg, og, mg, wg, bg, geometry).sum().backward();
    });
    fmt::print("{:>22} | {:8.2f} {:8.2f} {:9.2f} | {:8.2f} {:8.2f} {:9.2f}\n",
               fmt::format("{} ch, {}x{}", channels, side, side), forward[0], forward[1],
               forward[2], training[0], training[1], training[2]);
  }
  return 0;
}
