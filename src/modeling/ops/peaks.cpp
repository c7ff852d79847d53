#include "modeling/ops/peaks.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "centermask/modeling/precision.h"

namespace centermask {

HeatmapPeaks top_k_peaks_reference(const torch::Tensor& logits, int k) {
  const std::int64_t n = logits.size(0);
  const torch::Tensor pooled = torch::max_pool2d(logits, 3, 1, 1);
  const torch::Tensor peaks =
      logits.masked_fill(logits != pooled, -std::numeric_limits<float>::infinity());
  const std::int64_t kept = std::min<std::int64_t>(k, logits[0].numel());
  auto [value, index] = peaks.reshape({n, -1}).topk(kept, 1);
  return {value, index};
}

namespace {

using Candidate = std::pair<float, std::int64_t>;  // (logit, flat index)

/// Orders candidates best first: higher logit, then lower index (a deterministic tie-break).
bool better(const Candidate& a, const Candidate& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

/// Pushes into a K-bounded min-heap (the worst kept candidate on top).
void offer(std::vector<Candidate>& heap, std::size_t k, const Candidate& c) {
  if (heap.size() < k) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end(), better);
  } else if (better(c, heap.front())) {
    std::pop_heap(heap.begin(), heap.end(), better);
    heap.back() = c;
    std::push_heap(heap.begin(), heap.end(), better);
  }
}

/// The largest value of a row, in 8 independent lanes (the compiler keeps them in one vector
/// register; a single running maximum would be one long dependency chain).
float row_maximum(const float* row, int w) {
  float lane[8];
  const int head = std::min(w, 8);
  for (int i = 0; i < 8; ++i) lane[i] = row[i < head ? i : 0];
  int x = head;
  for (; x + 8 <= w; x += 8)
    for (int i = 0; i < 8; ++i) lane[i] = lane[i] > row[x + i] ? lane[i] : row[x + i];
  float best = lane[0];
  for (int i = 1; i < 8; ++i) best = std::max(best, lane[i]);
  for (; x < w; ++x) best = std::max(best, row[x]);
  return best;
}

/// The peaks of planes [first, last) of one image into a K-bounded heap. Rows are visited
/// best first — by their maximum, which bounds every peak in the row — so the heap fills with
/// high peaks at once and the first row whose maximum cannot beat the K-th kept ends the scan
/// (an untrained network's flat heatmap at 512² otherwise had most rows beat a low K-th and
/// checked cell by cell).
void scan_planes(const float* map, std::int64_t first, std::int64_t last, int h, int w,
                 std::size_t k, std::vector<Candidate>& heap) {
  const std::int64_t rows = (last - first) * h;
  // (row maximum, row index within the chunk); a max-heap, equal maxima lower row first.
  std::vector<std::pair<float, std::int64_t>> order(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r)
    order[static_cast<std::size_t>(r)] = {row_maximum(map + (first * h + r) * w, w), r};
  const auto visit_later = [](const std::pair<float, std::int64_t>& a,
                              const std::pair<float, std::int64_t>& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  };
  std::make_heap(order.begin(), order.end(), visit_later);
  for (auto end = order.end(); end != order.begin(); --end) {
    std::pop_heap(order.begin(), end, visit_later);
    const auto [row_best, r] = *(end - 1);
    // Strictly below the K-th: nothing here or in any later row can enter. (An equal value
    // still can, with a lower index: ties go to the lower index, as in the reference.)
    if (heap.size() == k && row_best < heap.front().first) break;
    const std::int64_t c = first + r / h;
    const int y = static_cast<int>(r % h);
    const float* plane = map + c * h * w;
    const float* row = plane + y * w;
    const int y_lo = std::max(0, y - 1), y_hi = std::min(h - 1, y + 1);
    for (int x = 0; x < w; ++x) {
      const Candidate candidate{row[x], (c * h + y) * w + x};
      // Most cells lose to the K-th best kept so far: one comparison, no neighbourhood.
      if (heap.size() == k && !better(candidate, heap.front())) continue;
      const int x_lo = std::max(0, x - 1), x_hi = std::min(w - 1, x + 1);
      bool peak = true;
      for (int yy = y_lo; yy <= y_hi && peak; ++yy)
        for (int xx = x_lo; xx <= x_hi; ++xx)
          if (plane[yy * w + xx] > candidate.first) {
            peak = false;
            break;
          }
      if (peak) offer(heap, k, candidate);
    }
  }
}

}  // namespace

HeatmapPeaks top_k_peaks(const torch::Tensor& logits, int k) {
  // Reduced-precision heatmaps (bf16 / fp16 inference) widen exactly to fp32 for the scan.
  if (logits.device().is_cpu() && is_reduced_precision(logits.scalar_type()))
    return top_k_peaks(logits.to(torch::kFloat32), k);
  if (!logits.device().is_cpu() || logits.scalar_type() != torch::kFloat32)
    return top_k_peaks_reference(logits, k);
  const torch::Tensor map = logits.contiguous();
  const std::int64_t n = map.size(0), c = map.size(1);
  const int h = static_cast<int>(map.size(2)), w = static_cast<int>(map.size(3));
  const std::int64_t kept = std::min<std::int64_t>(k, c * h * w);
  torch::Tensor value = torch::empty({n, kept}, torch::kFloat32);
  torch::Tensor index = torch::empty({n, kept}, torch::kInt64);
  for (std::int64_t b = 0; b < n; ++b) {
    const float* data = map.data_ptr<float>() + b * c * h * w;
    // Each chunk of classes keeps its own top K; merged afterwards.
    const std::int64_t threads = std::max(1, at::get_num_threads());
    const std::int64_t grain = std::max<std::int64_t>(1, (c + threads - 1) / threads);
    std::vector<std::vector<Candidate>> chunks(static_cast<std::size_t>((c + grain - 1) / grain));
    at::parallel_for(
        0, static_cast<std::int64_t>(chunks.size()), 1, [&](std::int64_t lo, std::int64_t hi) {
          for (std::int64_t chunk = lo; chunk < hi; ++chunk)
            scan_planes(data, chunk * grain, std::min(c, (chunk + 1) * grain), h, w,
                        static_cast<std::size_t>(kept), chunks[static_cast<std::size_t>(chunk)]);
        });
    std::vector<Candidate> all;
    for (const auto& chunk : chunks) all.insert(all.end(), chunk.begin(), chunk.end());
    std::sort(all.begin(), all.end(), better);
    // Fewer peaks than K (a tiny map): pad as the reference does, with −inf.
    float* v = value.data_ptr<float>() + b * kept;
    std::int64_t* i = index.data_ptr<std::int64_t>() + b * kept;
    for (std::int64_t j = 0; j < kept; ++j) {
      const bool real = j < static_cast<std::int64_t>(all.size());
      v[j] =
          real ? all[static_cast<std::size_t>(j)].first : -std::numeric_limits<float>::infinity();
      i[j] = real ? all[static_cast<std::size_t>(j)].second : 0;
    }
  }
  return {value, index};
}

}  // namespace centermask
