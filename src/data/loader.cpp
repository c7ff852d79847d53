#include "centermask/data/loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <numeric>
#include <opencv2/core.hpp>
#include <stdexcept>

#include "centermask/common/error.h"
#include "centermask/common/random.h"
#include "common/parallel.h"

namespace centermask {

// A batch under construction. Samples of batch b go to slot b % slots; a slot is reused only
// after the consumer took its previous batch.
struct DataLoader::Slot {
  std::int64_t batch_index = -1;
  int remaining = 0;
  bool ready = false;
  Batch batch;
  std::vector<std::unique_ptr<SampleTargets>> targets;  // the method's, collated at the end
  LoaderStats stats;  // per-batch counters, merged when the batch is handed out
};

namespace {
constexpr std::uint64_t kOrderStream = 0x6F72646572ull;  // "order": the epoch permutation's stream
}

DataLoader::DataLoader(std::shared_ptr<const TrainingSet> set, LoaderOptions options)
    : set_(std::move(set)), options_(std::move(options)) {
  if (options_.batch_size <= 0)
    throw InputError(fmt::format("loader: batch size {} must be > 0", options_.batch_size));
  if (!options_.training && options_.test_transform.keep_resolution)
    throw InputError(
        "loader: keep_resolution inputs differ in size per image; predict them one by one");
  if (set_->size() == 0) throw InputError("loader: the dataset has no usable images");
  if (options_.shard_count < 1 || options_.shard_index < 0 ||
      options_.shard_index >= options_.shard_count)
    throw std::invalid_argument(
        fmt::format("loader: shard {} of {}", options_.shard_index, options_.shard_count));
  if (!options_.training && options_.shard_count != 1)
    throw std::invalid_argument("loader: only training data is sharded");
  if (options_.training && static_cast<std::int64_t>(set_->size()) < global_batch_size())
    throw InputError(
        options_.shard_count == 1
            ? fmt::format("loader: {} usable images is fewer than one batch of {}", set_->size(),
                          options_.batch_size)
            : fmt::format("loader: {} usable images is fewer than one global batch of {} ({} "
                          "processes × {})",
                          set_->size(), global_batch_size(), options_.shard_count,
                          options_.batch_size));
  if (options_.training && !options_.target_encoder)
    throw std::invalid_argument("loader: training needs the method's target encoder");
  if (options_.training &&
      static_cast<std::size_t>(options_.target_encoder->num_classes()) != set_->num_classes())
    throw InputError(fmt::format("loader: targets for {} classes, but the dataset has {}",
                                 options_.target_encoder->num_classes(), set_->num_classes()));
  workers_ = resolve_thread_count(options_.workers, static_cast<std::size_t>(1) << 20);
  const int slots = std::max(1, options_.prefetch_batches) + 1;
  for (int i = 0; i < slots; ++i) slots_.push_back(std::make_unique<Slot>());
}

DataLoader::~DataLoader() { stop_workers(); }

std::int64_t DataLoader::global_batch_size() const {
  return static_cast<std::int64_t>(options_.batch_size) * options_.shard_count;
}

std::int64_t DataLoader::epoch_samples() const {
  const auto n = static_cast<std::int64_t>(set_->size());
  return options_.training ? n / global_batch_size() * options_.batch_size : n;
}

std::int64_t DataLoader::epoch_position(std::int64_t shard_position) const {
  const std::int64_t b = options_.batch_size;
  return shard_position / b * global_batch_size() + options_.shard_index * b + shard_position % b;
}

std::int64_t DataLoader::batches_per_epoch() const {
  return (epoch_samples() + options_.batch_size - 1) / options_.batch_size;
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  stopping_ = false;
}

void DataLoader::start_epoch(std::int64_t epoch) { start(epoch, 0, true); }

void DataLoader::start_stream(std::int64_t epoch, std::int64_t batch_in_epoch) {
  if (!options_.training) throw std::logic_error("DataLoader::start_stream is for training");
  start(epoch, batch_in_epoch, false);
}

void DataLoader::start(std::int64_t epoch, std::int64_t batch_in_epoch, bool single_epoch) {
  stop_workers();
  if (batch_in_epoch < 0 || batch_in_epoch > batches_per_epoch())
    throw std::out_of_range(
        fmt::format("loader: batch {} of an epoch of {}", batch_in_epoch, batches_per_epoch()));
  first_epoch_ = epoch;
  first_sample_ = batch_in_epoch * options_.batch_size;
  stream_samples_ =
      single_epoch ? epoch_samples() - first_sample_ : std::numeric_limits<std::int64_t>::max();
  next_position_ = 0;
  next_batch_ = 0;
  failure_ = nullptr;
  orders_.clear();
  started_ = true;
  for (auto& slot : slots_) {
    slot->batch_index = -1;
    slot->ready = false;
  }
  for (int t = 0; t < workers_; ++t) threads_.emplace_back([this] { worker_loop(); });
}

std::shared_ptr<const std::vector<std::int64_t>> DataLoader::order_of(std::int64_t epoch) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& order = orders_[epoch];
  if (!order) {
    const auto n = static_cast<std::int64_t>(set_->size());
    auto fresh = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(n));
    std::iota(fresh->begin(), fresh->end(), 0);
    if (options_.training) {
      Rng rng(derive_seed(options_.seed, {static_cast<std::uint64_t>(epoch), kOrderStream}));
      for (std::int64_t i = n - 1; i > 0; --i)
        std::swap((*fresh)[static_cast<std::size_t>(i)],
                  (*fresh)[static_cast<std::size_t>(rng.uniform_int(0, i))]);
    }
    order = std::move(fresh);
    // Orders of epochs two behind are no longer needed by anyone.
    orders_.erase(orders_.begin(), orders_.lower_bound(epoch - 1));
  }
  return order;
}

void DataLoader::build_sample(std::int64_t epoch, std::int64_t position, Batch& batch, int slot,
                              std::unique_ptr<SampleTargets>* targets, LoaderStats* local) {
  const auto n = static_cast<std::int64_t>(set_->size());
  const std::int64_t wanted = (*order_of(epoch))[static_cast<std::size_t>(position)];
  LoadedImage loaded;
  // A file that stopped decoding since the set was checked is replaced by the next image, so
  // the epoch goes on; the substitution depends only on the data, not on thread timing.
  for (std::int64_t attempt = 0;; ++attempt) {
    try {
      loaded = set_->load(static_cast<std::size_t>((wanted + attempt) % n));
      break;
    } catch (const InputError& e) {
      // At inference every image must be predicted, so there it is an error naming the file.
      if (options_.strict || !options_.training || attempt + 1 >= n) throw;
      if (local->decode_failures++ == 0) local->first_decode_failure = e.what();
    }
  }

  TransformedSample sample;
  if (options_.training) {
    Rng rng(derive_seed(options_.seed,
                        {static_cast<std::uint64_t>(epoch), static_cast<std::uint64_t>(position)}));
    sample = transform_for_training(loaded.image, loaded.instances, options_.augment, rng);
    // Copy-paste draws after the sample's own augmentation, so that with it off (or not drawn)
    // every image is augmented exactly as without it.
    if (options_.augment.copy_paste_probability > 0 &&
        rng.bernoulli(options_.augment.copy_paste_probability)) {
      const auto other = static_cast<std::size_t>(rng.uniform_int(0, n - 1));
      try {
        const LoadedImage source_image = set_->load(other);
        const TransformedSample source = transform_for_training(
            source_image.image, source_image.instances, options_.augment, rng);
        std::vector<bool> chosen(source.instances.size());
        for (std::size_t i = 0; i < chosen.size(); ++i) chosen[i] = rng.bernoulli(0.5);
        paste_instances(sample, source, chosen);
      } catch (const InputError& e) {
        // The source is only extra objects: a file that stopped decoding is skipped.
        if (options_.strict) throw;
        if (local->decode_failures++ == 0) local->first_decode_failure = e.what();
      }
    }
    *targets = options_.target_encoder->encode(sample.instances, sample.info.input_height,
                                               sample.info.input_width);
    local->dropped_instances += sample.dropped_outside + (*targets)->dropped_objects();
  } else {
    sample = transform_for_test(loaded.image, options_.test_transform);
    // Ground truth in input pixels, as in training (Batch::instances has one meaning).
    for (const Instance& instance : loaded.instances) {
      Instance moved;
      if (warp_instance(instance, sample.info.original_to_input, sample.info.input_height,
                        sample.info.input_width, &moved))
        sample.instances.push_back(std::move(moved));
    }
  }
  sample.info.image_id = loaded.image_id;

  // Jitter, normalisation and HWC → CHW in one pass, straight into the batch buffer.
  const std::size_t plane =
      3 * static_cast<std::size_t>(batch.height) * static_cast<std::size_t>(batch.width);
  write_network_input(
      sample,
      options_.training ? options_.augment.normalization : options_.test_transform.normalization,
      batch.images.data() + static_cast<std::size_t>(slot) * plane);
  batch.infos[static_cast<std::size_t>(slot)] = sample.info;
  batch.instances[static_cast<std::size_t>(slot)] = std::move(sample.instances);
}

void DataLoader::worker_loop() {
  const std::int64_t total = stream_samples_;
  const std::int64_t per_epoch = epoch_samples();
  const auto ring = static_cast<std::int64_t>(slots_.size());
  const int bs = options_.batch_size;
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] {
      return stopping_ || failure_ || next_position_ >= total ||
             next_position_ / bs < next_batch_ + ring;
    });
    if (stopping_ || failure_ || next_position_ >= total) return;
    const std::int64_t position = next_position_++;
    const std::int64_t b = position / bs;  // stream-relative batch
    const std::int64_t absolute = first_sample_ + position;
    const std::int64_t epoch = first_epoch_ + absolute / per_epoch;
    const std::int64_t position_in_epoch = absolute % per_epoch;
    Slot& slot = *slots_[static_cast<std::size_t>(b % ring)];
    if (position % bs == 0) {  // first sample of its batch: (re)initialise the slot
      const int size = static_cast<int>(std::min<std::int64_t>(bs, total - b * bs));
      slot.batch_index = b;
      slot.ready = false;
      slot.remaining = size;
      slot.stats = {};
      Batch& batch = slot.batch;
      batch = Batch{};
      batch.epoch = epoch;
      batch.index = position_in_epoch / bs;
      batch.size = size;
      batch.height =
          options_.training ? options_.augment.input_height : options_.test_transform.input_height;
      batch.width =
          options_.training ? options_.augment.input_width : options_.test_transform.input_width;
      batch.images.resize(static_cast<std::size_t>(size) * 3 *
                          static_cast<std::size_t>(batch.height) *
                          static_cast<std::size_t>(batch.width));
      batch.infos.resize(static_cast<std::size_t>(size));
      batch.instances.resize(static_cast<std::size_t>(size));
      slot.targets.clear();
      slot.targets.resize(options_.training ? static_cast<std::size_t>(size) : 0);
    }
    lock.unlock();

    LoaderStats local;
    try {
      const int index_in_batch = static_cast<int>(position - b * bs);
      build_sample(
          epoch, epoch_position(position_in_epoch), slot.batch, index_in_batch,
          options_.training ? &slot.targets[static_cast<std::size_t>(index_in_batch)] : nullptr,
          &local);
    } catch (...) {
      lock.lock();
      if (!failure_) failure_ = std::current_exception();
      cv_.notify_all();
      return;
    }

    lock.lock();
    slot.stats.decode_failures += local.decode_failures;
    if (slot.stats.first_decode_failure.empty())
      slot.stats.first_decode_failure = local.first_decode_failure;
    slot.stats.dropped_instances += local.dropped_instances;
    if (--slot.remaining == 0) {
      lock.unlock();
      collate(slot);  // the last sample's worker collates, off the consumer's thread
      lock.lock();
      slot.ready = true;
      cv_.notify_all();
    }
  }
}

Batch make_training_batch(const std::vector<cv::Mat>& images,
                          const std::vector<std::vector<Instance>>& instances,
                          const TargetEncoder& target_encoder) {
  if (images.empty() || images.size() != instances.size())
    throw std::invalid_argument(
        "make_training_batch: one instance list per image, at least one image");
  Batch batch;
  batch.height = images.front().rows;
  batch.width = images.front().cols;
  const std::size_t plane = static_cast<std::size_t>(3 * batch.height * batch.width);
  batch.images.resize(images.size() * plane);
  TestTransformOptions test;
  test.input_height = batch.height;
  test.input_width = batch.width;
  std::vector<std::unique_ptr<SampleTargets>> targets;
  for (std::size_t i = 0; i < images.size(); ++i) {
    TransformedSample sample = transform_for_test(images[i], test);
    write_network_input(sample, test.normalization, batch.images.data() + i * plane);
    sample.info.image_id = static_cast<std::int64_t>(i);
    batch.infos.push_back(sample.info);
    batch.instances.push_back(instances[i]);
    targets.push_back(target_encoder.encode(instances[i], batch.height, batch.width));
  }
  batch.size = static_cast<int>(images.size());
  batch.targets = target_encoder.collate(targets);
  return batch;
}

void DataLoader::collate(Slot& slot) const {
  if (!options_.training || slot.targets.empty()) return;
  slot.batch.targets = options_.target_encoder->collate(slot.targets);
  slot.targets.clear();
}

std::optional<Batch> DataLoader::next() {
  if (!started_) start_epoch(0);
  const auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  if (next_batch_ * options_.batch_size >= stream_samples_) return std::nullopt;
  const auto ring = static_cast<std::int64_t>(slots_.size());
  Slot& slot = *slots_[static_cast<std::size_t>(next_batch_ % ring)];
  cv_.wait(lock, [&] { return failure_ || (slot.ready && slot.batch_index == next_batch_); });
  if (failure_) std::rethrow_exception(failure_);
  Batch batch = std::move(slot.batch);
  slot.ready = false;
  slot.batch_index = -1;
  ++next_batch_;
  stats_.batches += 1;
  stats_.samples += batch.size;
  if (stats_.decode_failures == 0 && slot.stats.decode_failures > 0)
    stats_.first_decode_failure = slot.stats.first_decode_failure;
  stats_.decode_failures += slot.stats.decode_failures;
  stats_.dropped_instances += slot.stats.dropped_instances;
  stats_.consumer_wait_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  lock.unlock();
  cv_.notify_all();
  return batch;
}

LoaderStats DataLoader::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace centermask
