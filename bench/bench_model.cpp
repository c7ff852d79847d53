// Per-stage timing of CenterMask inference at batch 1 (and optionally a training step):
// preprocess, backbone, heads, decode (peaks), assembly (shapes, masks, mapping back), the
// shape head's last layer sparse vs dense, and peak memory. Prints figures; not a test.
//
//   bench_model [--backbone resnet18|dla34|...] [--width 64] [--size 512] [--iters 10] [--classes
//   80]
//               [--shape 32] [--threads N] [--train-batch B] [--saliency-stride 4|2|1]
//               [--dense-box 0|1] [--mask-neighbourhood R] [--head 0] [--skips 0|1]
//               [--out-channels C] [--blas-threads 1|0 (0 = OpenBLAS's default)]
//               [--profile FILE (with --train-batch: one more training step, op by op, as a
//               Chrome trace; scripts/profile_summary.py tabulates it)]

#include <fmt/format.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "centermask/common/blas_threads.h"
#include "centermask/data/loader.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/modeling/methods/centermask/centermask.h"

using namespace centermask;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string backbone = "resnet18", profile_path;
  int size = 512, iters = 10, classes = 80, shape = 32, train_batch = 0, width = 64;
  int saliency_stride = 4, dense_box = 0, mask_neighbourhood = 0, head = 0, skips = 0,
      out_channels = 0, blas_thread_count = 1;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--backbone")
      backbone = value;
    else if (flag == "--size")
      size = std::stoi(value);
    else if (flag == "--iters")
      iters = std::stoi(value);
    else if (flag == "--classes")
      classes = std::stoi(value);
    else if (flag == "--shape")
      shape = std::stoi(value);
    else if (flag == "--threads")
      threads = std::stoi(value);
    else if (flag == "--blas-threads")
      blas_thread_count = std::stoi(value);
    else if (flag == "--train-batch")
      train_batch = std::stoi(value);
    else if (flag == "--width")
      width = std::stoi(value);
    else if (flag == "--saliency-stride")
      saliency_stride = std::stoi(value);
    else if (flag == "--dense-box")
      dense_box = std::stoi(value);
    else if (flag == "--mask-neighbourhood")
      mask_neighbourhood = std::stoi(value);
    else if (flag == "--head")
      head = std::stoi(value);
    else if (flag == "--skips")
      skips = std::stoi(value);
    else if (flag == "--out-channels")
      out_channels = std::stoi(value);
    else if (flag == "--profile")
      profile_path = value;
    else {
      fmt::print(stderr, "unknown flag {}\n", flag);
      return 2;
    }
  }
  torch::set_num_threads(threads);
  // As the trainer does (runtime.blas_threads): 0 leaves OpenBLAS's default of one per core.
  set_blas_threads(blas_thread_count);
  torch::manual_seed(0);
  const double rss_start = peak_rss_mib();

  SyntheticDatasetOptions synth;
  synth.image_size = size;
  const SyntheticImage picture = render_synthetic_image(synth, 1, 0);

  CenterMaskOptions options;
  options.num_classes = classes;
  options.backbone.name = backbone;
  options.backbone.width = width;
  options.backbone.skip_connections = skips != 0;
  options.backbone.output_channels = out_channels;
  options.shape_size = shape;
  options.saliency_stride = saliency_stride;
  options.dense_box_loss = dense_box != 0;
  options.mask_neighbourhood = mask_neighbourhood;
  options.head_channels = head;
  CenterMask model(options);
  model->eval();
  {
    // An untrained size head predicts ~0-cell boxes, which would make assembly look free:
    // fix every box at 24×24 cells (96 px, a medium-to-large COCO object) so the 100 masks
    // cost what real detections cost.
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    params["size.2.weight"].zero_();
    params["size.2.bias"].fill_(24);
  }
  std::int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  fmt::print(
      "CenterMask {} (width {}{}, stride-4 map {} ch) at {}x{}, batch 1, {} classes, S = {}, "
      "saliency stride {}, head "
      "channels {}, {:.1f} M parameters, {} threads, OpenBLAS threads {}\n",
      backbone, width, skips ? ", skips" : "", out_channels > 0 ? out_channels : width, size, size,
      classes, shape, saliency_stride, options.resolved_head_channels(), parameters / 1e6, threads,
      blas_threads());

  TestTransformOptions test;
  test.input_height = size;
  test.input_width = size;
  std::vector<double> t_pre, t_backbone, t_heads, t_decode, t_predict, t_sparse, t_dense;
  std::size_t instances = 0;
  std::vector<float> input(static_cast<std::size_t>(3 * size * size));
  for (int it = 0; it < iters + 2; ++it) {  // the first two warm up
    torch::NoGradGuard no_grad;
    auto start = Clock::now();
    TransformedSample sample = transform_for_test(picture.image, test);
    write_network_input(sample, test.normalization, input.data());
    const torch::Tensor images = torch::from_blob(input.data(), {1, 3, size, size});
    const double pre = ms_since(start);
    start = Clock::now();
    const torch::Tensor features = model->features(images);
    const double back = ms_since(start);
    start = Clock::now();
    const CenterMaskOutputs out = model->heads(features, images);
    const double heads = ms_since(start);
    start = Clock::now();
    const CenterMaskPeaks peaks = model->find_peaks(out, 100);
    const double decode = ms_since(start);
    start = Clock::now();
    const auto result = model->predict(out, {sample.info});
    const double predict = ms_since(start);
    // The shape head's last layer: at the 100 peaks vs densely over every cell.
    const torch::Tensor image_index = torch::zeros({100}, torch::kInt64);
    start = Clock::now();
    const torch::Tensor sparse =
        model->shape_logits_at(out.shape_hidden, image_index, peaks.cell[0]);
    const double sparse_ms = ms_since(start);
    start = Clock::now();
    const torch::Tensor dense = model->dense_shape_logits(out.shape_hidden);
    const torch::Tensor dense_at =
        dense.reshape({1, shape * shape, -1}).index_select(2, peaks.cell[0]);
    const double dense_ms = ms_since(start);
    if (it < 2) continue;
    t_pre.push_back(pre);
    t_backbone.push_back(back);
    t_heads.push_back(heads);
    t_decode.push_back(decode);
    t_predict.push_back(predict - decode);  // predict() includes find_peaks()
    t_sparse.push_back(sparse_ms);
    t_dense.push_back(dense_ms);
    instances = result[0].size();
  }
  const double decode = median(t_decode), assembly = median(t_predict);
  const double total = median(t_pre) + median(t_backbone) + median(t_heads) + decode + assembly;
  fmt::print("median of {} runs (ms):\n", iters);
  fmt::print("  preprocess (warp + normalise)        {:8.2f}\n", median(t_pre));
  fmt::print("  backbone                             {:8.2f}\n", median(t_backbone));
  fmt::print("  heads (shape head's last layer not)  {:8.2f}\n", median(t_heads));
  fmt::print("  decode (sigmoid, 3x3 peaks, top-100) {:8.2f}\n", decode);
  fmt::print("  assembly ({} masks of 96 px)        {:8.2f}\n", instances, assembly);
  fmt::print("  total                                {:8.2f}  ({:.1f} images/s)\n", total,
             1000.0 / total);
  fmt::print(
      "shape head's last layer: sparse at 100 peaks {:.2f} ms, dense over {}x{} cells "
      "{:.2f} ms ({:.0f}x); dense output would hold {:.1f} MiB\n",
      median(t_sparse), size / 4, size / 4, median(t_dense),
      median(t_dense) / std::max(1e-6, median(t_sparse)),
      static_cast<double>(shape) * shape * (size / 4) * (size / 4) * 4 / 1048576.0);
  fmt::print("peak RSS {:.0f} MiB (at start {:.0f} MiB)\n", peak_rss_mib(), rss_start);

  if (train_batch > 0) {
    // One training step (forward, loss, backward, Adam) on a batch of the same picture.
    model->train();
    std::vector<cv::Mat> images(static_cast<std::size_t>(train_batch), picture.image);
    // The synthetic picture has its own classes; fold them into the model's so that any
    // --classes times a training step.
    std::vector<Instance> objects = synthetic_image_instances(picture);
    for (Instance& object : objects) object.class_index %= classes;
    std::vector<std::vector<Instance>> truth(static_cast<std::size_t>(train_batch), objects);
    const CenterMaskTargetOptions target_options = model->target_options(128);
    Batch batch = make_training_batch(images, truth, target_options);
    const CenterMaskTrainingTargets targets =
        make_training_targets(batch, torch::kCPU, mask_neighbourhood);
    const torch::Tensor inputs =
        torch::from_blob(batch.images.data(), {train_batch, 3, size, size});
    torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-4));
    std::vector<double> t_forward, t_loss, t_backward, t_step;
    for (int it = 0; it < std::max(3, iters / 2) + 1; ++it) {
      auto start = Clock::now();
      optimizer.zero_grad();
      const CenterMaskOutputs out = model->forward(inputs);
      const double forward = ms_since(start);
      start = Clock::now();
      const CenterMaskLosses losses = model->loss(out, targets);
      const double loss = ms_since(start);
      start = Clock::now();
      losses.total.backward();
      const double backward = ms_since(start);
      start = Clock::now();
      optimizer.step();
      const double step = ms_since(start);
      if (it == 0) continue;
      t_forward.push_back(forward);
      t_loss.push_back(loss);
      t_backward.push_back(backward);
      t_step.push_back(step);
    }
    const double all = median(t_forward) + median(t_loss) + median(t_backward) + median(t_step);
    fmt::print(
        "training step, batch {} ({} objects each): forward {:.1f} ms, loss {:.1f} ms, "
        "backward {:.1f} ms, Adam {:.1f} ms = {:.1f} ms ({:.2f} images/s)\n",
        train_batch, truth[0].size(), median(t_forward), median(t_loss), median(t_backward),
        median(t_step), all, 1000.0 * train_batch / all);
    fmt::print("peak RSS after training steps {:.0f} MiB\n", peak_rss_mib());
    if (!profile_path.empty()) {
      // One more step under LibTorch's profiler (its own overhead makes this step slower than
      // the timed ones: read the trace for shares, not totals).
      {
        torch::autograd::profiler::RecordProfile record(profile_path);
        optimizer.zero_grad();
        const CenterMaskOutputs out = model->forward(inputs);
        model->loss(out, targets).total.backward();
        optimizer.step();
      }
      fmt::print("profile of one training step written to {}\n", profile_path);
    }
  }
  return 0;
}
