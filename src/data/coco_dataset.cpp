#include "centermask/data/coco_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <unordered_set>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/huge_pages.h"
#include "centermask/common/json_writer.h"

namespace centermask {

// ---------------------------------------------------------------------------------------------
// CocoLoadReport

void CocoLoadReport::add(const std::string& kind, const std::string& first_example) {
  Entry& e = entries_[kind];
  if (e.count++ == 0) e.first_example = first_example;
}

std::vector<std::string> CocoLoadReport::lines() const {
  std::vector<std::string> out;
  for (const auto& [kind, entry] : entries_) {
    out.push_back(fmt::format("{}x {} (first: {})", entry.count, kind, entry.first_example));
  }
  return out;
}

std::size_t CocoLoadReport::count(const std::string& kind) const {
  auto it = entries_.find(kind);
  return it == entries_.end() ? 0 : it->second.count;
}

// ---------------------------------------------------------------------------------------------
// CocoDataset

std::int32_t CocoDataset::image_index(std::int64_t image_id) const {
  auto it = image_index_by_id_.find(image_id);
  return it == image_index_by_id_.end() ? -1 : it->second;
}

std::int32_t CocoDataset::class_index(std::int64_t category_id) const {
  auto it = class_index_by_category_id_.find(category_id);
  return it == class_index_by_category_id_.end() ? -1 : it->second;
}

Span<std::uint32_t> CocoDataset::annotations_of_image(std::size_t image_index) const {
  const std::uint32_t begin = image_annotation_starts_[image_index];
  const std::uint32_t end = image_annotation_starts_[image_index + 1];
  return {image_annotation_indices_.data() + begin, end - begin};
}

std::vector<Span<double>> CocoDataset::polygons(std::size_t annotation_index) const {
  const CocoAnnotation& a = annotations_[annotation_index];
  std::vector<Span<double>> out;
  if (a.segmentation_format != SegmentationFormat::kPolygons) return out;
  out.reserve(a.segmentation_size);
  for (std::uint64_t p = a.segmentation_first; p < a.segmentation_first + a.segmentation_size;
       ++p) {
    const std::uint64_t begin = polygon_starts_[p];
    const std::uint64_t end = polygon_starts_[p + 1];
    out.emplace_back(polygon_coords_.data() + begin, static_cast<std::size_t>(end - begin));
  }
  return out;
}

std::string_view CocoDataset::compressed_rle(std::size_t annotation_index) const {
  const CocoAnnotation& a = annotations_[annotation_index];
  if (a.segmentation_format != SegmentationFormat::kCompressedRle) return {};
  return std::string_view(compressed_rle_text_).substr(a.segmentation_first, a.segmentation_size);
}

Rle CocoDataset::mask(std::size_t annotation_index) const {
  const CocoAnnotation& a = annotations_[annotation_index];
  const CocoImage& image = images_[static_cast<std::size_t>(a.image_index)];
  switch (a.segmentation_format) {
    case SegmentationFormat::kPolygons:
      return rle_from_polygons(polygons(annotation_index), image.height, image.width);
    case SegmentationFormat::kRle: {
      Rle rle;
      rle.height = image.height;
      rle.width = image.width;
      auto first = rle_counts_.begin() + static_cast<std::ptrdiff_t>(a.segmentation_first);
      rle.counts.assign(first, first + a.segmentation_size);
      return rle;
    }
    case SegmentationFormat::kCompressedRle:
      return rle_from_string(compressed_rle(annotation_index), image.height, image.width);
    case SegmentationFormat::kNone:
      break;
  }
  return rle_empty(image.height, image.width);
}

std::size_t CocoDataset::memory_bytes() const {
  // Sizes, not capacities: reserved but untouched pages are not resident.
  std::size_t bytes =
      images_.size() * sizeof(CocoImage) + annotations_.size() * sizeof(CocoAnnotation) +
      polygon_coords_.size() * sizeof(double) + polygon_starts_.size() * sizeof(std::uint64_t) +
      rle_counts_.size() * sizeof(std::uint32_t) + compressed_rle_text_.size() +
      image_annotation_starts_.size() * sizeof(std::uint32_t) +
      image_annotation_indices_.size() * sizeof(std::uint32_t);
  for (const CocoImage& image : images_) bytes += image.file_name.capacity();
  // Hash maps: roughly a node (key, value, next pointer, cached hash) per entry plus buckets.
  bytes += (image_index_by_id_.size() + class_index_by_category_id_.size()) * 40;
  return bytes;
}

std::string CocoDataset::to_json() const {
  std::string out;
  out.reserve(annotations_.size() * 256 + images_.size() * 96);
  json::Writer w(out);
  w.begin_object();
  w.key("images").begin_array();
  for (const CocoImage& image : images_) {
    w.begin_object();
    w.key("id").value(image.id);
    w.key("file_name").value(image.file_name);
    w.key("height").value(static_cast<std::int64_t>(image.height));
    w.key("width").value(static_cast<std::int64_t>(image.width));
    const auto write_ids = [&w](const char* key, const std::vector<std::int64_t>& ids) {
      w.key(key).begin_array();
      for (std::int64_t id : ids) w.value(id);
      w.end_array();
    };
    if (image.neg_category_ids) write_ids("neg_category_ids", *image.neg_category_ids);
    if (image.not_exhaustive_category_ids)
      write_ids("not_exhaustive_category_ids", *image.not_exhaustive_category_ids);
    w.end_object();
  }
  w.end_array();
  w.key("annotations").begin_array();
  for (std::size_t i = 0; i < annotations_.size(); ++i) {
    const CocoAnnotation& a = annotations_[i];
    w.begin_object();
    w.key("id").value(a.id);
    w.key("image_id").value(a.image_id);
    w.key("category_id").value(a.category_id);
    w.key("iscrowd").value(static_cast<std::int64_t>(a.iscrowd ? 1 : 0));
    w.key("area").value(a.area);
    w.key("bbox")
        .begin_array()
        .value(a.bbox.x)
        .value(a.bbox.y)
        .value(a.bbox.width)
        .value(a.bbox.height)
        .end_array();
    const CocoImage& image = images_[static_cast<std::size_t>(a.image_index)];
    auto write_mask_size = [&] {
      w.key("size")
          .begin_array()
          .value(static_cast<std::int64_t>(image.height))
          .value(static_cast<std::int64_t>(image.width))
          .end_array();
    };
    switch (a.segmentation_format) {
      case SegmentationFormat::kPolygons:
        w.key("segmentation").begin_array();
        for (const Span<double>& polygon : polygons(i)) {
          w.begin_array();
          for (double v : polygon) w.value(v);
          w.end_array();
        }
        w.end_array();
        break;
      case SegmentationFormat::kRle:
        w.key("segmentation").begin_object();
        write_mask_size();
        w.key("counts").begin_array();
        for (std::uint32_t k = 0; k < a.segmentation_size; ++k) {
          w.value(static_cast<std::int64_t>(rle_counts_[a.segmentation_first + k]));
        }
        w.end_array();
        w.end_object();
        break;
      case SegmentationFormat::kCompressedRle:
        w.key("segmentation").begin_object();
        write_mask_size();
        w.key("counts").value(compressed_rle(i));
        w.end_object();
        break;
      case SegmentationFormat::kNone:
        break;
    }
    w.end_object();
  }
  w.end_array();
  w.key("categories").begin_array();
  for (const CocoCategory& c : categories_) {
    w.begin_object();
    w.key("id").value(c.id);
    w.key("name").value(c.name);
    if (!c.supercategory.empty()) w.key("supercategory").value(c.supercategory);
    if (!c.frequency.empty()) w.key("frequency").value(c.frequency);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  out += '\n';
  return out;
}

void CocoDataset::save(const std::filesystem::path& json_path) const {
  write_file_atomically(json_path, to_json());
}

// ---------------------------------------------------------------------------------------------
// CocoDatasetBuilder

CocoDatasetBuilder::CocoDatasetBuilder(std::string source_name, CocoLoadOptions options,
                                       CocoLoadReport* report)
    : source_name_(std::move(source_name)), options_(options), report_(report) {
  dataset_.polygon_starts_.push_back(0);
}

void CocoDatasetBuilder::warn_or_fail(const std::string& record, const std::string& kind,
                                      const std::string& detail) {
  if (options_.strict) throw InputError(describe_input_problem(source_name_, record, detail));
  if (report_) report_->add(kind, record + ": " + detail);
}

void CocoDatasetBuilder::reserve_for_json_size(std::size_t bytes) {
  // COCO's densest content: a polygon coordinate takes at least ~3 characters ("1, ").
  // In 2 MB pages: fresh 4 KB pages cost a fault each (microseconds on a virtual machine).
  reserve_in_huge_pages(dataset_.polygon_coords_, bytes / 3);
  reserve_in_huge_pages(dataset_.annotations_, bytes / 200);
}

void CocoDatasetBuilder::add_image(CocoImage image) {
  dataset_.images_.push_back(std::move(image));
}

void CocoDatasetBuilder::add_category(CocoCategory category) {
  dataset_.categories_.push_back(std::move(category));
}

void CocoDatasetBuilder::push_annotation(CocoAnnotation meta, SegmentationFormat format,
                                         std::uint64_t first, std::uint32_t size,
                                         std::int32_t mask_height, std::int32_t mask_width) {
  meta.segmentation_format = format;
  meta.segmentation_first = first;
  meta.segmentation_size = size;
  if (format == SegmentationFormat::kRle || format == SegmentationFormat::kCompressedRle) {
    rle_sizes_.push_back(
        {static_cast<std::uint32_t>(dataset_.annotations_.size()), {mask_height, mask_width}});
  }
  dataset_.annotations_.push_back(meta);
}

void CocoDatasetBuilder::add_annotation_polygons(const CocoAnnotation& meta,
                                                 const std::vector<Span<double>>& polygons) {
  const std::uint64_t first = dataset_.polygon_starts_.size() - 1;
  std::uint32_t kept = 0;
  for (std::size_t p = 0; p < polygons.size(); ++p) {
    const Span<double>& polygon = polygons[p];
    if (polygon.size() < 6 || polygon.size() % 2 != 0) {
      warn_or_fail(fmt::format("annotation id {} polygon {}", meta.id, p),
                   "polygons with fewer than 3 points (dropped)",
                   fmt::format("polygon has {} coordinates; at least 3 (x, y) points are needed",
                               polygon.size()));
      continue;
    }
    dataset_.polygon_coords_.insert(dataset_.polygon_coords_.end(), polygon.begin(), polygon.end());
    dataset_.polygon_starts_.push_back(dataset_.polygon_coords_.size());
    ++kept;
  }
  if (kept == 0) {
    warn_or_fail(fmt::format("annotation id {}", meta.id), "annotations without a usable mask",
                 "segmentation holds no polygon with 3 or more points");
    push_annotation(meta, SegmentationFormat::kNone, 0, 0, 0, 0);
    return;
  }
  push_annotation(meta, SegmentationFormat::kPolygons, first, kept, 0, 0);
}

void CocoDatasetBuilder::add_annotation_rle(const CocoAnnotation& meta, const Rle& rle) {
  const std::uint64_t first = dataset_.rle_counts_.size();
  dataset_.rle_counts_.insert(dataset_.rle_counts_.end(), rle.counts.begin(), rle.counts.end());
  push_annotation(meta, SegmentationFormat::kRle, first,
                  static_cast<std::uint32_t>(rle.counts.size()), rle.height, rle.width);
}

void CocoDatasetBuilder::add_annotation_compressed_rle(const CocoAnnotation& meta,
                                                       std::string_view counts, std::int32_t height,
                                                       std::int32_t width) {
  std::string problem = rle_string_problem(counts, height, width);
  if (!problem.empty()) {
    throw InputError(
        describe_input_problem(source_name_, fmt::format("annotation id {}", meta.id),
                               "segmentation.counts: corrupt compressed RLE: " + problem));
  }
  const std::uint64_t first = dataset_.compressed_rle_text_.size();
  dataset_.compressed_rle_text_.append(counts);
  push_annotation(meta, SegmentationFormat::kCompressedRle, first,
                  static_cast<std::uint32_t>(counts.size()), height, width);
}

void CocoDatasetBuilder::add_annotation_without_mask(const CocoAnnotation& meta) {
  push_annotation(meta, SegmentationFormat::kNone, 0, 0, 0, 0);
}

void CocoDatasetBuilder::mark_missing_box_or_area(bool box_missing, bool area_missing) {
  if (!box_missing && !area_missing) return;
  const auto index = static_cast<std::uint32_t>(dataset_.annotations_.size() - 1);
  missing_box_or_area_.push_back(
      {index, static_cast<std::uint8_t>((box_missing ? 1 : 0) | (area_missing ? 2 : 0))});
}

CocoDataset CocoDatasetBuilder::build() && {
  CocoDataset& d = dataset_;
  auto fail = [&](const std::string& record, const std::string& message) {
    throw InputError(describe_input_problem(source_name_, record, message));
  };

  d.image_index_by_id_.reserve(d.images_.size());
  for (std::size_t i = 0; i < d.images_.size(); ++i) {
    const CocoImage& image = d.images_[i];
    const std::string record = fmt::format("images[{}] (id {})", i, image.id);
    if (image.height <= 0 || image.width <= 0) {
      fail(record, fmt::format("height and width must be positive, found {}x{}", image.height,
                               image.width));
    }
    if (static_cast<std::uint64_t>(image.height) * static_cast<std::uint64_t>(image.width) >
        kMaxMaskPixels) {
      fail(record,
           fmt::format("image of {}x{} pixels is larger than COCO masks can describe (2^32 pixels)",
                       image.height, image.width));
    }
    if (!d.image_index_by_id_.emplace(image.id, static_cast<std::int32_t>(i)).second) {
      fail(record, "duplicate image id");
    }
  }

  std::stable_sort(d.categories_.begin(), d.categories_.end(),
                   [](const CocoCategory& a, const CocoCategory& b) { return a.id < b.id; });
  for (std::size_t k = 0; k < d.categories_.size(); ++k) {
    if (!d.class_index_by_category_id_.emplace(d.categories_[k].id, static_cast<std::int32_t>(k))
             .second) {
      fail(fmt::format("categories (id {})", d.categories_[k].id), "duplicate category id");
    }
  }

  std::unordered_set<std::int64_t> annotation_ids;
  annotation_ids.reserve(d.annotations_.size());
  std::vector<std::uint32_t> per_image(d.images_.size() + 1, 0);
  for (std::size_t i = 0; i < d.annotations_.size(); ++i) {
    CocoAnnotation& a = d.annotations_[i];
    const std::string record = fmt::format("annotations[{}] (id {})", i, a.id);
    a.image_index = d.image_index(a.image_id);
    if (a.image_index < 0)
      fail(record, fmt::format("image_id {} is not in \"images\"", a.image_id));
    a.class_index = d.class_index(a.category_id);
    if (a.class_index < 0)
      fail(record, fmt::format("category_id {} is not in \"categories\"", a.category_id));
    if (!annotation_ids.insert(a.id).second) fail(record, "duplicate annotation id");
    ++per_image[static_cast<std::size_t>(a.image_index) + 1];
  }
  for (const auto& [index, size] : rle_sizes_) {
    const CocoAnnotation& a = d.annotations_[index];
    const CocoImage& image = d.images_[static_cast<std::size_t>(a.image_index)];
    if (size.first != image.height || size.second != image.width) {
      fail(fmt::format("annotations[{}] (id {})", index, a.id),
           fmt::format("segmentation.size is [{}, {}] but image {} is {}x{} (height x width)",
                       size.first, size.second, image.id, image.height, image.width));
    }
  }
  for (const auto& [index, missing] : missing_box_or_area_) {
    CocoAnnotation& a = d.annotations_[index];
    const std::string record = fmt::format("annotations[{}] (id {})", index, a.id);
    const Rle rle = d.mask(index);
    if (missing & 1) {
      warn_or_fail(record, "annotations without \"bbox\" (computed from the mask)",
                   "no \"bbox\" field");
      a.bbox = rle_bbox(rle);
    }
    if (missing & 2) {
      warn_or_fail(record, "annotations without \"area\" (computed from the mask)",
                   "no \"area\" field");
      a.area = static_cast<double>(rle_area(rle));
    }
  }

  // Per-image annotation lists (CSR), in file order.
  std::partial_sum(per_image.begin(), per_image.end(), per_image.begin());
  d.image_annotation_starts_ = per_image;
  d.image_annotation_indices_.resize(d.annotations_.size());
  std::vector<std::uint32_t> cursor(per_image.begin(), per_image.end() - 1);
  for (std::size_t i = 0; i < d.annotations_.size(); ++i) {
    const auto img = static_cast<std::size_t>(d.annotations_[i].image_index);
    d.image_annotation_indices_[cursor[img]++] = static_cast<std::uint32_t>(i);
  }
  return std::move(dataset_);
}

}  // namespace centermask
