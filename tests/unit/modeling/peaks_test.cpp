// The fast CPU peak extraction against the tensor-op reference, on odd shapes and edge cases.

#include "modeling/ops/peaks.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace centermask {
namespace {

TEST(Peaks, FastPathEqualsTheReferenceOnRandomMaps) {
  torch::manual_seed(0);
  const std::vector<std::vector<std::int64_t>> shapes{
      {1, 1, 1, 1},   {2, 3, 7, 5},  {1, 80, 13, 17}, {3, 6, 32, 32},
      {1, 1, 1, 127}, {1, 4, 11, 9}, {2, 80, 40, 41}, {1, 2, 3, 8}};
  for (const auto& shape : shapes) {
    for (int k : {1, 7, 100}) {
      const torch::Tensor logits = torch::randn(shape);
      const HeatmapPeaks fast = top_k_peaks(logits, k);
      const HeatmapPeaks reference = top_k_peaks_reference(logits, k);
      ASSERT_EQ(fast.logit.sizes(), reference.logit.sizes());
      EXPECT_TRUE(torch::equal(fast.logit, reference.logit)) << shape << " k " << k;
      // Indices agree wherever the value is a real peak (past the last peak both pad).
      const torch::Tensor real = torch::isfinite(reference.logit);
      EXPECT_TRUE(torch::equal(fast.index.masked_select(real), reference.index.masked_select(real)))
          << shape << " k " << k;
    }
  }
}

TEST(Peaks, TiesGoToTheLowerIndexWhateverOrderTheRowsAreVisitedIn) {
  // Few distinct values: many equal peaks, also at the K-th place. The fast path visits rows
  // by their maxima; it must still keep the lowest indices among equal values.
  torch::manual_seed(4);
  for (const auto& shape : std::vector<std::vector<std::int64_t>>{{1, 5, 9, 11}, {2, 80, 16, 16}}) {
    const torch::Tensor logits = torch::randint(0, 4, shape).to(torch::kFloat);
    for (int k : {1, 10, 100}) {
      const HeatmapPeaks fast = top_k_peaks(logits, k);
      const torch::Tensor is_peak = logits == torch::max_pool2d(logits, 3, 1, 1);
      for (std::int64_t b = 0; b < shape[0]; ++b) {
        // Every peak, best first: higher value, then lower index.
        std::vector<std::pair<float, std::int64_t>> all;
        const torch::Tensor values = logits[b].reshape({-1}), peaks = is_peak[b].reshape({-1});
        for (std::int64_t i = 0; i < values.numel(); ++i)
          if (peaks[i].item<bool>()) all.emplace_back(values[i].item<float>(), i);
        std::stable_sort(all.begin(), all.end(),
                         [](const auto& x, const auto& y) { return x.first > y.first; });
        const std::int64_t kept = fast.logit.size(1);
        for (std::int64_t j = 0; j < kept && j < static_cast<std::int64_t>(all.size()); ++j) {
          EXPECT_EQ(fast.logit[b][j].item<float>(), all[static_cast<std::size_t>(j)].first);
          EXPECT_EQ(fast.index[b][j].item<std::int64_t>(), all[static_cast<std::size_t>(j)].second)
              << "image " << b << " rank " << j << " k " << k;
        }
      }
    }
  }
}

TEST(Peaks, OnlyLocalMaximaCountAndBordersHaveFewerNeighbours) {
  // 1 class, 3×4:   0 5 1 0 / 0 1 1 7 / 2 0 0 0: peaks 5, 7 and the corner 2.
  const torch::Tensor logits =
      torch::tensor({0.f, 5.f, 1.f, 0.f, 0.f, 1.f, 1.f, 7.f, 2.f, 0.f, 0.f, 0.f})
          .view({1, 1, 3, 4});
  const HeatmapPeaks peaks = top_k_peaks(logits, 5);
  EXPECT_EQ(peaks.logit[0][0].item<float>(), 7.f);
  EXPECT_EQ(peaks.index[0][0].item<std::int64_t>(), 7);
  EXPECT_EQ(peaks.logit[0][1].item<float>(), 5.f);
  EXPECT_EQ(peaks.index[0][1].item<std::int64_t>(), 1);
  EXPECT_EQ(peaks.logit[0][2].item<float>(), 2.f);
  EXPECT_EQ(peaks.index[0][2].item<std::int64_t>(), 8);
  EXPECT_TRUE(std::isinf(peaks.logit[0][3].item<float>()));
}

TEST(Peaks, APlateauKeepsEveryCellOfIt) {
  // Equal neighbours are all maxima of their windows, as with max-pool equality.
  const torch::Tensor logits = torch::tensor({3.f, 3.f, 0.f, 0.f}).view({1, 1, 2, 2});
  const HeatmapPeaks peaks = top_k_peaks(logits, 4);
  EXPECT_EQ(peaks.logit[0][0].item<float>(), 3.f);
  EXPECT_EQ(peaks.logit[0][1].item<float>(), 3.f);
  EXPECT_EQ(peaks.index[0][0].item<std::int64_t>(), 0);
  EXPECT_EQ(peaks.index[0][1].item<std::int64_t>(), 1);
}

}  // namespace
}  // namespace centermask
