#pragma once
// Synthetic COCO files shaped like the real ones (Python json.dump formatting, 2-decimal
// polygon coordinates, ~24 points per polygon, ~1% crowd RLE), for load and evaluation
// benchmarks at full-COCO scale without shipping COCO.

#include <cstdint>
#include <filesystem>
#include <string>

namespace centermask::bench {

struct SyntheticCocoSpec {
  int num_images = 118287;
  double instances_per_image = 7.0;
  int num_categories = 80;
  std::uint32_t seed = 1;
};

/// Writes a ground-truth instances JSON; returns the number of annotations.
std::size_t write_synthetic_ground_truth(const std::filesystem::path& path,
                                         const SyntheticCocoSpec& spec);

/// Writes a results JSON for `ground_truth_path`'s images: per image `detections_per_image`
/// detections with compressed-RLE masks, most of them jittered copies of ground truth.
std::size_t write_synthetic_results(const std::filesystem::path& ground_truth_path,
                                    const std::filesystem::path& path, int detections_per_image,
                                    std::uint32_t seed);

/// Peak resident set size of this process so far, in MiB.
double peak_rss_mib();

}  // namespace centermask::bench
