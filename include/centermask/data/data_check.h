#pragma once
// `centermask check-data`'s findings on a COCO dataset before any training: what is in it
// (classes, instances per image, object sizes in the network's input pixels), what is wrong
// with it (missing, undecodable or mis-sized images; degenerate, tiny and crowd annotations),
// and which input size its objects need.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "centermask/data/coco_dataset.h"

namespace centermask {

struct DataCheckOptions {
  /// Input sides to measure object sizes at (the longer image side is scaled to it, as the
  /// loader's letterbox does); the first is the one the summary is about.
  std::vector<int> input_sizes = {256, 384, 512};
  /// Read only each image's header (size) instead of decoding it in full.
  bool headers_only = false;
  int threads = 0;
};

/// Bucketed counts with their labels ("<4 px", "4-8 px", ...).
struct Histogram {
  std::vector<std::string> labels;
  std::vector<std::int64_t> counts;
};

struct DataCheckReport {
  std::int64_t images = 0, annotations = 0;
  std::vector<std::pair<std::string, std::int64_t>> instances_per_class;
  Histogram instances_per_image;
  /// Images holding more than 100 objects: COCO evaluation keeps 100 detections per image,
  /// so even perfect predictions score below 1 there.
  std::int64_t images_over_100_objects = 0;
  std::int64_t crowd = 0;
  std::int64_t without_mask = 0;  ///< no usable segmentation
  std::int64_t degenerate = 0;    ///< zero mask area, or a box under 1 px
  /// sqrt(mask area) in input pixels, per input size (same order as the options').
  std::vector<Histogram> object_sides;
  std::vector<double> fraction_under_8px;  ///< per input size: objects under 2 stride-4 cells
  std::vector<std::string> missing_images, unreadable_images, size_mismatches;  ///< examples
  std::int64_t num_missing = 0, num_unreadable = 0, num_size_mismatches = 0;
  std::vector<std::string> load_warnings;  ///< the loader's counted problems
  int recommended_input_size = 0;
  std::string recommendation;
};

DataCheckReport check_dataset(const std::filesystem::path& gt_path,
                              const std::filesystem::path& images_folder,
                              const DataCheckOptions& options = {});

}  // namespace centermask
