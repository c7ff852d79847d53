#pragma once
// The batch loader: worker threads decode, augment and encode targets ahead of the training
// step (prefetch), and batches come out in order. Every sample draws its augmentation from its
// own random stream derived from (seed, epoch, position), and the epoch's order from (seed,
// epoch), so batches are identical for a seed whatever the number of workers.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/data/training_set.h"
#include "centermask/data/transforms.h"

namespace centermask {

struct LoaderOptions {
  int batch_size = 16;
  int workers = 0;           ///< 0 = all cores
  int prefetch_batches = 2;  ///< batches prepared ahead of the consumer
  std::uint64_t seed = 0;
  /// Training: shuffle, augment, encode targets, drop the last partial batch.
  /// Inference: file order, test transform, no targets, keep the last partial batch.
  bool training = true;
  TrainAugmentOptions augment;
  TestTransformOptions test_transform;
  /// Training: the method's encoder, run in the workers on each augmented image.
  std::shared_ptr<const TargetEncoder> target_encoder;
  /// When an image fails to decode mid-epoch in training: false = use the next image instead
  /// (counted, see LoaderStats), true = throw. At inference it always throws, naming the file.
  bool strict = false;
  /// Data-parallel training: this process is shard `shard_index` of `shard_count`. Each epoch's
  /// order is cut into global batches of batch_size · shard_count images and shard r takes the
  /// r-th run of batch_size from each, so the shards together see exactly the images (and the
  /// augmentations, drawn per epoch position) that one process with the global batch would.
  int shard_index = 0;
  int shard_count = 1;
};

/// One batch, collated into contiguous arrays ready to wrap as tensors.
struct Batch {
  std::int64_t epoch = 0;
  std::int64_t index = 0;                        ///< within the epoch
  int size = 0;                                  ///< N
  int height = 0;                                ///< input H
  int width = 0;                                 ///< input W
  std::vector<float> images;                     ///< (N, 3, H, W), normalised BGR
  std::vector<ImageInfo> infos;                  ///< (N)
  std::vector<std::vector<Instance>> instances;  ///< (N) ground truth in input pixels

  /// Training: the method's targets, collated by its encoder (null at inference).
  std::shared_ptr<const BatchTargets> targets;
};

/// A training batch from images in memory (all one size, used as the network input without
/// augmentation) and their instances in image pixels: for tests, benchmarks and small tools.
Batch make_training_batch(const std::vector<cv::Mat>& images,
                          const std::vector<std::vector<Instance>>& instances,
                          const TargetEncoder& target_encoder);

/// Counters of one loader's life, for the progress line and the benchmark.
struct LoaderStats {
  std::int64_t batches = 0;
  std::int64_t samples = 0;
  std::int64_t decode_failures = 0;  ///< images replaced by the next one
  std::string first_decode_failure;
  double consumer_wait_seconds = 0;    ///< time next() spent waiting: the training step's stall
  std::int64_t dropped_instances = 0;  ///< warped out of the input or too small for a cell
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const TrainingSet> set, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  std::int64_t batches_per_epoch() const;
  /// Starts (or restarts) one epoch; next() returns nullopt at its end. Whatever was in
  /// flight is abandoned.
  void start_epoch(std::int64_t epoch);
  /// Starts an endless stream at batch `batch_in_epoch` of `epoch` (training only): batches
  /// follow on into the next epochs with no pause at the boundaries, which a small dataset
  /// would otherwise feel at every epoch. Resuming a run at (epoch, batch) reproduces the batches
  /// an uninterrupted run would have had there.
  void start_stream(std::int64_t epoch, std::int64_t batch_in_epoch = 0);
  /// The next batch, or nullopt at the end of a start_epoch() epoch. Rethrows a worker's error.
  std::optional<Batch> next();
  LoaderStats stats() const;

 private:
  struct Slot;
  /// Builds sample `position` of `epoch` into slot `slot` of `batch` (a worker's job).
  void build_sample(std::int64_t epoch, std::int64_t position, Batch& batch, int slot,
                    std::unique_ptr<SampleTargets>* targets, LoaderStats* local_stats);
  void start(std::int64_t epoch, std::int64_t batch_in_epoch, bool single_epoch);
  /// The image order of an epoch (computed once, shared by the workers that need it).
  std::shared_ptr<const std::vector<std::int64_t>> order_of(std::int64_t epoch);
  void stop_workers();
  void worker_loop();
  void collate(Slot& slot) const;
  /// This shard's samples per epoch.
  std::int64_t epoch_samples() const;
  std::int64_t global_batch_size() const;
  /// The position in the epoch's order of this shard's `shard_position`-th sample.
  std::int64_t epoch_position(std::int64_t shard_position) const;

  std::shared_ptr<const TrainingSet> set_;
  LoaderOptions options_;
  int workers_ = 1;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::map<std::int64_t, std::shared_ptr<const std::vector<std::int64_t>>> orders_;  ///< by epoch
  bool started_ = false;
  std::int64_t first_epoch_ = 0;     ///< where the current stream started
  std::int64_t first_sample_ = 0;    ///< position within first_epoch_ of its first sample
  std::int64_t stream_samples_ = 0;  ///< samples in the stream (INT64_MAX when endless)
  std::int64_t next_position_ = 0;   ///< next sample (stream-relative) handed to a worker
  std::int64_t next_batch_ = 0;      ///< next batch (stream-relative) the consumer takes
  bool stopping_ = false;
  std::exception_ptr failure_;
  LoaderStats stats_;
};

}  // namespace centermask
