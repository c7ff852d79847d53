#pragma once
// Detections in COCO's result format: a JSON list of {image_id, category_id, score, bbox,
// segmentation (compressed RLE)}. Loading follows pycocotools' loadRes so that scores agree,
// including its rule for a result's area (see CocoResults::load).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "centermask/common/uninitialized_allocator.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/structures/box.h"
#include "centermask/structures/rle.h"

namespace centermask {

struct CocoDetection {
  std::int64_t image_id = 0;
  std::int64_t category_id = 0;
  double score = 0;
  BoxXYWH bbox;
  /// The area COCOeval uses for area ranges: w*h of the box when the results carry boxes,
  /// else the mask's pixel count (pycocotools loadRes).
  double area = 0;
  std::int32_t image_index = -1;  ///< into the ground truth's images()
  std::int32_t class_index = -1;  ///< the ground truth's contiguous class
  bool has_mask = false;
  std::int32_t mask_height = 0;  ///< the image's size, which the mask must have
  std::int32_t mask_width = 0;
  std::uint64_t mask_first = 0;  ///< the mask's run lengths in CocoResults' one array
  std::uint32_t mask_length = 0;
};

class CocoResults {
 public:
  /// Reads a results JSON and checks it against the ground truth: every image_id and
  /// category_id must exist there, scores must be finite, masks must have their image's size
  /// and decode. Throws InputError naming the file and the record. An empty list is valid.
  ///
  /// Area rule (pycocotools loadRes): if the first result has a non-empty "bbox", every
  /// result's area is bbox width * height; otherwise the mask's area, and a missing bbox is
  /// the mask's box.
  static CocoResults load(const std::filesystem::path& json_path, const CocoDataset& ground_truth);
  static CocoResults parse(std::string_view json_text, const std::string& source_name,
                           const CocoDataset& ground_truth);

  /// Appends a detection (as a predictor produces them); `mask`, when given, must have the
  /// image's size. The area is the box's, as for a loaded results file that has boxes.
  void add(const CocoDataset& ground_truth, std::int64_t image_id, std::int64_t category_id,
           double score, const BoxXYWH& box, const Rle* mask);

  const std::vector<CocoDetection>& detections() const { return detections_; }
  std::size_t size() const { return detections_.size(); }
  bool empty() const { return detections_.empty(); }
  /// True when every detection carries a mask (needed for segm evaluation).
  bool all_have_masks() const;

  /// The detection's mask (an empty mask of the image's size when it has none). Masks are
  /// held decoded (each compressed string is decoded once, at load), so this is a copy.
  Rle mask(std::size_t detection_index) const;
  /// The mask in COCO's compressed string form.
  std::string compressed_mask(std::size_t detection_index) const;

  /// COCO results JSON (a list), boxes and compressed masks; written atomically by save().
  std::string to_json() const;
  void save(const std::filesystem::path& json_path) const;

 private:
  friend class CocoResultsLoader;
  std::vector<CocoDetection> detections_;
  /// Every mask's run lengths, one after another (sized, then decoded into in parallel).
  std::vector<std::uint32_t, UninitializedAllocator<std::uint32_t>> mask_counts_;
};

}  // namespace centermask
