// Training-step ops timed against the references they replace, forward + backward, side by
// side in one run: the fused focal loss vs the op-by-op one, and CenterNet's ResNet upsampling
// ConvTranspose2d(4, 2, 1) vs the same layer as one 3×3 convolution + pixel shuffle (exactly
// equal; the bench prints the difference). Prints figures; not a test.
//
// The second was measured and did not pay on the CPU (forward + backward ~2× slower: the 3×3
// form does 9/4 of the multiply-adds, zeros included), so the models keep ConvTranspose2d; it
// stays here so the comparison can be rerun on other machines.
//
//   bench_train_ops [--size 512] [--batch 4] [--classes 80] [--width 64] [--threads N] [--iters 10]
//                   [--blas-threads 1|0 (0 = OpenBLAS's default)]

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
#include "modeling/layers/losses.h"

namespace {

// ConvTranspose2d(in, out, 4, stride 2, padding 1)'s weight (in, out, 4, 4) as the 3×3
// convolution weight (4·out, in, 3, 3) whose pixel shuffle gives the same output: output pixel
// (2i + a, 2j + b) sees input rows i − 1..i + 1 through kernel taps 3 − 2t + a (t the 3×3 tap;
// out of 0..3 means zero, the padded slot 4).
torch::Tensor deconv_as_conv3x3_weight(const torch::Tensor& transposed_weight) {
  const std::int64_t in = transposed_weight.size(0), out = transposed_weight.size(1);
  const torch::Tensor taps = torch::tensor({3, 1, 4, 4, 2, 0}, torch::kInt64);
  const torch::Tensor padded = torch::constant_pad_nd(transposed_weight, {0, 1, 0, 1});
  const torch::Tensor rows = padded.index_select(2, taps).view({in, out, 2, 3, 5});
  const torch::Tensor both = rows.index_select(4, taps).view({in, out, 2, 3, 2, 3});
  return both.permute({1, 2, 4, 0, 3, 5}).reshape({out * 4, in, 3, 3});
}

torch::Tensor deconv_by_conv_shuffle(const torch::Tensor& x, const torch::Tensor& weight) {
  return torch::pixel_shuffle(torch::conv2d(x, deconv_as_conv3x3_weight(weight), {}, 1, 1), 2);
}

using centermask::bench::median_ms;

}  // namespace

int main(int argc, char** argv) {
  int size = 512, batch = 4, classes = 80, width = 64, iters = 10, blas_thread_count = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (flag == "--size")
      size = value;
    else if (flag == "--batch")
      batch = value;
    else if (flag == "--classes")
      classes = value;
    else if (flag == "--width")
      width = value;
    else if (flag == "--threads")
      threads = value;
    else if (flag == "--iters")
      iters = value;
    else if (flag == "--blas-threads")
      blas_thread_count = value;
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  torch::set_num_threads(threads);
  // As the trainer does (runtime.blas_threads): 0 leaves OpenBLAS's default of one per core.
  centermask::set_blas_threads(blas_thread_count);
  torch::manual_seed(0);
  fmt::print(
      "input {}x{}, batch {}, {} classes, ResNet width {}, {} threads, OpenBLAS threads {}\n", size,
      size, batch, classes, width, threads, centermask::blas_threads());

  // Focal loss on the (N, C, H/4, W/4) heatmap, with a realistic target: Gaussians are mostly
  // small values, a few exact 1s.
  const std::int64_t h = size / 4;
  const torch::Tensor logits = torch::randn({batch, classes, h, h}) * 2 - 2;
  torch::Tensor target = torch::rand({batch, classes, h, h}).pow(8);
  target.view({-1}).index_put_({torch::randint(target.numel(), {batch * 20})}, 1.0);
  for (const auto& [name, loss] : std::vector<std::pair<
           std::string, std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>>>{
           {"reference (op by op)", centermask::focal_heatmap_loss_reference},
           {"fused", centermask::focal_heatmap_loss}}) {
    torch::Tensor x = logits.clone().requires_grad_(true);
    const double ms = median_ms(iters, [&] {
      x.mutable_grad() = torch::Tensor();
      loss(x, target).backward();
    });
    fmt::print("focal loss {:22s} forward + backward {:8.2f} ms\n", name, ms);
  }

  // The three ResNet upsampling layers: 8w → 4w → 2w → w channels from stride 32 to 4.
  const int channels[4] = {8 * width, 4 * width, 2 * width, width};
  for (const bool fast : {false, true}) {
    double total = 0;
    std::string per_layer;
    for (int layer = 0; layer < 3; ++layer) {
      const std::int64_t side = size / 32 << layer;
      torch::Tensor x = torch::randn({batch, channels[layer], side, side}).requires_grad_(true);
      torch::Tensor weight =
          (torch::randn({channels[layer], channels[layer + 1], 4, 4}) * 0.01).requires_grad_(true);
      if (layer == 0 && fast) {
        torch::NoGradGuard no_grad;
        const double difference =
            (deconv_by_conv_shuffle(x, weight) - torch::conv_transpose2d(x, weight, {}, 2, 1))
                .abs()
                .max()
                .item<double>();
        fmt::print("  (conv3x3 + pixel shuffle vs ConvTranspose2d: max |difference| {:.2e})\n",
                   difference);
      }
      const double ms = median_ms(iters, [&] {
        weight.mutable_grad() = torch::Tensor();
        x.mutable_grad() = torch::Tensor();
        const torch::Tensor y =
            fast ? deconv_by_conv_shuffle(x, weight) : torch::conv_transpose2d(x, weight, {}, 2, 1);
        y.sum().backward();
      });
      total += ms;
      per_layer += fmt::format(" {:.2f}", ms);
    }
    fmt::print("upsampling {:22s} forward + backward {:8.2f} ms (layers:{})\n",
               fast ? "conv3x3 + pixel shuffle" : "ConvTranspose2d", total, per_layer);
  }
  return 0;
}
