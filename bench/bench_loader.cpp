// Throughput of the training data loader alone: decode + CenterNet augmentation + CenterMask
// targets + collation, at 512×512 and 256×256 inputs, with 1 and all workers. Also the cost
// of each stage on one thread, and (with --step-ms) how long a training step of that length
// would wait for data.
//
//   bench_loader [--images N] [--batch B] [--epochs E] [--step-ms MS] [--coco DIR]
//
// --coco DIR: also a real COCO folder (DIR/train.json + DIR/images), e.g. ../shared/data/coco_mini.

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "centermask/common/random.h"
#include "centermask/data/loader.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"

using namespace centermask;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Case {
  std::string name;
  std::shared_ptr<const TrainingSet> set;
  int input_size = 512;
};

void stage_breakdown(const Case& c) {
  TrainAugmentOptions augment;
  augment.input_height = augment.input_width = c.input_size;
  CenterMaskTargetOptions targets;
  targets.num_classes = static_cast<int>(c.set->num_classes());
  double decode = 0, transform = 0, encode = 0, write = 0;
  std::vector<float> input(3 * static_cast<std::size_t>(c.input_size) *
                           static_cast<std::size_t>(c.input_size));
  const std::size_t n = std::min<std::size_t>(c.set->size(), 32);
  for (std::size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    const LoadedImage loaded = c.set->load(i);
    decode += seconds_since(t0);
    Rng rng(i);
    t0 = Clock::now();
    const TransformedSample s =
        transform_for_training(loaded.image, loaded.instances, augment, rng);
    transform += seconds_since(t0);
    t0 = Clock::now();
    const CenterMaskTargets t =
        encode_centermask_targets(s.instances, s.info.input_height, s.info.input_width, targets);
    encode += seconds_since(t0);
    t0 = Clock::now();
    write_network_input(s, augment.normalization, input.data());
    write += seconds_since(t0);
  }
  const double k = 1000.0 / static_cast<double>(n);
  fmt::print(
      "  one thread, ms/image: decode+masks {:.2f}, warp {:.2f}, jitter+normalise {:.2f}, targets "
      "{:.2f} (total {:.2f})\n",
      decode * k, transform * k, write * k, encode * k, (decode + transform + write + encode) * k);
}

void throughput(const Case& c, int workers, int batch, int epochs, double step_ms) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.augment.input_height = o.augment.input_width = c.input_size;
  CenterMaskTargetOptions targets;
  targets.num_classes = static_cast<int>(c.set->num_classes());
  o.target_encoder = std::make_shared<CenterMaskTargetEncoder>(targets);
  DataLoader loader(c.set, o);
  // As training reads it: one endless stream. The first epoch warms the file cache and the
  // allocator and is not timed.
  loader.start_stream(0);
  for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    loader.next();
    if (step_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms));
  }
  const LoaderStats before = loader.stats();
  const auto start = Clock::now();
  std::int64_t images = 0;
  for (std::int64_t b = 0; b < epochs * loader.batches_per_epoch(); ++b) {
    images += loader.next()->size;
    if (step_ms > 0)
      std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(step_ms));
  }
  const double elapsed = seconds_since(start);
  const LoaderStats after = loader.stats();
  const double waited = after.consumer_wait_seconds - before.consumer_wait_seconds;
  if (step_ms > 0) {
    fmt::print(
        "  {} worker(s): {:.1f} images/s with a {:.0f} ms step; the step waited {:.1f}% of the "
        "time\n",
        workers, static_cast<double>(images) / elapsed, step_ms, 100.0 * waited / elapsed);
  } else {
    fmt::print("  {} worker(s): {:.1f} images/s ({:.1f} batches/s of {})\n", workers,
               static_cast<double>(images) / elapsed, static_cast<double>(images) / elapsed / batch,
               batch);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int images = 48, batch = 16, epochs = 3;
  double step_ms = 0;
  std::filesystem::path coco;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--images") && i + 1 < argc)
      images = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--epochs") && i + 1 < argc)
      epochs = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--step-ms") && i + 1 < argc)
      step_ms = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--coco") && i + 1 < argc)
      coco = argv[++i];
    else {
      fmt::print(stderr,
                 "usage: bench_loader [--images N] [--batch B] [--epochs E] [--step-ms MS] [--coco "
                 "DIR]\n");
      return 2;
    }
  }
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  fmt::print("bench_loader: {} cores, batch {}, {} timed epochs after one warm-up\n", cores, batch,
             epochs);
  const auto tmp = std::filesystem::temp_directory_path() /
                   fmt::format("centermask_bench_loader_{}", ::getpid());
  std::vector<Case> cases;
  for (int size : {512, 256}) {
    SyntheticDatasetOptions o;
    o.image_size = size;
    o.num_train = images;
    o.num_val = 0;
    o.seed = 1;
    const auto dir = tmp / fmt::format("synth{}", size);
    generate_synthetic_dataset(dir, o);
    auto ds = std::make_shared<const CocoDataset>(CocoDataset::load(dir / "train.json"));
    cases.push_back({fmt::format("synthetic {}px PNG → {}×{} input", size, size, size),
                     TrainingSet::open(ds, dir / "train", {}, nullptr), size});
  }
  if (!coco.empty()) {
    auto ds = std::make_shared<const CocoDataset>(CocoDataset::load(coco / "train.json"));
    cases.push_back({"COCO JPEG (" + coco.string() + ") → 512×512 input",
                     TrainingSet::open(ds, coco / "images", {}, nullptr), 512});
  }
  for (const Case& c : cases) {
    fmt::print("{} ({} images, {} instances, {} classes)\n", c.name, c.set->size(),
               c.set->num_instances(), c.set->num_classes());
    stage_breakdown(c);
    throughput(c, 1, batch, epochs, step_ms);
    if (cores > 1) throughput(c, static_cast<int>(cores), batch, epochs, step_ms);
  }
  std::filesystem::remove_all(tmp);
  return 0;
}
