#include "centermask/structures/rle.h"

#include <gtest/gtest.h>

#include <random>

#include "support/bitmap.h"

namespace centermask {
namespace {

using testing::Bitmap;

Rle encode(const Bitmap& b) {
  return rle_encode(b.pixels.data(), b.height, b.width, static_cast<std::size_t>(b.width));
}

Bitmap decode(const Rle& r) {
  Bitmap b{r.height, r.width,
           std::vector<std::uint8_t>(static_cast<std::size_t>(r.num_pixels()), 7)};
  rle_decode(r, b.pixels.data(), static_cast<std::size_t>(r.width));
  return b;
}

// Odd shapes that hit the edge paths: single pixels, one row, one column, primes.
const std::vector<std::pair<int, int>> kShapes = {{1, 1},  {1, 13},  {13, 1},  {13, 7},
                                                  {7, 13}, {127, 3}, {31, 64}, {64, 31}};

TEST(Rle, EncodeDecodeRoundTripOnOddShapes) {
  std::mt19937 rng(1);
  for (auto [h, w] : kShapes) {
    for (double fill : {0.0, 0.1, 0.5, 1.0}) {
      const Bitmap b = testing::random_bitmap(h, w, rng, fill);
      const Rle r = encode(b);
      EXPECT_EQ(decode(r).pixels, b.pixels) << h << "x" << w << " fill " << fill;
      std::uint64_t total = 0;
      for (std::uint32_t c : r.counts) total += c;
      EXPECT_EQ(total, r.num_pixels());
    }
  }
}

TEST(Rle, StartsWithAZeroRunAndIsColumnMajor) {
  // 2x2 with only the bottom-left pixel set: column-major order is (0,0), (1,0), (0,1), (1,1).
  const std::uint8_t pixels[] = {0, 0, 1, 0};
  const Rle r = rle_encode(pixels, 2, 2, 2);
  EXPECT_EQ(r.counts, (std::vector<std::uint32_t>{1, 1, 2}));
  const std::uint8_t first_on[] = {1, 0, 0, 0};
  EXPECT_EQ(rle_encode(first_on, 2, 2, 2).counts, (std::vector<std::uint32_t>{0, 1, 3}));
}

TEST(Rle, ColumnMajorEncodeAgreesWithRowMajor) {
  std::mt19937 rng(2);
  const Bitmap b = testing::random_bitmap(13, 7, rng);
  std::vector<std::uint8_t> column_major;
  for (int x = 0; x < b.width; ++x)
    for (int y = 0; y < b.height; ++y) column_major.push_back(b.at(y, x));
  EXPECT_EQ(rle_encode_column_major(column_major.data(), 13, 7), encode(b));
}

TEST(Rle, AreaAndBoxMatchNaive) {
  std::mt19937 rng(3);
  for (auto [h, w] : kShapes) {
    for (int trial = 0; trial < 20; ++trial) {
      const Bitmap b = testing::random_bitmap(h, w, rng, 0.05 + 0.05 * (trial % 5));
      const Rle r = encode(b);
      EXPECT_EQ(rle_area(r), testing::naive_area(b));
      EXPECT_EQ(rle_bbox(r), testing::naive_bbox(b)) << h << "x" << w;
    }
  }
}

TEST(Rle, EmptyMask) {
  const Rle r = rle_empty(5, 4);
  EXPECT_EQ(r.counts, std::vector<std::uint32_t>{20});
  EXPECT_EQ(rle_area(r), 0u);
  EXPECT_EQ(rle_bbox(r), BoxXYWH{});
  EXPECT_EQ(rle_iou(r, r, false), 0.0);
  const Rle zero = rle_empty(0, 0);
  EXPECT_EQ(rle_area(zero), 0u);
  EXPECT_EQ(rle_bbox(zero), BoxXYWH{});
}

TEST(Rle, CrowdRegionFromReferenceData) {
  // The crowd region of tests/data/coco_eval/crowd_ignore: an 80x50 box at (100, 100).
  Rle r;
  r.height = 200;
  r.width = 200;
  r.counts.push_back(20100);
  for (int i = 0; i < 79; ++i) {
    r.counts.push_back(50);
    r.counts.push_back(150);
  }
  r.counts.push_back(50);
  r.counts.push_back(4050);
  EXPECT_EQ(rle_area(r), 4000u);
  EXPECT_EQ(rle_bbox(r), (BoxXYWH{100, 100, 80, 50}));
}

TEST(Rle, MergeMatchesNaiveUnionAndIntersection) {
  std::mt19937 rng(4);
  for (auto [h, w] : kShapes) {
    std::vector<Bitmap> bitmaps;
    std::vector<Rle> rles;
    for (int i = 0; i < 3; ++i) {
      bitmaps.push_back(testing::random_bitmap(h, w, rng, 0.4));
      rles.push_back(encode(bitmaps.back()));
    }
    Bitmap uni = bitmaps[0], inter = bitmaps[0];
    for (std::size_t p = 0; p < uni.pixels.size(); ++p) {
      for (int i = 1; i < 3; ++i) {
        uni.pixels[p] |= bitmaps[static_cast<std::size_t>(i)].pixels[p];
        inter.pixels[p] &= bitmaps[static_cast<std::size_t>(i)].pixels[p];
      }
    }
    EXPECT_EQ(rle_merge(rles, false), encode(uni)) << h << "x" << w;
    EXPECT_EQ(rle_merge(rles, true), encode(inter)) << h << "x" << w;
  }
}

TEST(Rle, MergeRejectsDifferentSizes) {
  std::vector<Rle> masks = {rle_empty(3, 4), rle_empty(4, 3)};
  EXPECT_THROW(rle_merge(masks, false), std::invalid_argument);
}

TEST(Rle, IouMatchesNaiveWithCrowdRule) {
  std::mt19937 rng(5);
  for (auto [h, w] : kShapes) {
    for (int trial = 0; trial < 10; ++trial) {
      const Bitmap a = testing::random_bitmap(h, w, rng, 0.3),
                   b = testing::random_bitmap(h, w, rng, 0.3);
      std::uint64_t inter = 0, uni = 0, area_a = 0;
      for (std::size_t p = 0; p < a.pixels.size(); ++p) {
        inter += a.pixels[p] & b.pixels[p];
        uni += a.pixels[p] | b.pixels[p];
        area_a += a.pixels[p];
      }
      const double want = inter ? static_cast<double>(inter) / static_cast<double>(uni) : 0.0;
      const double want_crowd =
          inter ? static_cast<double>(inter) / static_cast<double>(area_a) : 0.0;
      EXPECT_DOUBLE_EQ(rle_iou(encode(a), encode(b), false), want);
      EXPECT_DOUBLE_EQ(rle_iou(encode(a), encode(b), true), want_crowd);
    }
  }
}

TEST(Rle, IouMatrixLayoutIsDetectionsByGroundTruth) {
  std::mt19937 rng(6);
  std::vector<Rle> dts, gts;
  for (int i = 0; i < 3; ++i) dts.push_back(encode(testing::random_bitmap(9, 11, rng)));
  for (int i = 0; i < 2; ++i) gts.push_back(encode(testing::random_bitmap(9, 11, rng)));
  const std::vector<std::uint8_t> crowd = {0, 1};
  const std::vector<double> m = rle_iou_matrix(dts, gts, crowd);
  ASSERT_EQ(m.size(), 6u);
  for (std::size_t d = 0; d < 3; ++d)
    for (std::size_t g = 0; g < 2; ++g)
      EXPECT_DOUBLE_EQ(m[d * 2 + g], rle_iou(dts[d], gts[g], crowd[g] != 0));
  EXPECT_TRUE(rle_iou_matrix(dts, {}, {}).empty());
}

// The matrix walks foreground runs; rle_iou merges every run length (the reference): the
// same IoUs, bit for bit, on masks of odd sizes, sparse to full, empty masks, a whole-image
// mask and crowd regions.
TEST(Rle, IouMatrixAgreesWithPairwiseIouOnRandomMasks) {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 300; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 37), w = 1 + static_cast<int>(rng() % 29);
    std::vector<Rle> dts, gts;
    for (std::size_t i = 0, n = rng() % 6; i < n; ++i)
      dts.push_back(encode(testing::random_bitmap(h, w, rng, (rng() % 100) / 100.0, 0.9)));
    for (std::size_t i = 0, n = rng() % 5; i < n; ++i)
      gts.push_back(encode(testing::random_bitmap(h, w, rng, (rng() % 100) / 100.0, 0.9)));
    if (trial % 5 == 0) dts.push_back(rle_empty(h, w));
    if (trial % 7 == 0) {
      Rle full;
      full.height = h;
      full.width = w;
      full.counts = {0, static_cast<std::uint32_t>(h * w)};
      gts.push_back(full);
    }
    std::vector<std::uint8_t> crowd;
    for (std::size_t g = 0; g < gts.size(); ++g) crowd.push_back(rng() % 3 == 0 ? 1 : 0);
    const std::vector<double> m = rle_iou_matrix(dts, gts, crowd);
    ASSERT_EQ(m.size(), dts.size() * gts.size());
    for (std::size_t d = 0; d < dts.size(); ++d)
      for (std::size_t g = 0; g < gts.size(); ++g)
        ASSERT_EQ(m[d * gts.size() + g], rle_iou(dts[d], gts[g], crowd[g] != 0))
            << "trial " << trial << " detection " << d << " ground truth " << g;
  }
}

TEST(Rle, IouRejectsDifferentSizes) {
  EXPECT_THROW(rle_iou(rle_empty(2, 3), rle_empty(3, 2), false), std::invalid_argument);
}

TEST(Rle, RejectsMasksBeyondThirtyTwoBitCounts) {
  EXPECT_THROW(rle_empty(70000, 70000), std::invalid_argument);
  EXPECT_NO_THROW(rle_empty(60000, 60000));
}

TEST(Box, IouAndCrowdRule) {
  EXPECT_DOUBLE_EQ(box_iou({0, 0, 10, 10}, {5, 0, 10, 10}, false), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(box_iou({0, 0, 10, 10}, {5, 0, 10, 10}, true), 50.0 / 100.0);
  EXPECT_EQ(box_iou({0, 0, 10, 10}, {10, 0, 10, 10}, false), 0.0);  // touching is not overlapping
  EXPECT_EQ(box_iou({0, 0, 0, 0}, {0, 0, 10, 10}, false), 0.0);
}

}  // namespace
}  // namespace centermask
