#include "centermask/data/loader.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "centermask/common/error.h"
#include "centermask/data/synthetic_dataset.h"
#include "centermask/modeling/methods/centermask/centermask_targets.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

// The batch's targets as CenterMask's encoder collated them (the loader does not look inside).
const CenterMaskBatchTargets& targets_of(const Batch& batch) {
  return dynamic_cast<const CenterMaskBatchTargets&>(*batch.targets);
}

class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    SyntheticDatasetOptions o;
    o.image_size = 72;
    o.num_train = 10;
    o.num_val = 0;
    o.seed = 3;
    generate_synthetic_dataset(dir_->path(), o);
  }
  static void TearDownTestSuite() { delete dir_; }

  std::shared_ptr<const TrainingSet> open_set() {
    auto ds = std::make_shared<const CocoDataset>(CocoDataset::load(dir_->path() / "train.json"));
    return TrainingSet::open(ds, dir_->path() / "train", {}, nullptr);
  }
  LoaderOptions training_options(int workers) {
    LoaderOptions o;
    o.batch_size = 3;
    o.workers = workers;
    o.seed = 42;
    o.augment.input_height = 64;
    o.augment.input_width = 96;  // not square: both axes exercised
    o.augment.center_border_px = 16;
    CenterMaskTargetOptions targets;
    targets.num_classes = static_cast<int>(synthetic_class_names().size());
    targets.max_objects = 16;
    o.target_encoder = std::make_shared<CenterMaskTargetEncoder>(targets);
    return o;
  }
  static std::vector<Batch> epoch(DataLoader& loader, std::int64_t e) {
    loader.start_epoch(e);
    std::vector<Batch> out;
    while (auto b = loader.next()) out.push_back(std::move(*b));
    return out;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* LoaderTest::dir_ = nullptr;

TEST_F(LoaderTest, SameBatchesForAnyWorkerCount) {
  DataLoader one(open_set(), training_options(1));
  DataLoader three(open_set(), training_options(3));
  const auto a = epoch(one, 2), b = epoch(three, 2);
  ASSERT_EQ(a.size(), 3u);  // 10 images, batches of 3, last partial batch dropped
  ASSERT_EQ(b.size(), 3u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].images, b[i].images) << i;
    EXPECT_EQ(targets_of(a[i]).heatmap, targets_of(b[i]).heatmap) << i;
    EXPECT_EQ(targets_of(a[i]).mask_pixels, targets_of(b[i]).mask_pixels) << i;
    EXPECT_EQ(targets_of(a[i]).center_index, targets_of(b[i]).center_index) << i;
    for (int j = 0; j < a[i].size; ++j)
      EXPECT_EQ(a[i].infos[static_cast<std::size_t>(j)].image_id,
                b[i].infos[static_cast<std::size_t>(j)].image_id);
  }
}

TEST_F(LoaderTest, ShardsTogetherSeeTheWholeBatchesImagesAndAugmentations) {
  // Batches of 4 in one process against 2 shards of 2: 10 images give 2 global batches.
  LoaderOptions whole_options = training_options(1);
  whole_options.batch_size = 4;
  DataLoader whole(open_set(), whole_options);
  std::vector<std::vector<Batch>> shards;
  for (int shard = 0; shard < 2; ++shard) {
    LoaderOptions o = training_options(2);
    o.batch_size = 2;
    o.shard_index = shard;
    o.shard_count = 2;
    DataLoader loader(open_set(), o);
    EXPECT_EQ(loader.batches_per_epoch(), whole.batches_per_epoch());
    shards.push_back(epoch(loader, 1));
  }
  const auto batches = epoch(whole, 1);
  ASSERT_EQ(batches.size(), 2u);
  const std::size_t image_floats = batches[0].images.size() / 4;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    for (int shard = 0; shard < 2; ++shard) {
      const Batch& part = shards[static_cast<std::size_t>(shard)][b];
      ASSERT_EQ(part.size, 2);
      for (int j = 0; j < 2; ++j) {
        const std::size_t in_whole = static_cast<std::size_t>(shard * 2 + j);
        EXPECT_EQ(part.infos[static_cast<std::size_t>(j)].image_id,
                  batches[b].infos[in_whole].image_id);
        EXPECT_TRUE(std::equal(
            part.images.begin() + static_cast<std::ptrdiff_t>(j * image_floats),
            part.images.begin() + static_cast<std::ptrdiff_t>((j + 1) * image_floats),
            batches[b].images.begin() + static_cast<std::ptrdiff_t>(in_whole * image_floats)))
            << "batch " << b << " shard " << shard << " image " << j;
        EXPECT_EQ(part.instances[static_cast<std::size_t>(j)].size(),
                  batches[b].instances[in_whole].size());
      }
    }
  }
  LoaderOptions bad = training_options(1);
  bad.shard_index = 2;
  bad.shard_count = 2;
  EXPECT_THROW(DataLoader(open_set(), bad), std::invalid_argument);
  bad.shard_index = 0;
  bad.batch_size = 6;  // 2 × 6 > 10 images
  const std::string message = testing::error_message_of([&] { DataLoader(open_set(), bad); });
  EXPECT_NE(message.find("fewer than one global batch of 12 (2 processes × 6)"), std::string::npos)
      << message;
}

TEST_F(LoaderTest, EpochsShuffleDifferentlyAndCollateConsistently) {
  DataLoader loader(open_set(), training_options(2));
  auto ids = [](const std::vector<Batch>& batches) {
    std::vector<std::int64_t> out;
    for (const Batch& b : batches)
      for (const ImageInfo& info : b.infos) out.push_back(info.image_id);
    return out;
  };
  const auto e0 = epoch(loader, 0), e1 = epoch(loader, 1), e0_again = epoch(loader, 0);
  EXPECT_EQ(ids(e0), ids(e0_again));
  EXPECT_NE(ids(e0), ids(e1));
  const std::vector<std::int64_t> e0_ids = ids(e0);
  EXPECT_EQ(std::set<std::int64_t>(e0_ids.begin(), e0_ids.end()).size(), 9u);  // no repeats
  for (const Batch& batch : e0) {
    const CenterMaskBatchTargets& b = targets_of(batch);
    const std::size_t n = static_cast<std::size_t>(batch.size), k = 16,
                      c = synthetic_class_names().size();
    EXPECT_EQ(b.size, batch.size);
    EXPECT_EQ(batch.images.size(), n * 3 * 64 * 96);
    EXPECT_EQ(b.output_height, 16);
    EXPECT_EQ(b.output_width, 24);
    EXPECT_EQ(b.heatmap.size(), n * c * 16 * 24);
    EXPECT_EQ(b.center_index.size(), n * k);
    EXPECT_EQ(b.mask_start.size(), n * k + 1);
    EXPECT_EQ(b.mask_start.back(), static_cast<std::int64_t>(b.mask_pixels.size()));
    for (std::size_t s = 0; s + 1 < b.mask_start.size(); ++s) {
      EXPECT_LE(b.mask_start[s], b.mask_start[s + 1]);
      if (!b.valid[s]) {
        EXPECT_EQ(b.mask_start[s], b.mask_start[s + 1]);
        continue;
      }
      const CellRegion& r = b.mask_region[s];
      const std::int64_t clipped =
          static_cast<std::int64_t>(std::min(r.x1, 24) - std::max(r.x0, 0)) *
          (std::min(r.y1, 16) - std::max(r.y0, 0));
      EXPECT_EQ(b.mask_start[s + 1] - b.mask_start[s], clipped);
      EXPECT_LT(b.center_index[s], 16 * 24);
    }
  }
  EXPECT_EQ(loader.stats().decode_failures, 0);
}

TEST_F(LoaderTest, StreamCrossesEpochsAndResumesWhereItLeftOff) {
  DataLoader loader(open_set(), training_options(2));
  const auto e0 = epoch(loader, 0), e1 = epoch(loader, 1);
  loader.start_stream(0);
  std::vector<Batch> stream;
  for (int i = 0; i < 7; ++i) stream.push_back(std::move(*loader.next()));
  ASSERT_EQ(stream[3].epoch, 1);
  EXPECT_EQ(stream[3].index, 0);
  EXPECT_EQ(stream[6].epoch, 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(stream[static_cast<std::size_t>(i)].images, e0[static_cast<std::size_t>(i)].images)
        << i;
    EXPECT_EQ(stream[static_cast<std::size_t>(3 + i)].images,
              e1[static_cast<std::size_t>(i)].images)
        << i;
  }
  // A resumed run (epoch 1, batch 2) continues exactly where the uninterrupted one was.
  DataLoader resumed(open_set(), training_options(1));
  resumed.start_stream(1, 2);
  const Batch first = std::move(*resumed.next());
  EXPECT_EQ(first.epoch, 1);
  EXPECT_EQ(first.index, 2);
  EXPECT_EQ(first.images, stream[5].images);
  EXPECT_EQ(targets_of(first).heatmap, targets_of(stream[5]).heatmap);
  EXPECT_EQ(std::move(*resumed.next()).images, stream[6].images);
}

TEST_F(LoaderTest, InferenceKeepsFileOrderAndTheLastPartialBatch) {
  LoaderOptions o = training_options(2);
  o.training = false;
  o.test_transform.input_height = 64;
  o.test_transform.input_width = 64;
  DataLoader loader(open_set(), o);
  const auto batches = epoch(loader, 0);
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches.back().size, 1);
  std::int64_t expected_id = 1;
  for (const Batch& b : batches) {
    EXPECT_EQ(b.targets, nullptr);
    for (const ImageInfo& info : b.infos) EXPECT_EQ(info.image_id, expected_id++);
    // Ground truth is given in input pixels (72-px images fitted into 64²), as in training.
    for (const auto& instances : b.instances) {
      for (const Instance& inst : instances) {
        EXPECT_GE(inst.box.x0, 0.0f);
        EXPECT_LE(inst.box.x1, 64.0f);
        EXPECT_LE(inst.box.y1, 64.0f);
        if (inst.has_mask) {
          EXPECT_LE(inst.mask.left + inst.mask.width, 64);
        }
      }
    }
  }
}

TEST_F(LoaderTest, ImageThatStopsDecodingIsReplacedAndCounted) {
  testing::TempDir copy;
  std::filesystem::copy(dir_->path(), copy.path(), std::filesystem::copy_options::recursive);
  auto ds = std::make_shared<const CocoDataset>(CocoDataset::load(copy / "train.json"));
  const auto set = TrainingSet::open(ds, copy / "train", {}, nullptr);
  DataLoader loader(set, training_options(2));
  const std::int64_t first_id = epoch(loader, 0)[0].infos[0].image_id;
  // Break the epoch's first image after the set was checked: the loader uses the next image
  // in the dataset instead, counts it, and the epoch completes.
  const std::string broken = fmt::format("{:06d}.png", first_id - 1);
  testing::write_text(copy / "train" / broken, "corrupted after the check");
  const auto batches = epoch(loader, 0);
  EXPECT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].infos[0].image_id, first_id % 10 + 1);
  const LoaderStats stats = loader.stats();
  EXPECT_EQ(stats.decode_failures, 1);
  EXPECT_NE(stats.first_decode_failure.find(broken), std::string::npos)
      << stats.first_decode_failure;

  LoaderOptions strict = training_options(2);
  strict.strict = true;
  DataLoader strict_loader(set, strict);
  strict_loader.start_epoch(0);
  EXPECT_THROW(strict_loader.next(), InputError);
}

TEST_F(LoaderTest, RejectsClassCountThatDiffersFromTheDataset) {
  LoaderOptions o = training_options(1);
  CenterMaskTargetOptions three_classes;
  three_classes.num_classes = 3;
  o.target_encoder = std::make_shared<CenterMaskTargetEncoder>(three_classes);
  EXPECT_THROW(DataLoader(open_set(), o), InputError);
}

}  // namespace
}  // namespace centermask
