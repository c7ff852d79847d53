#include "centermask/data/coco_results.h"

#include <fmt/format.h>

#include <cmath>
#include <deque>
#include <stdexcept>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/common/json_writer.h"
#include "common/parallel.h"

namespace centermask {

class CocoResultsLoader {
 public:
  CocoResultsLoader(std::string_view text, const std::string& source, const CocoDataset& gt,
                    CocoResults& out)
      : reader_(text, source), text_(text), source_(source), gt_(gt), out_(out) {}

  void run() {
    if (reader_.peek() != json::ValueType::kArray) {
      reader_.fail(
          std::string("expected a list of results [{\"image_id\": ..., \"category_id\": ..., "
                      "\"score\": ..., ...}], found ") +
          json::value_type_name(reader_.peek()));
    }
    // Room for as many records as the file could hold (the shortest record with a box is 55
    // bytes): the vectors never move while they grow, and pages never touched cost nothing.
    const std::size_t most_records = text_.size() / 55 + 1;
    out_.detections_.reserve(most_records);
    pending_.reserve(most_records);
    mask_areas_.reserve(most_records);
    mask_boxes_.reserve(most_records);
    reader_.begin_array();
    std::size_t index = 0;
    while (reader_.next_element()) read_result(index++);
    reader_.expect_end();
    decode_string_masks();
    apply_area_rule();
    if (out_.detections_.capacity() > 2 * out_.detections_.size() + 1024)
      out_.detections_.shrink_to_fit();
  }

 private:
  struct Pending {
    bool has_box = false;
    bool has_mask = false;
  };
  struct StringMask {
    std::uint32_t record;
    std::size_t byte_offset;  // of the record, for errors
    std::string_view text;
  };

  static bool within(std::string_view part, std::string_view whole) {
    return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
  }

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
          string_ = reader_.read_string();
          // A view into the file, unless escapes made the reader unescape it into its
          // scratch buffer (COCO's alphabet holds the backslash): that one is kept.
          if (!within(string_, text_)) string_ = unescaped_.emplace_back(string_);
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
          // Decoded (validated, and measured without boxes) in parallel after parsing.
          string_masks_.push_back({static_cast<std::uint32_t>(index), at, string_});
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
      if (!box_mode_ && have_mask) {
        mask_areas_.push_back(static_cast<double>(rle_area(mask)));
        mask_boxes_.push_back(rle_bbox(mask));
      } else {
        mask_areas_.push_back(0);
        mask_boxes_.push_back({});
      }
    } else {
      mask_areas_.push_back(0);
      mask_boxes_.push_back({});
    }
    pending_.push_back({has_box, has_mask});
    out_.detections_.push_back(det);
  }

  // Decodes every compressed mask, once and in parallel, into the results' one array of run
  // lengths, which the evaluator then reads: validation, and the area and box that
  // pycocotools takes from the mask when results have no boxes, come from the same decode.
  // Sized first by a cheap count of each string's counts, so the decodes write in place.
  void decode_string_masks() {
    const std::size_t n = string_masks_.size();
    if (n == 0) return;
    const int threads = resolve_thread_count(0, n / 64 + 1);
    std::vector<std::size_t> first(n + 1, 0);
    parallel_for(n, threads, [&](std::size_t i) {
      first[i + 1] = rle_string_num_counts(string_masks_[i].text);
    });
    first[0] = out_.mask_counts_.size();
    for (std::size_t i = 0; i < n; ++i) first[i + 1] += first[i];
    out_.mask_counts_.resize(first[n]);
    std::vector<std::string> problems(n);
    parallel_for(n, threads, [&](std::size_t i) {
      const StringMask& string_mask = string_masks_[i];
      CocoDetection& det = out_.detections_[string_mask.record];
      std::size_t written = 0;
      problems[i] = rle_decode_string_into(string_mask.text, det.mask_height, det.mask_width,
                                           out_.mask_counts_.data() + first[i], &written);
      if (!problems[i].empty()) return;
      det.mask_first = first[i];
      det.mask_length = static_cast<std::uint32_t>(written);
      if (box_mode_) return;
      const Rle mask = out_.mask(string_mask.record);
      mask_areas_[string_mask.record] = static_cast<double>(rle_area(mask));
      mask_boxes_[string_mask.record] = rle_bbox(mask);
    });
    for (std::size_t i = 0; i < n; ++i) {  // report the first bad record
      if (!problems[i].empty()) {
        fail_record(string_masks_[i].record, string_masks_[i].byte_offset,
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
              source_, fmt::format("results[{}]", i),
              "has no \"bbox\" while the first result has one; give all or none"));
        }
        det.area = det.bbox.width * det.bbox.height;
      } else {
        if (!pending_[i].has_mask) {
          throw InputError(
              describe_input_problem(source_, fmt::format("results[{}]", i),
                                     "has no \"segmentation\" while the first result has no bbox"));
        }
        det.area = mask_areas_[i];
        if (!pending_[i].has_box) det.bbox = mask_boxes_[i];
      }
    }
  }

  json::Reader reader_;
  std::string_view text_;
  std::string source_;
  const CocoDataset& gt_;
  CocoResults& out_;
  std::vector<Pending> pending_;
  bool box_mode_ = false;
  std::vector<StringMask> string_masks_;
  std::deque<std::string> unescaped_;  // the strings that had escapes (stable addresses)
  std::vector<double> mask_areas_;
  std::vector<BoxXYWH> mask_boxes_;
  std::vector<double> polygon_coords_;
  std::vector<std::size_t> polygon_sizes_;
  Rle rle_;
  std::string_view string_;
};

CocoResults CocoResults::parse(std::string_view json_text, const std::string& source_name,
                               const CocoDataset& ground_truth) {
  CocoResults results;
  CocoResultsLoader loader(json_text, source_name, ground_truth, results);
  loader.run();
  return results;
}

CocoResults CocoResults::load(const std::filesystem::path& json_path,
                              const CocoDataset& ground_truth) {
  const MappedFile file(json_path);
  return parse(file.text(), json_path.string(), ground_truth);
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

Rle CocoResults::mask(std::size_t detection_index) const {
  const CocoDetection& d = detections_[detection_index];
  if (!d.has_mask) return rle_empty(d.mask_height, d.mask_width);
  Rle rle;
  rle.height = d.mask_height;
  rle.width = d.mask_width;
  const auto first = mask_counts_.begin() + static_cast<std::ptrdiff_t>(d.mask_first);
  rle.counts.assign(first, first + d.mask_length);
  return rle;
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
