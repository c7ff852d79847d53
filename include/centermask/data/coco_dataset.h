#pragma once
// A COCO-format instance dataset held compactly: one record per annotation plus shared pools
// for polygon coordinates and RLE data, so that train2017 (118k images, 860k instances) fits
// in a few hundred MB. Masks are rasterised on demand, per annotation.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "centermask/common/span.h"
#include "centermask/structures/box.h"
#include "centermask/structures/rle.h"

namespace centermask {

struct CocoImage {
  std::int64_t id = 0;
  std::string file_name;  ///< relative to the dataset's image folder; may be empty
  std::int32_t height = 0;
  std::int32_t width = 0;
  /// LVIS's federated annotation (absent in COCO files): categories verified absent from the
  /// image, and categories present but not annotated exhaustively (evaluation/lvis_evaluator.h).
  std::optional<std::vector<std::int64_t>> neg_category_ids{};
  std::optional<std::vector<std::int64_t>> not_exhaustive_category_ids{};
};

struct CocoCategory {
  std::int64_t id = 0;
  std::string name;
  std::string supercategory;
  /// LVIS: "r" (rare), "c" (common) or "f" (frequent) by the training images it is in; empty
  /// in COCO files.
  std::string frequency{};
};

enum class SegmentationFormat : std::uint8_t {
  kNone,           ///< no mask (only a box)
  kPolygons,       ///< one or more polygons, unioned
  kRle,            ///< uncompressed RLE: {"size": [h, w], "counts": [...]}
  kCompressedRle,  ///< compressed RLE: {"size": [h, w], "counts": "..."}
};

struct CocoAnnotation {
  std::int64_t id = 0;
  std::int64_t image_id = 0;
  std::int64_t category_id = 0;
  std::int32_t image_index = -1;  ///< position in CocoDataset::images()
  std::int32_t class_index = -1;  ///< contiguous class, categories sorted by id
  BoxXYWH bbox;
  double area = 0;
  bool iscrowd = false;
  SegmentationFormat segmentation_format = SegmentationFormat::kNone;
  /// Where the mask data lies in the dataset's pools; interpreted by segmentation_format:
  /// polygons: first polygon index and polygon count; RLE: first count and count of counts;
  /// compressed RLE: first character and length.
  std::uint64_t segmentation_first = 0;
  std::uint32_t segmentation_size = 0;
};

/// What loading does with degenerate but recoverable records (a polygon with fewer than
/// three points, an annotation without a mask, a missing area or box).
struct CocoLoadOptions {
  /// When true each such record is an error naming file and record; otherwise it is
  /// repaired or dropped and counted in CocoLoadReport.
  bool strict = false;
};

/// Counted warnings of one load: kind → how many and the first record it happened to.
class CocoLoadReport {
 public:
  void add(const std::string& kind, const std::string& first_example);
  bool empty() const { return entries_.empty(); }
  /// One line per kind: "N× KIND (first: EXAMPLE)".
  std::vector<std::string> lines() const;
  std::size_t count(const std::string& kind) const;

 private:
  struct Entry {
    std::size_t count = 0;
    std::string first_example;
  };
  std::map<std::string, Entry> entries_;
};

class CocoDatasetBuilder;

class CocoDataset {
 public:
  /// Reads a COCO instances JSON. Throws InputError naming the file, record and field for
  /// malformed JSON, missing or mistyped fields, unknown ids, RLE sizes that differ from the
  /// image, corrupt RLE strings; degenerate records follow `options`.
  static CocoDataset load(const std::filesystem::path& json_path,
                          const CocoLoadOptions& options = {}, CocoLoadReport* report = nullptr);
  /// The same from JSON text already in memory; `source_name` is used in messages.
  static CocoDataset parse(std::string_view json_text, const std::string& source_name,
                           const CocoLoadOptions& options = {}, CocoLoadReport* report = nullptr);

  const std::vector<CocoImage>& images() const { return images_; }
  const std::vector<CocoCategory>& categories() const { return categories_; }  ///< by id
  const std::vector<CocoAnnotation>& annotations() const { return annotations_; }
  std::size_t num_classes() const { return categories_.size(); }

  /// Index into images() of an image id, or -1.
  std::int32_t image_index(std::int64_t image_id) const;
  /// Contiguous class index of a category id, or -1.
  std::int32_t class_index(std::int64_t category_id) const;
  /// Annotation indices of one image, in file order.
  Span<std::uint32_t> annotations_of_image(std::size_t image_index) const;

  /// The annotation's polygons (empty unless its format is kPolygons).
  std::vector<Span<double>> polygons(std::size_t annotation_index) const;
  /// The annotation's mask at its image's size (polygons rasterised as pycocotools does).
  Rle mask(std::size_t annotation_index) const;
  /// The raw compressed string of a kCompressedRle annotation.
  std::string_view compressed_rle(std::size_t annotation_index) const;

  /// Writes the dataset as COCO JSON (atomically), keeping each mask in its format.
  void save(const std::filesystem::path& json_path) const;
  std::string to_json() const;

  /// Bytes held by the dataset's records and pools (for the memory benchmark).
  std::size_t memory_bytes() const;

 private:
  friend class CocoDatasetBuilder;

  std::vector<CocoImage> images_;
  std::vector<CocoCategory> categories_;
  std::vector<CocoAnnotation> annotations_;
  std::vector<double> polygon_coords_;
  std::vector<std::uint64_t> polygon_starts_;  ///< per polygon, plus one end sentinel
  std::vector<std::uint32_t> rle_counts_;
  std::string compressed_rle_text_;
  std::unordered_map<std::int64_t, std::int32_t> image_index_by_id_;
  std::unordered_map<std::int64_t, std::int32_t> class_index_by_category_id_;
  std::vector<std::uint32_t> image_annotation_starts_;  ///< CSR offsets, images + 1
  std::vector<std::uint32_t> image_annotation_indices_;
};

/// Assembles a dataset record by record (the loader and the synthetic generator use it);
/// build() checks references and computes the indices.
class CocoDatasetBuilder {
 public:
  explicit CocoDatasetBuilder(std::string source_name = "<memory>", CocoLoadOptions options = {},
                              CocoLoadReport* report = nullptr);

  void add_image(CocoImage image);
  void add_category(CocoCategory category);
  /// Adds an annotation with polygons (each x0,y0,x1,y1,...). Degenerate polygons are handled
  /// per the load options. bbox/area of `meta` are taken as given.
  void add_annotation_polygons(const CocoAnnotation& meta,
                               const std::vector<Span<double>>& polygons);
  void add_annotation_rle(const CocoAnnotation& meta, const Rle& rle);
  void add_annotation_compressed_rle(const CocoAnnotation& meta, std::string_view counts,
                                     std::int32_t height, std::int32_t width);
  void add_annotation_without_mask(const CocoAnnotation& meta);

  /// Reserves pools for a COCO JSON text of this size, so that growing them does not copy
  /// hundreds of MB (unused reserved pages are never touched, so they cost no memory).
  void reserve_for_json_size(std::size_t bytes);
  /// Marks the last added annotation's bbox and/or area as absent in the input; build()
  /// derives them from the mask (a counted warning, an error when strict).
  void mark_missing_box_or_area(bool box_missing, bool area_missing);

  /// Validates references (image and category ids, RLE sizes against their images, unique
  /// ids) and returns the finished dataset.
  CocoDataset build() &&;

 private:
  void warn_or_fail(const std::string& record, const std::string& kind, const std::string& detail);
  void push_annotation(CocoAnnotation meta, SegmentationFormat format, std::uint64_t first,
                       std::uint32_t size, std::int32_t mask_height, std::int32_t mask_width);

  std::string source_name_;
  CocoLoadOptions options_;
  CocoLoadReport* report_;
  CocoDataset dataset_;
  // Mask size declared by each RLE annotation, checked against its image in build().
  std::vector<std::pair<std::uint32_t, std::pair<std::int32_t, std::int32_t>>> rle_sizes_;
  // Annotation index → bit 1: bbox missing, bit 2: area missing; derived in build().
  std::vector<std::pair<std::uint32_t, std::uint8_t>> missing_box_or_area_;
};

}  // namespace centermask
