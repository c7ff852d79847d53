#pragma once
// Detections in COCO's result format: a JSON list of {image_id, category_id, score, bbox,
// segmentation (compressed RLE)}. Loading follows pycocotools' loadRes so that scores agree,
// including its rule for a result's area (see CocoResults::load).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
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
  /// The mask is held as the results file's compressed string and decoded where it is used
  /// (mask_first indexes CocoResults' strings); otherwise it is held decoded (mask_first and
  /// mask_length locate its run lengths in CocoResults' one array).
  bool mask_compressed = false;
  std::int32_t mask_height = 0;  ///< the image's size, which the mask must have
  std::int32_t mask_width = 0;
  std::uint64_t mask_first = 0;
  std::uint32_t mask_length = 0;
};

class CocoResults {
 public:
  /// Reads a results JSON and checks it against the ground truth: every image_id and
  /// category_id must exist there, scores must be finite, masks must have their image's size.
  /// Throws InputError naming the file, the record and its byte offset. An empty list is valid.
  ///
  /// Area rule (pycocotools loadRes): if the first result has a non-empty "bbox", every
  /// result's area is bbox width * height; otherwise the mask's area, and a missing bbox is
  /// the mask's box.
  ///
  /// Masks are decoded once. With boxes, a compressed mask is only needed for IoUs, so it
  /// stays a string (a view into the file, which the results keep mapped) and is decoded
  /// where it is used: mask() and the evaluation. Decoding every mask at load into one array
  /// cost more in fresh memory than the decode itself (100k masks: 95 MB of run lengths, half
  /// of a whole evaluation's time in page faults). At load such a string is checked for
  /// COCO's alphabet and a complete last count; counts that do not cover the image are found
  /// by the decode, which throws the same InputError naming the file and the record. Without
  /// boxes every mask is decoded at load, for its area and box.
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

  /// The detection's mask (an empty mask of the image's size when it has none): decoded from
  /// its compressed string, or a copy of the run lengths held. Throws InputError naming the
  /// file and the record for a compressed string whose counts do not cover the image.
  Rle mask(std::size_t detection_index) const;
  /// The same into `out`, reusing its storage.
  void mask_into(std::size_t detection_index, Rle& out) const;
  /// The mask in COCO's compressed string form.
  std::string compressed_mask(std::size_t detection_index) const;

  /// COCO results JSON (a list), boxes and compressed masks; written atomically by save().
  std::string to_json() const;
  void save(const std::filesystem::path& json_path) const;

 private:
  friend class CocoResultsLoader;
  struct SourceText;  ///< the results file (mapped) or a copy of the parsed text
  static CocoResults load_from(std::shared_ptr<SourceText> source, const CocoDataset& ground_truth);
  struct CompressedMask {
    std::string_view counts;    ///< as written in the source text (JSON escapes and all)
    std::size_t record_offset;  ///< the record's byte offset in the source, for errors
    bool escaped;               ///< whether `counts` holds JSON escapes
  };
  /// Decodes a compressed mask into `out` (`scratch` unescapes it where needed); returns ""
  /// or the problem.
  std::string decode_compressed(std::size_t detection_index, Rle& out, std::string& scratch) const;
  std::vector<CocoDetection> detections_;
  /// The masks held decoded (polygons, uncompressed RLE, added masks), one after another.
  std::vector<std::uint32_t, UninitializedAllocator<std::uint32_t>> mask_counts_;
  /// The masks held compressed, and the text they point into (shared by copies).
  std::vector<CompressedMask> compressed_masks_;
  std::shared_ptr<const SourceText> source_;
};

}  // namespace centermask
