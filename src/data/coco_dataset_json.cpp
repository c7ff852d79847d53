// Streaming reader for COCO instance JSON: one pass over the text with the pull parser, records
// go straight into CocoDatasetBuilder. No document tree is built, which is what keeps a
// train2017-sized file within a second or two and well under its own size in extra memory.

#include <fmt/format.h>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/data/coco_dataset.h"

namespace centermask {

// Names a field for messages, e.g. "annotations[12].bbox"; built only when something fails.
struct FieldPath {
  const char* section;
  std::size_t index;
  const char* field;
  std::string str() const { return fmt::format("{}[{}].{}", section, index, field); }
};

class CocoJsonLoader {
 public:
  CocoJsonLoader(std::string_view text, const std::string& source, CocoDatasetBuilder& builder)
      : reader_(text, source), builder_(builder) {}

  void run() {
    if (reader_.peek() != json::ValueType::kObject) {
      reader_.fail(
          std::string("expected the top-level COCO object {\"images\": ..., \"annotations\": ..., "
                      "\"categories\": ...}, found ") +
          json::value_type_name(reader_.peek()) +
          " (a results file is a list; pass it as results, not as ground truth)");
    }
    reader_.begin_object();
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "images") {
        read_list("images", [this](std::size_t i) { read_image(i); });
      } else if (key == "annotations") {
        read_list("annotations", [this](std::size_t i) { read_annotation(i); });
      } else if (key == "categories") {
        read_list("categories", [this](std::size_t i) { read_category(i); });
      } else {
        reader_.skip_value();
      }
    }
    reader_.expect_end();
  }

 private:
  template <typename ReadOne>
  void read_list(const char* section, ReadOne read_one) {
    if (reader_.peek() != json::ValueType::kArray)
      reader_.fail_type(std::string("\"") + section + "\" as an array");
    reader_.begin_array();
    std::size_t i = 0;
    while (reader_.next_element()) read_one(i++);
  }

  void expect(json::ValueType type, const FieldPath& path) {
    json::ValueType found = reader_.peek();
    if (found != type) {
      reader_.fail(fmt::format("{}: expected {}, found {}", path.str(), json::value_type_name(type),
                               json::value_type_name(found)));
    }
  }
  std::int64_t read_int(const FieldPath& path) {
    expect(json::ValueType::kNumber, path);
    return reader_.read_int64();
  }
  double read_number(const FieldPath& path) {
    expect(json::ValueType::kNumber, path);
    return reader_.read_double();
  }
  std::int32_t read_dimension(const FieldPath& path) {
    const std::size_t at = reader_.offset();
    std::int64_t v = read_int(path);
    if (v <= 0 || v > (1 << 30))
      reader_.fail_at(at, fmt::format("{}: {} is not a valid image dimension", path.str(), v));
    return static_cast<std::int32_t>(v);
  }
  [[noreturn]] void missing(const char* section, std::size_t index, const char* field) {
    reader_.fail(fmt::format("{}[{}]: required field \"{}\" is missing", section, index, field));
  }

  std::vector<std::int64_t> read_id_list(const FieldPath& path) {
    expect(json::ValueType::kArray, path);
    reader_.begin_array();
    std::vector<std::int64_t> ids;
    while (reader_.next_element()) ids.push_back(read_int(path));
    return ids;
  }

  void read_image(std::size_t index) {
    expect(json::ValueType::kObject, {"images", index, ""});
    reader_.begin_object();
    CocoImage image;
    bool has_id = false, has_height = false, has_width = false;
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "id") {
        image.id = read_int({"images", index, "id"});
        has_id = true;
      } else if (key == "height") {
        image.height = read_dimension({"images", index, "height"});
        has_height = true;
      } else if (key == "width") {
        image.width = read_dimension({"images", index, "width"});
        has_width = true;
      } else if (key == "file_name") {
        expect(json::ValueType::kString, {"images", index, "file_name"});
        image.file_name = std::string(reader_.read_string());
      } else if (key == "neg_category_ids") {
        image.neg_category_ids = read_id_list({"images", index, "neg_category_ids"});
      } else if (key == "not_exhaustive_category_ids") {
        image.not_exhaustive_category_ids =
            read_id_list({"images", index, "not_exhaustive_category_ids"});
      } else {
        reader_.skip_value();
      }
    }
    if (!has_id) missing("images", index, "id");
    if (!has_height) missing("images", index, "height");
    if (!has_width) missing("images", index, "width");
    builder_.add_image(std::move(image));
  }

  void read_category(std::size_t index) {
    expect(json::ValueType::kObject, {"categories", index, ""});
    reader_.begin_object();
    CocoCategory category;
    bool has_id = false;
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "id") {
        category.id = read_int({"categories", index, "id"});
        has_id = true;
      } else if (key == "name") {
        expect(json::ValueType::kString, {"categories", index, "name"});
        category.name = std::string(reader_.read_string());
      } else if (key == "supercategory") {
        expect(json::ValueType::kString, {"categories", index, "supercategory"});
        category.supercategory = std::string(reader_.read_string());
      } else if (key == "frequency") {
        expect(json::ValueType::kString, {"categories", index, "frequency"});
        category.frequency = std::string(reader_.read_string());
      } else {
        reader_.skip_value();
      }
    }
    if (!has_id) missing("categories", index, "id");
    builder_.add_category(std::move(category));
  }

  enum class MaskKind { kAbsent, kPolygons, kRleCounts, kRleString };

  void read_box(const FieldPath& path, BoxXYWH& box) {
    expect(json::ValueType::kArray, path);
    const std::size_t at = reader_.offset();
    reader_.begin_array();
    double v[4];
    int n = 0;
    while (reader_.next_element()) {
      if (n == 4) reader_.fail_at(at, path.str() + ": expected 4 numbers [x, y, width, height]");
      v[n++] = read_number(path);
    }
    if (n != 4) reader_.fail_at(at, path.str() + ": expected 4 numbers [x, y, width, height]");
    box = {v[0], v[1], v[2], v[3]};
  }

  void read_polygons(std::size_t index) {
    const FieldPath path{"annotations", index, "segmentation"};
    reader_.begin_array();
    while (reader_.next_element()) {
      if (reader_.peek() != json::ValueType::kArray) {
        reader_.fail(path.str() +
                     ": expected a list of polygons [[x0, y0, x1, y1, ...], ...] or an RLE object");
      }
      const std::size_t start = coords_.size();
      reader_.read_double_array(coords_, [&] { return path.str(); });
      polygon_sizes_.push_back(coords_.size() - start);
    }
  }

  void read_rle(std::size_t index, MaskKind& kind) {
    const FieldPath path{"annotations", index, "segmentation"};
    reader_.begin_object();
    bool has_size = false, has_counts = false;
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "size") {
        const FieldPath size_path{"annotations", index, "segmentation.size"};
        expect(json::ValueType::kArray, size_path);
        const std::size_t at = reader_.offset();
        reader_.begin_array();
        std::int64_t hw[2] = {0, 0};
        int n = 0;
        while (reader_.next_element()) {
          if (n == 2) reader_.fail_at(at, size_path.str() + ": expected [height, width]");
          hw[n++] = read_int(size_path);
        }
        if (n != 2 || hw[0] < 0 || hw[1] < 0 || hw[0] > (1 << 30) || hw[1] > (1 << 30)) {
          reader_.fail_at(at,
                          size_path.str() + ": expected [height, width] with non-negative values");
        }
        rle_height_ = static_cast<std::int32_t>(hw[0]);
        rle_width_ = static_cast<std::int32_t>(hw[1]);
        has_size = true;
      } else if (key == "counts") {
        has_counts = true;
        if (reader_.peek() == json::ValueType::kString) {
          rle_string_.assign(reader_.read_string());
          kind = MaskKind::kRleString;
        } else {
          const FieldPath counts_path{"annotations", index, "segmentation.counts"};
          expect(json::ValueType::kArray, counts_path);
          reader_.begin_array();
          while (reader_.next_element()) {
            const std::size_t at = reader_.offset();
            std::int64_t c = read_int(counts_path);
            if (c < 0 || c > static_cast<std::int64_t>(kMaxMaskPixels)) {
              reader_.fail_at(at,
                              counts_path.str() + fmt::format(": run length {} out of range", c));
            }
            rle_counts_.push_back(static_cast<std::uint32_t>(c));
          }
          kind = MaskKind::kRleCounts;
        }
      } else {
        reader_.skip_value();
      }
    }
    if (!has_size) reader_.fail(path.str() + ": RLE object without \"size\"");
    if (!has_counts) reader_.fail(path.str() + ": RLE object without \"counts\"");
  }

  void read_annotation(std::size_t index) {
    expect(json::ValueType::kObject, {"annotations", index, ""});
    const std::size_t record_start = reader_.offset();
    reader_.begin_object();
    CocoAnnotation meta;
    bool has_id = false, has_image = false, has_category = false, has_box = false, has_area = false;
    MaskKind kind = MaskKind::kAbsent;
    coords_.clear();
    polygon_sizes_.clear();
    rle_counts_.clear();
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "id") {
        meta.id = read_int({"annotations", index, "id"});
        has_id = true;
      } else if (key == "image_id") {
        meta.image_id = read_int({"annotations", index, "image_id"});
        has_image = true;
      } else if (key == "category_id") {
        meta.category_id = read_int({"annotations", index, "category_id"});
        has_category = true;
      } else if (key == "bbox") {
        read_box({"annotations", index, "bbox"}, meta.bbox);
        has_box = true;
      } else if (key == "area") {
        meta.area = read_number({"annotations", index, "area"});
        has_area = true;
      } else if (key == "iscrowd") {
        if (reader_.peek() == json::ValueType::kBool) {
          meta.iscrowd = reader_.read_bool();
        } else {
          meta.iscrowd = read_int({"annotations", index, "iscrowd"}) != 0;
        }
      } else if (key == "segmentation") {
        json::ValueType type = reader_.peek();
        if (type == json::ValueType::kArray) {
          read_polygons(index);
          kind = MaskKind::kPolygons;
        } else if (type == json::ValueType::kObject) {
          read_rle(index, kind);
        } else if (type == json::ValueType::kNull) {
          reader_.read_null();
        } else {
          reader_.fail(fmt::format(
              "annotations[{}].segmentation: expected polygons or an RLE object, found {}", index,
              json::value_type_name(type)));
        }
      } else {
        reader_.skip_value();
      }
    }
    if (!has_id)
      reader_.fail_at(record_start,
                      fmt::format("annotations[{}]: required field \"id\" is missing", index));
    if (!has_image)
      reader_.fail_at(
          record_start,
          fmt::format("annotations[{}]: required field \"image_id\" is missing", index));
    if (!has_category)
      reader_.fail_at(
          record_start,
          fmt::format("annotations[{}]: required field \"category_id\" is missing", index));
    switch (kind) {
      case MaskKind::kAbsent:
        builder_.add_annotation_without_mask(meta);
        break;
      case MaskKind::kPolygons: {
        spans_.clear();
        std::size_t offset = 0;
        for (std::size_t size : polygon_sizes_) {
          spans_.emplace_back(coords_.data() + offset, size);
          offset += size;
        }
        builder_.add_annotation_polygons(meta, spans_);
        break;
      }
      case MaskKind::kRleCounts: {
        std::uint64_t total = 0;
        for (std::uint32_t c : rle_counts_) total += c;
        const std::uint64_t expected =
            static_cast<std::uint64_t>(rle_height_) * static_cast<std::uint64_t>(rle_width_);
        if (total != expected) {
          reader_.fail_at(
              record_start,
              fmt::format("annotations[{}] (id {}): segmentation.counts cover {} pixels, "
                          "its size {}x{} has {}",
                          index, meta.id, total, rle_height_, rle_width_, expected));
        }
        Rle rle;
        rle.height = rle_height_;
        rle.width = rle_width_;
        rle.counts = rle_counts_;
        builder_.add_annotation_rle(meta, rle);
        break;
      }
      case MaskKind::kRleString:
        builder_.add_annotation_compressed_rle(meta, rle_string_, rle_height_, rle_width_);
        break;
    }
    builder_.mark_missing_box_or_area(!has_box, !has_area);
  }

  json::Reader reader_;
  CocoDatasetBuilder& builder_;
  // Reused per annotation so that parsing allocates only when a record is larger than any before.
  std::vector<double> coords_;
  std::vector<std::size_t> polygon_sizes_;
  std::vector<Span<double>> spans_;
  std::vector<std::uint32_t> rle_counts_;
  std::string rle_string_;
  std::int32_t rle_height_ = 0;
  std::int32_t rle_width_ = 0;
};

CocoDataset CocoDataset::parse(std::string_view json_text, const std::string& source_name,
                               const CocoLoadOptions& options, CocoLoadReport* report) {
  CocoDatasetBuilder builder(source_name, options, report);
  builder.reserve_for_json_size(json_text.size());
  CocoJsonLoader loader(json_text, source_name, builder);
  loader.run();
  return std::move(builder).build();
}

CocoDataset CocoDataset::load(const std::filesystem::path& json_path,
                              const CocoLoadOptions& options, CocoLoadReport* report) {
  const MappedFile file(json_path);
  return parse(file.text(), json_path.string(), options, report);
}

}  // namespace centermask
