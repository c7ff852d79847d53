#include "centermask/data/coco_results.h"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/huge_pages.h"
#include "centermask/common/json_reader.h"
#include "centermask/common/json_writer.h"
#include "common/parallel.h"

namespace centermask {

struct CocoResults::SourceText {
  std::string name;
  std::unique_ptr<MappedFile> file;  ///< a loaded file, mapped
  std::string copy;                  ///< or a copy of parsed text
  std::string_view text() const { return file ? file->text() : std::string_view(copy); }
};

class CocoResultsLoader {
 public:
  CocoResultsLoader(CocoResults::SourceText& source, const CocoDataset& gt, CocoResults& out)
      : reader_(source.text(), source.name),
        text_(source.text()),
        source_(source),
        gt_(gt),
        out_(out) {}

  void run() {
    if (reader_.peek() != json::ValueType::kArray) {
      reader_.fail(
          std::string("expected a list of results [{\"image_id\": ..., \"category_id\": ..., "
                      "\"score\": ..., ...}], found ") +
          json::value_type_name(reader_.peek()));
    }
    // Room for as many records as the file could hold (the shortest record with a box is 55
    // bytes): the vectors never move while they grow, and pages never touched cost nothing
    // (so the room is not given back: shrinking would copy every detection into fresh pages).
    const std::size_t most_records = text_.size() / 55 + 1;
    reserve_in_huge_pages(out_.detections_, most_records);
    reserve_in_huge_pages(out_.compressed_masks_, most_records);
    reserve_in_huge_pages(pending_, most_records);
    reader_.begin_array();
    std::size_t index = 0;
    while (reader_.next_element()) read_result(index++);
    reader_.expect_end();
    measure_string_masks();
    apply_area_rule();
  }

 private:
  struct Pending {
    bool has_box = false;
    bool has_mask = false;
  };

  [[noreturn]] void fail_record(std::size_t index, std::size_t at, const std::string& message) {
    reader_.fail_at(at, fmt::format("results[{}]: {}", index, message));
  }

  void expect(json::ValueType type, std::size_t index, const char* field) {
    json::ValueType found = reader_.peek();
    if (found != type) {
      reader_.fail(fmt::format("results[{}].{}: expected {}, found {}", index, field,
                               json::value_type_name(type), json::value_type_name(found)));
    }
  }

  // Reads any COCO segmentation form into `rle_`: compressed or uncompressed RLE, or polygons.
  void read_segmentation(std::size_t index, std::int32_t& height, std::int32_t& width,
                         bool& is_string) {
    const std::size_t at = reader_.offset();
    if (reader_.peek() == json::ValueType::kArray) {
      // Polygons; rasterised later at the image's size.
      polygon_coords_.clear();
      polygon_sizes_.clear();
      reader_.begin_array();
      while (reader_.next_element()) {
        expect(json::ValueType::kArray, index, "segmentation");
        reader_.begin_array();
        const std::size_t start = polygon_coords_.size();
        while (reader_.next_element()) {
          expect(json::ValueType::kNumber, index, "segmentation");
          polygon_coords_.push_back(reader_.read_double());
        }
        polygon_sizes_.push_back(polygon_coords_.size() - start);
      }
      height = width = -1;
      is_string = false;
      return;
    }
    expect(json::ValueType::kObject, index, "segmentation");
    reader_.begin_object();
    bool has_size = false, has_counts = false;
    rle_.counts.clear();
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "size") {
        expect(json::ValueType::kArray, index, "segmentation.size");
        reader_.begin_array();
        std::int64_t hw[2] = {-1, -1};
        int n = 0;
        while (reader_.next_element()) {
          expect(json::ValueType::kNumber, index, "segmentation.size");
          std::int64_t v = reader_.read_int64();
          if (n < 2) hw[n] = v;
          ++n;
        }
        if (n != 2 || hw[0] < 0 || hw[1] < 0 || hw[0] > (1 << 30) || hw[1] > (1 << 30)) {
          fail_record(index, at, "segmentation.size must be [height, width]");
        }
        height = static_cast<std::int32_t>(hw[0]);
        width = static_cast<std::int32_t>(hw[1]);
        has_size = true;
      } else if (key == "counts") {
        has_counts = true;
        if (reader_.peek() == json::ValueType::kString) {
          // As written in the file, escapes and all (COCO's alphabet holds the backslash,
          // so most strings have one): unescaped only where it is decoded, into scratch.
          string_ = reader_.read_string_raw(&string_escaped_);
          is_string = true;
        } else {
          expect(json::ValueType::kArray, index, "segmentation.counts");
          reader_.begin_array();
          while (reader_.next_element()) {
            expect(json::ValueType::kNumber, index, "segmentation.counts");
            std::int64_t c = reader_.read_int64();
            if (c < 0 || c > static_cast<std::int64_t>(kMaxMaskPixels)) {
              fail_record(index, at, "segmentation.counts has a negative or too large run length");
            }
            rle_.counts.push_back(static_cast<std::uint32_t>(c));
          }
          is_string = false;
        }
      } else {
        reader_.skip_value();
      }
    }
    if (!has_size) fail_record(index, at, "segmentation has no \"size\"");
    if (!has_counts) fail_record(index, at, "segmentation has no \"counts\"");
  }

  void read_result(std::size_t index) {
    const std::size_t at = reader_.offset();
    expect(json::ValueType::kObject, index, "");
    reader_.begin_object();
    CocoDetection det;
    bool has_image = false, has_category = false, has_score = false, has_box = false,
         has_mask = false;
    bool mask_is_string = false;
    std::int32_t mask_height = -1, mask_width = -1;
    std::string_view key;
    while (reader_.next_key(key)) {
      if (key == "image_id") {
        expect(json::ValueType::kNumber, index, "image_id");
        det.image_id = reader_.read_int64();
        has_image = true;
      } else if (key == "category_id") {
        expect(json::ValueType::kNumber, index, "category_id");
        det.category_id = reader_.read_int64();
        has_category = true;
      } else if (key == "score") {
        expect(json::ValueType::kNumber, index, "score");
        det.score = reader_.read_double();
        has_score = true;
      } else if (key == "bbox") {
        expect(json::ValueType::kArray, index, "bbox");
        reader_.begin_array();
        double v[4] = {0, 0, 0, 0};
        int n = 0;
        while (reader_.next_element()) {
          expect(json::ValueType::kNumber, index, "bbox");
          double x = reader_.read_double();
          if (n < 4) v[n] = x;
          ++n;
        }
        // pycocotools treats "bbox": [] as no box.
        if (n != 0 && n != 4)
          fail_record(index, at,
                      fmt::format("bbox has {} numbers, expected 4 [x, y, width, height]", n));
        has_box = n == 4;
        det.bbox = {v[0], v[1], v[2], v[3]};
      } else if (key == "segmentation") {
        read_segmentation(index, mask_height, mask_width, mask_is_string);
        has_mask = true;
      } else {
        reader_.skip_value();
      }
    }
    if (!has_image) fail_record(index, at, "required field \"image_id\" is missing");
    if (!has_category) fail_record(index, at, "required field \"category_id\" is missing");
    if (!has_score) fail_record(index, at, "required field \"score\" is missing");
    if (!std::isfinite(det.score)) fail_record(index, at, "score is not a finite number");
    if (!has_box && !has_mask) fail_record(index, at, "has neither \"bbox\" nor \"segmentation\"");
    if (has_box && !(std::isfinite(det.bbox.x) && std::isfinite(det.bbox.y) &&
                     std::isfinite(det.bbox.width) && std::isfinite(det.bbox.height))) {
      fail_record(index, at, "bbox has a value that is not a finite number");
    }
    det.image_index = gt_.image_index(det.image_id);
    if (det.image_index < 0) {
      fail_record(index, at, fmt::format("image_id {} is not in the ground truth", det.image_id));
    }
    det.class_index = gt_.class_index(det.category_id);
    if (det.class_index < 0) {
      fail_record(
          index, at,
          fmt::format("category_id {} is not a category of the ground truth", det.category_id));
    }
    const CocoImage& image = gt_.images()[static_cast<std::size_t>(det.image_index)];
    det.mask_height = image.height;
    det.mask_width = image.width;
    // pycocotools decides by the first result: with a box, areas come from boxes and the
    // masks are only needed for IoU, so here they are validated without being built.
    if (index == 0) box_mode_ = has_box;
    if (has_mask) {
      Rle mask;
      bool have_mask = false;
      if (mask_height < 0) {  // polygons
        std::vector<Span<double>> spans;
        std::size_t offset = 0;
        for (std::size_t size : polygon_sizes_) {
          spans.emplace_back(polygon_coords_.data() + offset, size);
          offset += size;
        }
        try {
          mask = rle_from_polygons(spans, image.height, image.width);
        } catch (const std::invalid_argument& e) {
          fail_record(index, at, std::string("segmentation: ") + e.what());
        }
        have_mask = true;
      } else {
        if (mask_height != image.height || mask_width != image.width) {
          fail_record(
              index, at,
              fmt::format("segmentation.size is [{}, {}] but image {} is {}x{} (height x width)",
                          mask_height, mask_width, image.id, image.height, image.width));
        }
        if (mask_is_string) {
          // Kept as the string and decoded where it is used. With boxes only the IoUs need
          // it, and a check of its characters here finds garbage and truncation at load;
          // without boxes it is decoded (in full, in parallel) after parsing for its area.
          if (box_mode_) {
            std::string_view counts = string_;
            if (string_escaped_) {
              json::Reader::unescape(string_, unescaped_);
              counts = unescaped_;
            }
            const std::string problem =
                rle_string_syntax_problem(counts, image.height, image.width);
            if (!problem.empty())
              fail_record(index, at, "segmentation.counts: corrupt compressed RLE: " + problem);
          } else {
            string_records_.push_back(static_cast<std::uint32_t>(index));
          }
          det.mask_compressed = true;
          det.mask_first = out_.compressed_masks_.size();
          out_.compressed_masks_.push_back({string_, at, string_escaped_});
        } else {
          std::uint64_t total = 0;
          for (std::uint32_t c : rle_.counts) total += c;
          if (total !=
              static_cast<std::uint64_t>(image.height) * static_cast<std::uint64_t>(image.width)) {
            fail_record(index, at, "segmentation.counts do not cover the image");
          }
          mask = rle_;
          mask.height = image.height;
          mask.width = image.width;
          have_mask = true;
        }
      }
      det.has_mask = true;
      if (have_mask) {
        det.mask_first = out_.mask_counts_.size();
        det.mask_length = static_cast<std::uint32_t>(mask.counts.size());
        out_.mask_counts_.insert(out_.mask_counts_.end(), mask.counts.begin(), mask.counts.end());
      }
      if (!box_mode_) {
        mask_areas_.push_back(have_mask ? static_cast<double>(rle_area(mask)) : 0);
        mask_boxes_.push_back(have_mask ? rle_bbox(mask) : BoxXYWH{});
      }
    } else if (!box_mode_) {
      mask_areas_.push_back(0);
      mask_boxes_.push_back({});
    }
    pending_.push_back({has_box, has_mask});
    out_.detections_.push_back(det);
  }

  // Without boxes, pycocotools takes each result's area (and a missing box) from its mask:
  // the compressed masks are decoded here, in parallel, which also validates them at load.
  void measure_string_masks() {
    const std::size_t n = string_records_.size();
    if (n == 0) return;
    std::vector<std::string> problems(n);
    parallel_for(n, resolve_thread_count(0, n / 64 + 1), [&](std::size_t i) {
      thread_local Rle mask;
      thread_local std::string scratch;
      const std::uint32_t record = string_records_[i];
      problems[i] = out_.decode_compressed(record, mask, scratch);
      if (!problems[i].empty()) return;
      mask_areas_[record] = static_cast<double>(rle_area(mask));
      mask_boxes_[record] = rle_bbox(mask);
    });
    for (std::size_t i = 0; i < n; ++i) {  // report the first bad record
      if (!problems[i].empty()) {
        const CocoDetection& det = out_.detections_[string_records_[i]];
        fail_record(string_records_[i], out_.compressed_masks_[det.mask_first].record_offset,
                    "segmentation.counts: corrupt compressed RLE: " + problems[i]);
      }
    }
  }

  void apply_area_rule() {
    if (pending_.empty()) return;
    const bool box_mode = box_mode_;
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      CocoDetection& det = out_.detections_[i];
      if (box_mode) {
        if (!pending_[i].has_box) {
          throw InputError(describe_input_problem(
              source_.name, fmt::format("results[{}]", i),
              "has no \"bbox\" while the first result has one; give all or none"));
        }
        det.area = det.bbox.width * det.bbox.height;
      } else {
        if (!pending_[i].has_mask) {
          throw InputError(
              describe_input_problem(source_.name, fmt::format("results[{}]", i),
                                     "has no \"segmentation\" while the first result has no bbox"));
        }
        det.area = mask_areas_[i];
        if (!pending_[i].has_box) det.bbox = mask_boxes_[i];
      }
    }
  }

  json::Reader reader_;
  std::string_view text_;
  CocoResults::SourceText& source_;
  const CocoDataset& gt_;
  CocoResults& out_;
  std::vector<Pending> pending_;
  bool box_mode_ = false;
  std::vector<std::uint32_t> string_records_;  // the records whose masks decode at load
  std::string unescaped_;
  bool string_escaped_ = false;
  std::vector<double> mask_areas_;  // by record, without boxes only
  std::vector<BoxXYWH> mask_boxes_;
  std::vector<double> polygon_coords_;
  std::vector<std::size_t> polygon_sizes_;
  Rle rle_;
  std::string_view string_;
};

CocoResults CocoResults::load_from(std::shared_ptr<SourceText> source,
                                   const CocoDataset& ground_truth) {
  CocoResults results;
  CocoResultsLoader loader(*source, ground_truth, results);
  loader.run();
  // The results keep the text only while masks point into it.
  if (!results.compressed_masks_.empty()) results.source_ = std::move(source);
  return results;
}

CocoResults CocoResults::parse(std::string_view json_text, const std::string& source_name,
                               const CocoDataset& ground_truth) {
  auto source = std::make_shared<SourceText>();
  source->name = source_name;
  source->copy = std::string(json_text);
  return load_from(std::move(source), ground_truth);
}

CocoResults CocoResults::load(const std::filesystem::path& json_path,
                              const CocoDataset& ground_truth) {
  auto source = std::make_shared<SourceText>();
  source->name = json_path.string();
  source->file = std::make_unique<MappedFile>(json_path);
  return load_from(std::move(source), ground_truth);
}

void CocoResults::add(const CocoDataset& ground_truth, std::int64_t image_id,
                      std::int64_t category_id, double score, const BoxXYWH& box, const Rle* mask) {
  CocoDetection det;
  det.image_id = image_id;
  det.category_id = category_id;
  det.score = score;
  det.bbox = box;
  det.area = box.width * box.height;
  det.image_index = ground_truth.image_index(image_id);
  det.class_index = ground_truth.class_index(category_id);
  if (det.image_index < 0)
    throw std::invalid_argument(fmt::format("image_id {} is not in the dataset", image_id));
  if (det.class_index < 0)
    throw std::invalid_argument(fmt::format("category_id {} is not in the dataset", category_id));
  const CocoImage& image = ground_truth.images()[static_cast<std::size_t>(det.image_index)];
  det.mask_height = image.height;
  det.mask_width = image.width;
  if (mask) {
    if (mask->height != image.height || mask->width != image.width) {
      throw std::invalid_argument(fmt::format("mask is {}x{} but image {} is {}x{}", mask->height,
                                              mask->width, image_id, image.height, image.width));
    }
    det.has_mask = true;
    det.mask_first = mask_counts_.size();
    det.mask_length = static_cast<std::uint32_t>(mask->counts.size());
    mask_counts_.insert(mask_counts_.end(), mask->counts.begin(), mask->counts.end());
  }
  detections_.push_back(det);
}

bool CocoResults::all_have_masks() const {
  for (const CocoDetection& d : detections_) {
    if (!d.has_mask) return false;
  }
  return true;
}

std::string CocoResults::compressed_mask(std::size_t detection_index) const {
  return rle_to_string(mask(detection_index));
}

std::string CocoResults::decode_compressed(std::size_t detection_index, Rle& out,
                                           std::string& scratch) const {
  const CocoDetection& d = detections_[detection_index];
  const CompressedMask& mask = compressed_masks_[d.mask_first];
  std::string_view counts = mask.counts;
  if (mask.escaped) {
    json::Reader::unescape(counts, scratch);
    counts = scratch;
  }
  out.height = d.mask_height;
  out.width = d.mask_width;
  out.counts.resize(counts.size());  // every count takes at least one character
  std::size_t written = 0;
  std::string problem =
      rle_decode_string_into(counts, d.mask_height, d.mask_width, out.counts.data(), &written);
  out.counts.resize(problem.empty() ? written : 0);
  return problem;
}

Rle CocoResults::mask(std::size_t detection_index) const {
  Rle rle;
  mask_into(detection_index, rle);
  return rle;
}

void CocoResults::mask_into(std::size_t detection_index, Rle& out) const {
  const CocoDetection& d = detections_[detection_index];
  if (!d.has_mask) {
    out = rle_empty(d.mask_height, d.mask_width);
    return;
  }
  out.height = d.mask_height;
  out.width = d.mask_width;
  if (d.mask_compressed) {
    thread_local std::string scratch;
    const std::string problem = decode_compressed(detection_index, out, scratch);
    if (!problem.empty()) {
      json::Reader(source_->text(), source_->name)
          .fail_at(compressed_masks_[d.mask_first].record_offset,
                   fmt::format("results[{}]: segmentation.counts: corrupt compressed RLE: {}",
                               detection_index, problem));
    }
    return;
  }
  const auto first = mask_counts_.begin() + static_cast<std::ptrdiff_t>(d.mask_first);
  out.counts.assign(first, first + d.mask_length);
}

std::string CocoResults::to_json() const {
  std::string out;
  out.reserve(detections_.size() * 160 + mask_counts_.size() * 2);
  json::Writer w(out);
  w.begin_array();
  for (std::size_t i = 0; i < detections_.size(); ++i) {
    const CocoDetection& d = detections_[i];
    w.begin_object();
    w.key("image_id").value(d.image_id);
    w.key("category_id").value(d.category_id);
    w.key("score").value(d.score);
    w.key("bbox")
        .begin_array()
        .value(d.bbox.x)
        .value(d.bbox.y)
        .value(d.bbox.width)
        .value(d.bbox.height)
        .end_array();
    if (d.has_mask) {
      w.key("segmentation").begin_object();
      w.key("size")
          .begin_array()
          .value(static_cast<std::int64_t>(d.mask_height))
          .value(static_cast<std::int64_t>(d.mask_width))
          .end_array();
      w.key("counts").value(compressed_mask(i));
      w.end_object();
    }
    w.end_object();
  }
  w.end_array();
  out += '\n';
  return out;
}

void CocoResults::save(const std::filesystem::path& json_path) const {
  write_file_atomically(json_path, to_json());
}

}  // namespace centermask
