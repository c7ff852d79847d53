#include "centermask/data/dataset_convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/data/image_io.h"
#include "centermask/structures/rle.h"

namespace centermask {
namespace {

using Polygon = std::vector<double>;  // x0, y0, x1, y1, ...

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& where,
                       const std::string& message) {
  throw InputError(describe_input_problem(file.string(), where, message));
}

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

void require_folder(const std::filesystem::path& folder, const char* what) {
  if (!std::filesystem::is_directory(folder))
    throw InputError(fmt::format("{}: {} is not a folder", folder.string(), what));
}

// The image's size from its header (PNG, JPEG) or, for other formats, by decoding it.
ImageSize size_of_image(const std::filesystem::path& path) {
  std::string problem;
  if (std::optional<ImageSize> size = probe_image_size(path, &problem)) return *size;
  const cv::Mat image = read_image_bgr(path);  // names the file when it does not decode
  return {image.rows, image.cols};
}

// Collects images, categories and annotations into a dataset and the summary: each instance
// from its polygons or mask, bbox and area from the rasterised mask (what COCOeval uses), ids
// from 1, added to the image begun last.
class DatasetAssembler {
 public:
  DatasetAssembler(const std::string& source, const std::vector<std::string>& category_names,
                   ConversionSummary& summary)
      : builder_(source), summary_(summary) {
    for (std::size_t i = 0; i < category_names.size(); ++i) {
      CocoCategory category;
      category.id = static_cast<std::int64_t>(i) + 1;
      category.name = category_names[i];
      builder_.add_category(category);
    }
  }

  void begin_image(const std::string& file_name, ImageSize size) {
    end_image();
    CocoImage image;
    image.id = ++image_count_;
    image.file_name = file_name;
    image.height = size.height;
    image.width = size.width;
    builder_.add_image(image);
    current_ = size;
  }

  /// Polygons that cover no pixel are skipped (counted).
  void add_polygons(std::int64_t category_id, const std::vector<Polygon>& polygons) {
    std::vector<Span<double>> spans;
    for (const Polygon& p : polygons) spans.emplace_back(p.data(), p.size());
    const Rle mask = rle_from_polygons(spans, current_.height, current_.width);
    const std::uint64_t area = rle_area(mask);
    if (area == 0) {
      ++summary_.skipped["shapes that cover no pixel of the image"];
      return;
    }
    builder_.add_annotation_polygons(meta(category_id, mask, area), spans);
  }

  void add_mask(std::int64_t category_id, const Rle& mask) {
    builder_.add_annotation_rle(meta(category_id, mask, rle_area(mask)), mask);
  }

  void skip(const std::string& reason) { ++summary_.skipped[reason]; }

  CocoDataset finish() && {
    end_image();
    return std::move(builder_).build();
  }

 private:
  void end_image() {
    if (image_count_ > 0 && annotation_count_ == annotations_before_image_)
      ++summary_.images_without_annotations;
    annotations_before_image_ = annotation_count_;
  }

  CocoAnnotation meta(std::int64_t category_id, const Rle& mask, std::uint64_t area) {
    CocoAnnotation a;
    a.id = ++annotation_count_;
    a.image_id = image_count_;
    a.category_id = category_id;
    a.bbox = rle_bbox(mask);
    a.area = static_cast<double>(area);
    return a;
  }

  CocoDatasetBuilder builder_;
  ConversionSummary& summary_;
  std::int64_t image_count_ = 0, annotation_count_ = 0, annotations_before_image_ = 0;
  ImageSize current_;
};

// The image files of a folder (not recursive), sorted by name.
std::vector<std::filesystem::path> images_in_folder(const std::filesystem::path& folder) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_regular_file() && has_image_extension(entry.path())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The formats with a folder of images and beside it a folder of one annotation file per image
// (same stem, `extension`; none: an image without objects). `read(file, image, size, out)`
// adds the objects of one file.
template <typename ReadFile>
CocoDataset convert_image_folder(const std::filesystem::path& images_folder,
                                 const std::filesystem::path& annotations_folder,
                                 const char* annotations_what, const char* extension,
                                 const std::vector<std::string>& category_names,
                                 ConversionSummary* summary, const ReadFile& read) {
  require_folder(images_folder, "the images folder");
  require_folder(annotations_folder, annotations_what);
  const std::vector<std::filesystem::path> images = images_in_folder(images_folder);
  if (images.empty()) throw InputError(images_folder.string() + ": no images (jpg, png, bmp)");
  ConversionSummary local;
  DatasetAssembler out(annotations_folder.string(), category_names, summary ? *summary : local);
  for (const auto& image : images) {
    const ImageSize size = size_of_image(image);
    out.begin_image(image.lexically_relative(images_folder).generic_string(), size);
    const std::filesystem::path file = annotations_folder / (image.stem().string() + extension);
    if (std::filesystem::exists(file)) read(file, image, size, out);
  }
  return std::move(out).finish();
}

// ---- labelme ----------------------------------------------------------------------------

struct LabelmeShape {
  std::string label;
  std::string shape_type = "polygon";
  std::vector<std::pair<double, double>> points;
  bool has_group = false;
  std::int64_t group_id = 0;
};

struct LabelmeFile {
  std::string image_path;
  int height = -1, width = -1;
  std::vector<LabelmeShape> shapes;
};

LabelmeFile read_labelme(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  json::Reader r(text, path.string());
  LabelmeFile file;
  if (r.peek() != json::ValueType::kObject) r.fail_type("a labelme object {\"shapes\": ...}");
  r.begin_object();
  std::string_view key;
  bool has_shapes = false;
  while (r.next_key(key)) {
    if (key == "imagePath") {
      file.image_path = std::string(r.read_string());
    } else if (key == "imageHeight" && r.peek() == json::ValueType::kNumber) {
      file.height = static_cast<int>(r.read_int64());
    } else if (key == "imageWidth" && r.peek() == json::ValueType::kNumber) {
      file.width = static_cast<int>(r.read_int64());
    } else if (key == "shapes") {
      has_shapes = true;
      r.begin_array();
      while (r.next_element()) {
        LabelmeShape shape;
        bool has_label = false, has_points = false;
        r.begin_object();
        while (r.next_key(key)) {
          if (key == "label") {
            shape.label = std::string(r.read_string());
            has_label = true;
          } else if (key == "shape_type" && r.peek() == json::ValueType::kString) {
            shape.shape_type = std::string(r.read_string());
          } else if (key == "group_id" && r.peek() == json::ValueType::kNumber) {
            shape.group_id = r.read_int64();
            shape.has_group = true;
          } else if (key == "points") {
            has_points = true;
            r.begin_array();
            while (r.next_element()) {
              std::vector<double> xy;
              r.read_double_array(xy, [] { return std::string("shapes[].points"); });
              if (xy.size() != 2)
                r.fail(fmt::format("shapes[{}].points: a point has {} numbers, expected [x, y]",
                                   file.shapes.size(), xy.size()));
              shape.points.emplace_back(xy[0], xy[1]);
            }
          } else {
            r.skip_value();
          }
        }
        if (!has_label) r.fail(fmt::format("shapes[{}] has no \"label\"", file.shapes.size()));
        if (!has_points) r.fail(fmt::format("shapes[{}] has no \"points\"", file.shapes.size()));
        file.shapes.push_back(std::move(shape));
      }
    } else {
      r.skip_value();  // imageData (the picture in base64), flags, version, ...
    }
  }
  r.expect_end();
  if (!has_shapes) fail(path, "", "has no \"shapes\": is this a labelme file?");
  if (file.image_path.empty()) fail(path, "imagePath", "is missing or empty");
  return file;
}

// The labelme shape as a polygon, or an empty one with `skip_reason` set.
Polygon labelme_polygon(const LabelmeShape& shape, std::string* skip_reason) {
  Polygon polygon;
  const auto& p = shape.points;
  if (shape.shape_type == "polygon") {
    if (p.size() < 3) {
      *skip_reason = "labelme polygons with fewer than 3 points";
      return {};
    }
    for (const auto& [x, y] : p) polygon.insert(polygon.end(), {x, y});
  } else if (shape.shape_type == "rectangle") {
    if (p.size() != 2) {
      *skip_reason = "labelme rectangles without 2 points";
      return {};
    }
    const double x0 = std::min(p[0].first, p[1].first), x1 = std::max(p[0].first, p[1].first);
    const double y0 = std::min(p[0].second, p[1].second), y1 = std::max(p[0].second, p[1].second);
    polygon = {x0, y0, x1, y0, x1, y1, x0, y1};
  } else if (shape.shape_type == "circle") {
    if (p.size() != 2) {
      *skip_reason = "labelme circles without 2 points";
      return {};
    }
    const double radius = std::hypot(p[1].first - p[0].first, p[1].second - p[0].second);
    constexpr int kSides = 64;
    for (int i = 0; i < kSides; ++i) {
      const double angle = 2 * M_PI * i / kSides;
      polygon.push_back(p[0].first + radius * std::cos(angle));
      polygon.push_back(p[0].second + radius * std::sin(angle));
    }
  } else {
    *skip_reason = fmt::format("labelme shape_type '{}' (not an area)", shape.shape_type);
    return {};
  }
  return polygon;
}

bool is_ignored_label(const std::string& label) {
  return label == "__ignore__" || label == "_background_";
}

// ---- YOLO ----------------------------------------------------------------------------------

std::vector<std::string> split_whitespace(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> tokens;
  for (std::string t; in >> t;) tokens.push_back(t);
  return tokens;
}

double parse_number(const std::string& token, const std::filesystem::path& file,
                    const std::string& where) {
  char* end = nullptr;
  const double value = std::strtod(token.c_str(), &end);
  if (end == token.c_str() || *end != '\0' || !std::isfinite(value))
    fail(file, where, fmt::format("'{}' is not a number", token));
  return value;
}

// ---- instance PNGs -------------------------------------------------------------------------

// One integer per pixel: the grey value, or a colour's 24 bits.
cv::Mat instance_keys(const cv::Mat& mask, const std::filesystem::path& file) {
  cv::Mat keys;
  if (mask.channels() == 1) {
    if (mask.depth() != CV_8U && mask.depth() != CV_16U)
      fail(file, "", "expected an 8- or 16-bit instance-id PNG");
    mask.convertTo(keys, CV_32S);
    return keys;
  }
  if (mask.depth() != CV_8U) fail(file, "", "expected an 8-bit colour PNG");
  keys.create(mask.rows, mask.cols, CV_32S);
  for (int y = 0; y < mask.rows; ++y) {
    const std::uint8_t* row = mask.ptr<std::uint8_t>(y);
    std::int32_t* out = keys.ptr<std::int32_t>(y);
    const int channels = mask.channels();
    for (int x = 0; x < mask.cols; ++x) {
      const std::uint8_t* px = row + x * channels;
      out[x] = px[0] | (px[1] << 8) | (px[2] << 16);  // alpha, if any, is not part of the id
    }
  }
  return keys;
}

}  // namespace

CocoDataset convert_labelme(const std::filesystem::path& folder,
                            const std::vector<std::string>& class_names,
                            ConversionSummary* summary) {
  require_folder(folder, "the labelme folder");
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw InputError(folder.string() + ": no labelme .json files");
  std::vector<LabelmeFile> parsed;
  std::set<std::string> labels;
  for (const auto& path : files) {
    parsed.push_back(read_labelme(path));
    for (const LabelmeShape& s : parsed.back().shapes)
      if (!is_ignored_label(s.label)) labels.insert(s.label);
  }
  std::vector<std::string> names = class_names;
  if (names.empty()) names.assign(labels.begin(), labels.end());
  std::map<std::string, std::int64_t> category_of;
  for (std::size_t i = 0; i < names.size(); ++i)
    category_of[names[i]] = static_cast<std::int64_t>(i) + 1;

  ConversionSummary local;
  DatasetAssembler out(folder.string(), names, summary ? *summary : local);
  for (std::size_t f = 0; f < files.size(); ++f) {
    const LabelmeFile& file = parsed[f];
    std::string image_path = file.image_path;
    std::replace(image_path.begin(), image_path.end(), '\\', '/');  // written on Windows
    const std::filesystem::path relative = std::filesystem::path(image_path).lexically_normal();
    ImageSize size{file.height, file.width};
    if (size.height <= 0 || size.width <= 0) {
      const std::filesystem::path image = folder / relative;
      if (!std::filesystem::exists(image))
        fail(files[f], "imagePath",
             fmt::format("'{}' does not exist and the file has no imageHeight/imageWidth",
                         image.string()));
      size = size_of_image(image);
    }
    out.begin_image(relative.generic_string(), size);
    // Shapes of one label and group_id are one instance; the rest one each, in file order.
    std::vector<std::pair<std::string, std::vector<Polygon>>> instances;
    std::map<std::pair<std::string, std::int64_t>, std::size_t> group_index;
    for (std::size_t k = 0; k < file.shapes.size(); ++k) {
      const LabelmeShape& shape = file.shapes[k];
      if (is_ignored_label(shape.label)) {
        out.skip(fmt::format("labelme label '{}'", shape.label));
        continue;
      }
      if (!category_of.count(shape.label))
        fail(files[f], fmt::format("shapes[{}].label", k),
             fmt::format("'{}' is not one of the classes given ({})", shape.label,
                         fmt::join(names, ", ")));
      std::string reason;
      Polygon polygon = labelme_polygon(shape, &reason);
      if (polygon.empty()) {
        out.skip(reason);
        continue;
      }
      if (shape.has_group) {
        const auto key = std::make_pair(shape.label, shape.group_id);
        auto it = group_index.find(key);
        if (it != group_index.end()) {
          instances[it->second].second.push_back(std::move(polygon));
          continue;
        }
        group_index[key] = instances.size();
      }
      instances.push_back({shape.label, {std::move(polygon)}});
    }
    for (const auto& [label, polygons] : instances) out.add_polygons(category_of[label], polygons);
  }
  return std::move(out).finish();
}

CocoDataset convert_yolo_segmentation(const std::filesystem::path& images_folder,
                                      const std::filesystem::path& labels_folder,
                                      const std::vector<std::string>& class_names,
                                      ConversionSummary* summary) {
  if (class_names.empty())
    throw InputError("yolo-seg: the class names are needed (--classes: classes.txt or data.yaml)");
  auto read = [&](const std::filesystem::path& label_file, const std::filesystem::path&,
                  ImageSize size, DatasetAssembler& out) {
    std::ifstream in(label_file);
    if (!in) throw InputError(label_file.string() + ": cannot be read");
    std::string line;
    for (int line_number = 1; std::getline(in, line); ++line_number) {
      const std::vector<std::string> tokens = split_whitespace(line);
      if (tokens.empty()) continue;
      const std::string where = fmt::format("line {}", line_number);
      const double class_value = parse_number(tokens[0], label_file, where);
      if (class_value < 0 || class_value != std::floor(class_value) ||
          class_value >= static_cast<double>(class_names.size()))
        fail(label_file, where,
             fmt::format("class {} is not in 0..{} ({} class names given)", tokens[0],
                         class_names.size() - 1, class_names.size()));
      if (tokens.size() == 5)
        fail(label_file, where,
             "is a box (class cx cy w h), not a polygon: yolo-seg needs segmentation labels "
             "(class x1 y1 x2 y2 ...)");
      if (tokens.size() % 2 == 0 || tokens.size() < 7)
        fail(label_file, where,
             fmt::format("has {} coordinates; a polygon needs an even number, at least 6",
                         tokens.size() - 1));
      Polygon polygon;
      for (std::size_t t = 1; t < tokens.size(); ++t) {
        const double v = parse_number(tokens[t], label_file, where);
        if (v < -1e-6 || v > 1 + 1e-6)
          fail(label_file, where,
               fmt::format("coordinate {} is outside [0, 1]: YOLO coordinates are fractions of "
                           "the image's width and height",
                           tokens[t]));
        polygon.push_back(v * (t % 2 == 1 ? size.width : size.height));
      }
      out.add_polygons(static_cast<std::int64_t>(class_value) + 1, {polygon});
    }
  };
  return convert_image_folder(images_folder, labels_folder, "the labels folder", ".txt",
                              class_names, summary, read);
}

CocoDataset convert_instance_pngs(const std::filesystem::path& images_folder,
                                  const std::filesystem::path& masks_folder,
                                  const InstancePngOptions& options, ConversionSummary* summary) {
  // Categories: the names by value (sorted by value), or one class.
  std::vector<std::string> names;
  std::map<std::int64_t, std::int64_t> category_of_value;
  if (options.class_names_by_value.empty()) {
    names.push_back(options.single_class_name);
  } else {
    for (const auto& [value, name] : options.class_names_by_value) {
      auto existing = std::find(names.begin(), names.end(), name);
      if (existing == names.end()) {
        names.push_back(name);
        existing = names.end() - 1;
      }
      category_of_value[value] = (existing - names.begin()) + 1;
    }
  }
  auto read = [&](const std::filesystem::path& mask_file, const std::filesystem::path& image,
                  ImageSize size, DatasetAssembler& out) {
    const cv::Mat mask = cv::imread(mask_file.string(), cv::IMREAD_UNCHANGED);
    if (mask.empty()) fail(mask_file, "", "does not decode as a PNG");
    if (mask.rows != size.height || mask.cols != size.width)
      fail(mask_file, "",
           fmt::format("is {}x{} but its image {} is {}x{} (height x width)", mask.rows, mask.cols,
                       image.filename().string(), size.height, size.width));
    const cv::Mat keys = instance_keys(mask, mask_file);
    const bool colour = mask.channels() > 1;
    std::set<std::int32_t> values;
    for (int y = 0; y < keys.rows; ++y) {
      const std::int32_t* row = keys.ptr<std::int32_t>(y);
      for (int x = 0; x < keys.cols; ++x)
        if (row[x] != 0 && row[x] != options.ignore_value) values.insert(row[x]);
    }
    std::vector<std::uint8_t> bitmap(static_cast<std::size_t>(keys.rows) *
                                     static_cast<std::size_t>(keys.cols));
    for (std::int32_t value : values) {
      std::int64_t category = 1;
      if (!colour) {
        std::int64_t class_value = value;
        if (options.id_divisor > 0) {
          class_value = value / options.id_divisor;
          if (class_value == 0) {
            out.skip("values below --id-divisor (regions, not instances)");
            continue;
          }
        }
        if (!category_of_value.empty()) {
          auto it = category_of_value.find(class_value);
          if (it == category_of_value.end())
            fail(mask_file, fmt::format("value {}", value),
                 fmt::format("class value {} has no name in the class map", class_value));
          category = it->second;
        }
      } else if (!category_of_value.empty()) {
        fail(mask_file, "", "is a colour PNG: a class map applies to instance-id values only");
      }
      for (int y = 0; y < keys.rows; ++y) {
        const std::int32_t* row = keys.ptr<std::int32_t>(y);
        std::uint8_t* out_row = bitmap.data() + static_cast<std::size_t>(y) * keys.cols;
        for (int x = 0; x < keys.cols; ++x) out_row[x] = row[x] == value ? 1 : 0;
      }
      out.add_mask(category, rle_encode(bitmap.data(), keys.rows, keys.cols,
                                        static_cast<std::size_t>(keys.cols)));
    }
  };
  return convert_image_folder(images_folder, masks_folder, "the masks folder", ".png", names,
                              summary, read);
}

DatasetSplit split_every_nth(const CocoDataset& dataset, int val_every) {
  if (val_every < 2)
    throw InputError(
        fmt::format("a validation split takes every N-th image, N >= 2; got {}", val_every));
  std::vector<std::size_t> order(dataset.images().size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return dataset.images()[a].file_name < dataset.images()[b].file_name;
  });
  std::vector<bool> to_val(order.size(), false);
  for (std::size_t rank = 0; rank < order.size(); ++rank)
    to_val[order[rank]] =
        rank % static_cast<std::size_t>(val_every) == static_cast<std::size_t>(val_every) - 1;
  CocoDatasetBuilder builders[2] = {CocoDatasetBuilder("train split"),
                                    CocoDatasetBuilder("validation split")};
  for (CocoDatasetBuilder& builder : builders)
    for (const CocoCategory& category : dataset.categories()) builder.add_category(category);
  for (std::size_t i = 0; i < dataset.images().size(); ++i)
    builders[to_val[i] ? 1 : 0].add_image(dataset.images()[i]);
  for (std::size_t a = 0; a < dataset.annotations().size(); ++a) {
    const CocoAnnotation& meta = dataset.annotations()[a];
    CocoDatasetBuilder& builder = builders[to_val[static_cast<std::size_t>(meta.image_index)]];
    switch (meta.segmentation_format) {
      case SegmentationFormat::kPolygons:
        builder.add_annotation_polygons(meta, dataset.polygons(a));
        break;
      case SegmentationFormat::kRle:
        builder.add_annotation_rle(meta, dataset.mask(a));
        break;
      case SegmentationFormat::kCompressedRle: {
        const CocoImage& image = dataset.images()[static_cast<std::size_t>(meta.image_index)];
        builder.add_annotation_compressed_rle(meta, dataset.compressed_rle(a), image.height,
                                              image.width);
        break;
      }
      case SegmentationFormat::kNone:
        builder.add_annotation_without_mask(meta);
        break;
    }
  }
  return {std::move(builders[0]).build(), std::move(builders[1]).build()};
}

}  // namespace centermask
