// make_shapes_coco: writes a synthetic COCO instance-segmentation dataset ("hard shapes") that is
// deliberately unlike `centermask synth`, to check that a training recipe carries over to
// somebody else's data: three aspect ratios, JPEG, coloured-noise backgrounds, flat random
// colours unrelated to the class, heavy (also same-class) occlusion, rings with holes, and a
// mix of polygon and uncompressed-RLE segmentations as real COCO files have.
//
//   make_shapes_coco --out DIR [--train N] [--val N] [--seed S] [--side N]
//                    [--min-objects N] [--max-objects N] [--min-extent F] [--max-extent F]
//                    [--overwrite]
//
// Writes DIR/train.json, DIR/val.json, DIR/train/*.jpg and DIR/val/*.jpg. Every image is a pure
// function of (seed, split, index), so a set can be regenerated, or one image of it inspected,
// without the rest.

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace centermask::bench {
namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;
constexpr int kNumClasses = 5;
constexpr std::array<const char*, kNumClasses> kClassNames = {"ellipse", "rectangle", "ring",
                                                              "triangle", "lshape"};
constexpr int kRingCategory = 3;  // category ids are 1-based: kClassNames[id - 1]

// Occlusion and visibility rules of the set.
constexpr double kOverlapProbability = 0.5;
constexpr double kSameClassProbability = 0.5;
constexpr double kMinVisibleFraction = 0.2;
constexpr int kMinVisiblePixels = 30;
constexpr int kJpegQuality = 90;
// Polygons are filled in fixed point so that vertices keep sub-pixel precision.
constexpr int kFillShift = 4;

struct Options {
  fs::path out;
  int train = 2000;
  int val = 200;
  std::uint64_t seed = 0;
  int side = 320;
  int min_objects = 2;
  int max_objects = 8;
  double min_extent = 0.12;
  double max_extent = 0.38;
  bool overwrite = false;
};

/// Bad command line: main prints the message and the usage line and exits with 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
/// A file or folder could not be read or written: main prints the message and exits with 1.
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Random numbers. Distributions are computed here from the raw engine output rather than with
// <random>'s distributions, whose algorithms the standard leaves to the library: this way a
// seed gives the same data with any standard library.

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Seed of one image; nearby (seed, split, index) triples give unrelated streams.
std::uint64_t image_seed(std::uint64_t seed, std::uint64_t split, std::uint64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) + split) + index);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t bits() { return engine_(); }
  /// Uniform in [0, 1), 53 random bits.
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit(); }
  /// Uniform integer in [lo, hi]; the modulo bias is below 2^-50 for the ranges used here.
  int integer(int lo, int hi) {
    const auto span = static_cast<std::uint64_t>(static_cast<std::int64_t>(hi) - lo + 1);
    return lo + static_cast<int>(engine_() % span);
  }
  bool chance(double p) { return unit() < p; }

 private:
  std::mt19937_64 engine_;
};

// ---------------------------------------------------------------------------------------------
// Shapes.

/// One object in image coordinates: an outer polygon, minus an inner one for rings.
struct Object {
  int category = 0;
  cv::Point2d center;
  double radius = 0;  ///< half the larger side of the (unoccluded) bounding box
  std::vector<cv::Point2d> outer;
  std::vector<cv::Point2d> inner;
  cv::Scalar color;
};

std::vector<cv::Point2d> unit_ellipse(double scale) {
  constexpr int kPoints = 96;
  std::vector<cv::Point2d> points;
  points.reserve(kPoints);
  for (int i = 0; i < kPoints; ++i) {
    const double t = 2 * kPi * i / kPoints;
    points.emplace_back(scale * std::cos(t), scale * std::sin(t));
  }
  return points;
}

/// The class's outline in a unit frame (about [-1, 1]^2), with its own random proportions.
/// Stretch, rotation and size are applied afterwards, the same way for every class.
void unit_outline(int category, Rng& rng, std::vector<cv::Point2d>& outer,
                  std::vector<cv::Point2d>& inner) {
  switch (category) {
    case 1:  // ellipse
      outer = unit_ellipse(1.0);
      break;
    case 2:  // rectangle
      outer = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
      break;
    case 3:  // ring: concentric ellipses, so the stretch below keeps the hole centred
      outer = unit_ellipse(1.0);
      inner = unit_ellipse(rng.uniform(0.4, 0.65));
      break;
    case 4: {  // triangle with its apex anywhere above the base: acute, right or obtuse
      const double apex = rng.uniform(-0.9, 0.9);
      outer = {{-1, 1}, {1, 1}, {apex, -1}};
      break;
    }
    default: {  // L shape: a square minus one corner; arms 0.3-0.6 of the side thick
      const double tx = rng.uniform(-0.4, 0.2), ty = rng.uniform(-0.4, 0.2);
      outer = {{-1, -1}, {tx, -1}, {tx, ty}, {1, ty}, {1, 1}, {-1, 1}};
      break;
    }
  }
}

/// A random instance of `category`: stretched, rotated, scaled so that the larger side of its
/// bounding box is `extent` pixels, with that box centred on `center`.
Object make_object(int category, cv::Point2d center, double extent, Rng& rng) {
  Object o;
  o.category = category;
  o.center = center;
  o.radius = extent / 2;
  unit_outline(category, rng, o.outer, o.inner);

  const double stretch = rng.uniform(0.4, 1.0);
  const double angle = rng.uniform(0, 2 * kPi);
  const double c = std::cos(angle), s = std::sin(angle);
  const auto transform = [&](std::vector<cv::Point2d>& points) {
    for (cv::Point2d& p : points) {
      const double y = p.y * stretch;
      p = {c * p.x - s * y, s * p.x + c * y};
    }
  };
  transform(o.outer);
  transform(o.inner);

  // The outer outline bounds the shape (the inner one only removes), so it alone sets the box.
  double x0 = o.outer[0].x, x1 = x0, y0 = o.outer[0].y, y1 = y0;
  for (const cv::Point2d& p : o.outer) {
    x0 = std::min(x0, p.x);
    x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y);
    y1 = std::max(y1, p.y);
  }
  const double scale = extent / std::max(x1 - x0, y1 - y0);
  const cv::Point2d box_center((x0 + x1) / 2, (y0 + y1) / 2);
  for (auto* points : {&o.outer, &o.inner}) {
    for (cv::Point2d& p : *points) p = (p - box_center) * scale + center;
  }

  // Flat colour independent of the class: the class must be told by shape alone.
  cv::Mat hsv(1, 1, CV_8UC3,
              cv::Scalar(rng.integer(0, 179), rng.integer(80, 255), rng.integer(80, 255)));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b v = bgr.at<cv::Vec3b>(0, 0);
  o.color = cv::Scalar(v[0], v[1], v[2]);
  return o;
}

void fill_polygon(cv::Mat& mask, const std::vector<cv::Point2d>& polygon, int value) {
  std::vector<cv::Point> fixed;
  fixed.reserve(polygon.size());
  constexpr double kOne = 1 << kFillShift;
  for (const cv::Point2d& p : polygon) {
    fixed.emplace_back(static_cast<int>(std::lround(p.x * kOne)),
                       static_cast<int>(std::lround(p.y * kOne)));
  }
  const std::vector<std::vector<cv::Point>> polygons{fixed};
  cv::fillPoly(mask, polygons, cv::Scalar(value), cv::LINE_8, kFillShift);
}

/// The object's full (unoccluded) mask inside the image, 255 on the object.
cv::Mat full_mask(const Object& o, cv::Size size) {
  cv::Mat mask = cv::Mat::zeros(size, CV_8U);
  fill_polygon(mask, o.outer, 255);
  if (!o.inner.empty()) fill_polygon(mask, o.inner, 0);
  return mask;
}

// ---------------------------------------------------------------------------------------------
// Images.

struct Instance {
  int category = 0;
  cv::Mat visible;  ///< CV_8U, 255 where this object is what the image shows
};

struct GeneratedImage {
  cv::Mat image;  ///< CV_8UC3, BGR
  std::vector<Instance> instances;
  int dropped = 0;  ///< objects left out because too little of them would be visible
};

/// Background: per-pixel uniform colour noise, blurred so that it has some spatial structure.
cv::Mat noise_background(cv::Size size, Rng& rng) {
  cv::Mat image(size, CV_8UC3);
  // A fresh Mat is continuous; fill it 8 bytes per draw.
  std::uint8_t* data = image.ptr<std::uint8_t>();
  const std::size_t n = image.total() * image.elemSize();
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t r = rng.bits();
    for (std::size_t j = i; j < std::min(n, i + 8); ++j, r >>= 8) {
      data[j] = static_cast<std::uint8_t>(r & 0xFF);
    }
  }
  cv::GaussianBlur(image, image, cv::Size(0, 0), rng.uniform(0.8, 2.5));
  return image;
}

GeneratedImage generate_image(const Options& options, std::uint64_t seed) {
  Rng rng(seed);
  // Three aspect ratios; the height is always `side`.
  constexpr std::array<double, 3> kAspects = {1.0, 1.25, 0.8};
  const int height = options.side;
  const int width = static_cast<int>(std::lround(
      options.side *
      kAspects[static_cast<std::size_t>(rng.integer(0, static_cast<int>(kAspects.size()) - 1))]));
  const cv::Size size(width, height);
  const double short_side = std::min(width, height);

  // Objects in paint order, back to front.
  std::vector<Object> objects;
  const int count = rng.integer(options.min_objects, options.max_objects);
  for (int k = 0; k < count; ++k) {
    const double extent = rng.uniform(options.min_extent, options.max_extent) * short_side;
    if (!objects.empty() && rng.chance(kOverlapProbability)) {
      // On top of an earlier object, near enough to hide a good part of it.
      const Object& below =
          objects[static_cast<std::size_t>(rng.integer(0, static_cast<int>(objects.size()) - 1))];
      int category = below.category;
      if (!rng.chance(kSameClassProbability)) {
        // Any other class: shift by 1..4 places around the cycle of the 5 classes.
        category = (below.category - 1 + rng.integer(1, kNumClasses - 1)) % kNumClasses + 1;
      }
      const double distance = rng.uniform(0.3, 1.0) * below.radius;
      const double direction = rng.uniform(0, 2 * kPi);
      cv::Point2d center =
          below.center + distance * cv::Point2d(std::cos(direction), std::sin(direction));
      center.x = std::clamp(center.x, 0.0, width - 1.0);
      center.y = std::clamp(center.y, 0.0, height - 1.0);
      objects.push_back(make_object(category, center, extent, rng));
    } else {
      // Anywhere, with at most a quarter of the box's side past the border.
      const double margin = extent / 4;
      const cv::Point2d center(rng.uniform(margin, width - margin),
                               rng.uniform(margin, height - margin));
      objects.push_back(make_object(rng.integer(1, kNumClasses), center, extent, rng));
    }
  }

  // Visibility front to back: what an object shows depends only on the objects in front of
  // it, so one pass decides every drop exactly, and a dropped object then hides nothing.
  std::vector<cv::Mat> full(objects.size()), visible(objects.size());
  std::vector<bool> keep(objects.size(), false);
  cv::Mat covered = cv::Mat::zeros(size, CV_8U);
  GeneratedImage out;
  for (std::size_t k = objects.size(); k-- > 0;) {
    full[k] = full_mask(objects[k], size);
    visible[k] = full[k].clone();
    visible[k].setTo(0, covered);
    const int full_area = cv::countNonZero(full[k]);
    const int visible_area = cv::countNonZero(visible[k]);
    if (visible_area < kMinVisiblePixels || visible_area < kMinVisibleFraction * full_area) {
      ++out.dropped;
      continue;
    }
    keep[k] = true;
    covered.setTo(255, full[k]);
  }

  // Paint back to front; annotations keep the same order.
  out.image = noise_background(size, rng);
  for (std::size_t k = 0; k < objects.size(); ++k) {
    if (!keep[k]) continue;
    out.image.setTo(objects[k].color, full[k]);
    out.instances.push_back({objects[k].category, visible[k]});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Annotations.

struct SplitStats {
  int images = 0;
  int instances = 0;
  std::array<int, kNumClasses> per_class{};
  int with_holes = 0;
  int rle = 0;
  int polygons = 0;
  int dropped = 0;
};

/// COCO's uncompressed RLE: column-major runs, alternating 0 and 1, starting with zeros.
std::vector<std::uint32_t> column_major_runs(const cv::Mat& mask) {
  cv::Mat columns;
  cv::transpose(mask, columns);  // now each row is an image column, and the Mat is continuous
  std::vector<std::uint32_t> counts;
  const std::uint8_t* p = columns.ptr<std::uint8_t>();
  const std::size_t n = columns.total();
  bool on = false;
  std::uint32_t run = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if ((p[i] != 0) != on) {
      counts.push_back(run);
      run = 0;
      on = !on;
    }
    ++run;
  }
  counts.push_back(run);
  return counts;
}

/// Appends one annotation record (no trailing comma or newline) and counts it in `stats`.
void append_annotation(fmt::memory_buffer& json, std::int64_t id, std::int64_t image_id,
                       const Instance& instance, SplitStats& stats) {
  const cv::Mat& mask = instance.visible;
  std::vector<std::vector<cv::Point>> contours;
  std::vector<cv::Vec4i> hierarchy;
  cv::findContours(mask, contours, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_SIMPLE);
  // With RETR_CCOMP a contour with a parent is the boundary of a hole.
  bool has_holes = false;
  for (const cv::Vec4i& h : hierarchy) has_holes = has_holes || h[3] >= 0;

  auto it = std::back_inserter(json);
  fmt::format_to(it, R"({{"id": {}, "image_id": {}, "category_id": {}, "segmentation": )", id,
                 image_id, instance.category);
  // Polygons cannot express holes; rings are RLE even when occlusion happens to open the hole.
  bool as_rle = has_holes || instance.category == kRingCategory;
  if (!as_rle) {
    std::size_t written = 0;
    for (std::size_t i = 0; i < contours.size(); ++i) {
      if (hierarchy[i][3] >= 0 || contours[i].size() < 3) continue;
      fmt::format_to(it, "{}[", written == 0 ? "[" : ", ");
      for (std::size_t j = 0; j < contours[i].size(); ++j) {
        fmt::format_to(it, "{}{:.1f}, {:.1f}", j == 0 ? "" : ", ",
                       static_cast<double>(contours[i][j].x),
                       static_cast<double>(contours[i][j].y));
      }
      fmt::format_to(it, "]");
      ++written;
    }
    if (written > 0) {
      fmt::format_to(it, "]");
      ++stats.polygons;
    } else {
      // Nothing has been written for the segmentation yet, so RLE can take its place.
      as_rle = true;
    }
  }
  if (as_rle) {
    fmt::format_to(it, R"({{"size": [{}, {}], "counts": [)", mask.rows, mask.cols);
    const std::vector<std::uint32_t> counts = column_major_runs(mask);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      fmt::format_to(it, "{}{}", i == 0 ? "" : ", ", counts[i]);
    }
    fmt::format_to(it, "]}}");
    ++stats.rle;
  }

  const cv::Rect box = cv::boundingRect(mask);
  fmt::format_to(
      it, R"(, "area": {:.1f}, "bbox": [{:.1f}, {:.1f}, {:.1f}, {:.1f}], "iscrowd": 0}})",
      static_cast<double>(cv::countNonZero(mask)), static_cast<double>(box.x),
      static_cast<double>(box.y), static_cast<double>(box.width), static_cast<double>(box.height));

  ++stats.instances;
  ++stats.per_class[static_cast<std::size_t>(instance.category - 1)];
  if (has_holes) ++stats.with_holes;
}

// ---------------------------------------------------------------------------------------------
// Files. Each file is written under a temporary name and renamed into place, so that an
// interrupted run never leaves a truncated file under a final name.

void write_file_atomically(const fs::path& path, const char* data, std::size_t size) {
  fs::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw IoError(fmt::format("{}: cannot open for writing", temporary.string()));
    file.write(data, static_cast<std::streamsize>(size));
    file.close();
    if (!file) throw IoError(fmt::format("{}: write failed", temporary.string()));
  }
  std::error_code ec;
  fs::rename(temporary, path, ec);
  if (ec) {
    throw IoError(fmt::format("{}: cannot rename to {}: {}", temporary.string(), path.string(),
                              ec.message()));
  }
}

/// Makes `out` ready: refuses a non-empty folder unless --overwrite, in which case only what
/// this program writes there (train/, val/, train.json, val.json) is removed.
void prepare_output(const Options& options) {
  std::error_code ec;
  const fs::path& out = options.out;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw IoError(fmt::format("{}: not a folder", out.string()));
    if (!fs::is_empty(out, ec)) {
      if (!options.overwrite) {
        throw IoError(
            fmt::format("{}: folder exists and is not empty (pass --overwrite to "
                        "replace the dataset in it)",
                        out.string()));
      }
      for (const char* name : {"train", "val", "train.json", "val.json"}) {
        fs::remove_all(out / name, ec);
        if (ec)
          throw IoError(fmt::format("{}: cannot remove: {}", (out / name).string(), ec.message()));
      }
    }
  }
  for (const char* name : {"train", "val"}) {
    fs::create_directories(out / name, ec);
    if (ec) {
      throw IoError(
          fmt::format("{}: cannot create folder: {}", (out / name).string(), ec.message()));
    }
  }
}

SplitStats write_split(const Options& options, const std::string& split, std::uint64_t stream,
                       int num_images) {
  SplitStats stats;
  const fs::path image_dir = options.out / split;
  fmt::memory_buffer images_json, annotations_json;
  std::int64_t annotation_id = 0;
  std::vector<int> jpeg_params = {cv::IMWRITE_JPEG_QUALITY, kJpegQuality};
  std::vector<std::uint8_t> jpeg;
  for (int index = 0; index < num_images; ++index) {
    const std::int64_t image_id = index + 1;
    const GeneratedImage g = generate_image(
        options, image_seed(options.seed, stream, static_cast<std::uint64_t>(index)));
    const std::string file_name = fmt::format("{:06d}.jpg", image_id);
    if (!cv::imencode(".jpg", g.image, jpeg, jpeg_params)) {
      throw IoError(fmt::format("{}: JPEG encoding failed", (image_dir / file_name).string()));
    }
    write_file_atomically(image_dir / file_name, reinterpret_cast<const char*>(jpeg.data()),
                          jpeg.size());

    fmt::format_to(std::back_inserter(images_json),
                   R"({}{{"id": {}, "file_name": "{}", "height": {}, "width": {}}})",
                   index == 0 ? "" : ",\n", image_id, file_name, g.image.rows, g.image.cols);
    for (const Instance& instance : g.instances) {
      if (annotation_id > 0) fmt::format_to(std::back_inserter(annotations_json), ",\n");
      append_annotation(annotations_json, ++annotation_id, image_id, instance, stats);
    }
    ++stats.images;
    stats.dropped += g.dropped;
  }

  fmt::memory_buffer json;
  auto it = std::back_inserter(json);
  fmt::format_to(it,
                 R"({{"info": {{"description": "make_shapes_coco hard shapes, {} split", )"
                 R"("version": "1.0", "seed": {}, "side": {}}},)"
                 "\n\"licenses\": [],\n\"images\": [\n",
                 split, options.seed, options.side);
  json.append(images_json);
  fmt::format_to(it, "\n],\n\"annotations\": [\n");
  json.append(annotations_json);
  fmt::format_to(it, "\n],\n\"categories\": [\n");
  for (int c = 0; c < kNumClasses; ++c) {
    fmt::format_to(it, R"({}{{"id": {}, "name": "{}", "supercategory": "shape"}})",
                   c == 0 ? "" : ",\n", c + 1, kClassNames[static_cast<std::size_t>(c)]);
  }
  fmt::format_to(it, "\n]}}\n");
  write_file_atomically(options.out / (split + ".json"), json.data(), json.size());
  return stats;
}

void print_summary(const std::string& split, const SplitStats& s, double seconds) {
  fmt::print("{}: {} images, {} instances ({:.2f} per image, {} objects dropped as hidden)\n",
             split, s.images, s.instances,
             s.images > 0 ? static_cast<double>(s.instances) / s.images : 0.0, s.dropped);
  fmt::print("  per class:");
  for (std::size_t c = 0; c < kNumClasses; ++c) {
    fmt::print(" {} {}{}", kClassNames[c], s.per_class[c], c + 1 < kNumClasses ? "," : "\n");
  }
  fmt::print("  masks with holes {}; written as RLE {}, as polygons {}; {:.1f} s\n", s.with_holes,
             s.rle, s.polygons, seconds);
}

// ---------------------------------------------------------------------------------------------
// Command line.

constexpr const char* kUsage =
    "usage: make_shapes_coco --out DIR [--train N] [--val N] [--seed S] [--side N]\n"
    "                        [--min-objects N] [--max-objects N] [--min-extent F]\n"
    "                        [--max-extent F] [--overwrite]\n";

template <typename Int>
Int parse_int(std::string_view option, std::string_view text) {
  Int value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    throw UsageError(fmt::format("{}: '{}' is not a valid integer", option, text));
  }
  return value;
}

double parse_double(std::string_view option, const char* text) {
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(value)) {
    throw UsageError(fmt::format("{}: '{}' is not a valid number", option, text));
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  bool have_out = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") throw UsageError("");
    if (arg == "--overwrite") {
      o.overwrite = true;
      continue;
    }
    if (i + 1 >= argc)
      throw UsageError(fmt::format("{}: unknown option, or its value is missing", arg));
    const char* value = argv[++i];
    if (arg == "--out") {
      o.out = value;
      have_out = *value != '\0';
    } else if (arg == "--train") {
      o.train = parse_int<int>(arg, value);
    } else if (arg == "--val") {
      o.val = parse_int<int>(arg, value);
    } else if (arg == "--seed") {
      o.seed = parse_int<std::uint64_t>(arg, value);
    } else if (arg == "--side") {
      o.side = parse_int<int>(arg, value);
    } else if (arg == "--min-objects") {
      o.min_objects = parse_int<int>(arg, value);
    } else if (arg == "--max-objects") {
      o.max_objects = parse_int<int>(arg, value);
    } else if (arg == "--min-extent") {
      o.min_extent = parse_double(arg, value);
    } else if (arg == "--max-extent") {
      o.max_extent = parse_double(arg, value);
    } else {
      throw UsageError(fmt::format("{}: unknown option", arg));
    }
  }
  if (!have_out) throw UsageError("--out DIR is required");
  // Six-digit file names hold up to 999999 images per split.
  if (o.train < 0 || o.train > 999999 || o.val < 0 || o.val > 999999)
    throw UsageError("--train and --val must be in [0, 999999]");
  if (o.side < 32 || o.side > 4096) throw UsageError("--side must be in [32, 4096]");
  if (o.min_objects < 1 || o.max_objects < o.min_objects || o.max_objects > 64)
    throw UsageError("need 1 <= --min-objects <= --max-objects <= 64");
  if (!(o.min_extent > 0 && o.min_extent <= o.max_extent && o.max_extent <= 1))
    throw UsageError("need 0 < --min-extent <= --max-extent <= 1");
  return o;
}

int run(int argc, char** argv) {
  Options options;
  try {
    options = parse_options(argc, argv);
  } catch (const UsageError& e) {
    if (*e.what() == '\0') {  // --help
      fmt::print("{}", kUsage);
      return 0;
    }
    fmt::print(stderr, "make_shapes_coco: {}\n{}", e.what(), kUsage);
    return 2;
  }
  try {
    prepare_output(options);
    // Train and val are separate streams of the same seed: the sets never share an image.
    const std::array<std::pair<std::string, int>, 2> splits = {
        {{"train", options.train}, {"val", options.val}}};
    for (std::size_t s = 0; s < splits.size(); ++s) {
      const auto t0 = std::chrono::steady_clock::now();
      const SplitStats stats = write_split(options, splits[s].first, s + 1, splits[s].second);
      print_summary(splits[s].first, stats,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } catch (const IoError& e) {
    fmt::print(stderr, "make_shapes_coco: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "make_shapes_coco: {}\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace centermask::bench

int main(int argc, char** argv) { return centermask::bench::run(argc, argv); }
