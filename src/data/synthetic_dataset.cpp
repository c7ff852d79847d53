#include "centermask/data/synthetic_dataset.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <system_error>

#include "centermask/common/error.h"
#include "centermask/common/random.h"
#include "centermask/data/image_io.h"
#include "common/parallel.h"

namespace centermask {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int kSubpixelBits = 4;  // fillPoly works in 1/16 pixel, so outlines are not jagged
constexpr double kSubpixelScale = 1 << kSubpixelBits;

enum Shape { kDisc, kRing, kTriangle, kStar, kCross, kCrescent, kNumShapes };

// Where and how one object is drawn.
struct Placement {
  int shape = kDisc;
  double cx = 0, cy = 0;
  double radius = 0;  // half the object's extent, pixels
  double angle = 0;   // rotation, radians
  double aspect = 1;  // x stretch / y stretch
  cv::Scalar colour;  // BGR
  int texture = 0;    // 0 plain, 1 gradient, 2 stripes, 3 speckle
  double texture_angle = 0;
  double texture_period = 6;
  cv::Scalar colour2;       // second colour of gradients and stripes
  double hole_ratio = 0.5;  // rings: inner radius / outer radius
};

using Outline = std::vector<cv::Point>;

// A closed outline of `points` unit-circle offsets, placed, stretched and rotated.
Outline place_outline(const Placement& p, const std::vector<cv::Point2d>& unit_points) {
  const double sx = p.radius * std::sqrt(p.aspect);
  const double sy = p.radius / std::sqrt(p.aspect);
  const double c = std::cos(p.angle), s = std::sin(p.angle);
  Outline out;
  out.reserve(unit_points.size());
  for (const cv::Point2d& u : unit_points) {
    const double x = u.x * sx, y = u.y * sy;
    const double rx = c * x - s * y + p.cx, ry = s * x + c * y + p.cy;
    out.emplace_back(static_cast<int>(std::lround(rx * kSubpixelScale)),
                     static_cast<int>(std::lround(ry * kSubpixelScale)));
  }
  return out;
}

std::vector<cv::Point2d> circle_points(int n) {
  std::vector<cv::Point2d> pts;
  for (int i = 0; i < n; ++i) {
    const double t = 2 * kPi * i / n;
    pts.emplace_back(std::cos(t), std::sin(t));
  }
  return pts;
}

// Renders the object's full outline into `mask` (0/1, image-sized).
void draw_shape_mask(const Placement& p, cv::Mat& mask) {
  const int vertices = std::clamp(static_cast<int>(p.radius * 2), 24, 128);
  auto fill = [&](const Outline& outline, int value) {
    const std::vector<Outline> polys{outline};
    cv::fillPoly(mask, polys, cv::Scalar(value), cv::LINE_8, kSubpixelBits);
  };
  switch (p.shape) {
    case kDisc:
      fill(place_outline(p, circle_points(vertices)), 1);
      break;
    case kRing: {
      fill(place_outline(p, circle_points(vertices)), 1);
      const double hole = p.hole_ratio;
      std::vector<cv::Point2d> inner;
      for (const cv::Point2d& q : circle_points(vertices))
        inner.emplace_back(q.x * hole, q.y * hole);
      fill(place_outline(p, inner), 0);
      break;
    }
    case kTriangle: {
      std::vector<cv::Point2d> pts;
      for (int i = 0; i < 3; ++i) {
        const double t = -kPi / 2 + 2 * kPi * i / 3;
        pts.emplace_back(std::cos(t), std::sin(t));
      }
      fill(place_outline(p, pts), 1);
      break;
    }
    case kStar: {
      std::vector<cv::Point2d> pts;
      for (int i = 0; i < 10; ++i) {
        const double t = -kPi / 2 + kPi * i / 5;
        const double r = i % 2 == 0 ? 1.0 : 0.42;
        pts.emplace_back(r * std::cos(t), r * std::sin(t));
      }
      fill(place_outline(p, pts), 1);
      break;
    }
    case kCross: {
      const double a = 0.3;  // half the arm width
      const std::vector<cv::Point2d> pts = {{-a, -1}, {a, -1}, {a, -a},  {1, -a},
                                            {1, a},   {a, a},  {a, 1},   {-a, 1},
                                            {-a, a},  {-1, a}, {-1, -a}, {-a, -a}};
      fill(place_outline(p, pts), 1);
      break;
    }
    case kCrescent: {
      fill(place_outline(p, circle_points(vertices)), 1);
      std::vector<cv::Point2d> bite;
      for (const cv::Point2d& q : circle_points(vertices))
        bite.emplace_back(q.x * 0.8 + 0.45, q.y * 0.8 - 0.1);
      fill(place_outline(p, bite), 0);
      break;
    }
    default:
      break;
  }
}

cv::Scalar random_colour(Rng& rng) {
  // HSV with the hue, saturation and value drawn the same way for every class, so colour
  // alone never tells the class.
  cv::Mat hsv(1, 1, CV_8UC3,
              cv::Scalar(static_cast<double>(rng.uniform_int(0, 179)), rng.uniform(70, 255),
                         rng.uniform(60, 255)));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b v = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(v[0], v[1], v[2]);
}

// Radius drawn from a mixture that gives COCO-like proportions of small, medium and large
// objects relative to the image (sqrt(area) < 5%, 5–15%, > 15% of the side).
double random_radius(Rng& rng, const SyntheticDatasetOptions& options) {
  const int image_size = options.image_size;
  if (options.max_extent > 0)
    return 0.5 * image_size *
           std::exp(rng.uniform(std::log(options.min_extent), std::log(options.max_extent)));
  const double u = rng.uniform();
  double lo, hi;
  if (u < 0.3) {
    lo = 0.02, hi = 0.032;
  } else if (u < 0.65) {
    lo = 0.032, hi = 0.09;
  } else {
    lo = 0.09, hi = 0.26;
  }
  return image_size * std::exp(rng.uniform(std::log(lo), std::log(hi)));
}

// Zero-mean Gaussian pixel noise (CV_16SC3), to be added with add_signed().
cv::Mat gaussian_noise(int size, double sigma, Rng& rng) {
  cv::Mat noise(size, size, CV_16SC3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        noise.at<cv::Vec3s>(y, x)[c] = static_cast<short>(std::lround(rng.normal(0, sigma)));
  return noise;
}

// image += signed offsets, saturating to 8 bits.
void add_signed(cv::Mat& image, const cv::Mat& offsets) {
  cv::Mat image16;
  image.convertTo(image16, CV_16SC3);
  image16 += offsets;
  image16.convertTo(image, CV_8UC3);
}

// A textured, noisy, cluttered background: a smooth colour field, a texture and thin strokes
// that are not objects.
cv::Mat render_background(Rng& rng, int size) {
  cv::Mat coarse(4, 4, CV_8UC3);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      for (int c = 0; c < 3; ++c)
        coarse.at<cv::Vec3b>(y, x)[c] = static_cast<unsigned char>(rng.uniform_int(50, 205));
  cv::Mat image;
  cv::resize(coarse, image, cv::Size(size, size), 0, 0, cv::INTER_CUBIC);
  const double sigma = rng.uniform(4, 14);
  cv::Mat noise = gaussian_noise(size, sigma, rng);
  if (rng.bernoulli(0.5)) {  // faint stripes
    const double angle = rng.uniform(0, kPi), period = rng.uniform(4, 16), amp = rng.uniform(6, 20);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const double t = (x * std::cos(angle) + y * std::sin(angle)) * 2 * kPi / period;
        const short v = static_cast<short>(std::lround(amp * std::sin(t)));
        for (int c = 0; c < 3; ++c)
          noise.at<cv::Vec3s>(y, x)[c] = static_cast<short>(noise.at<cv::Vec3s>(y, x)[c] + v);
      }
  }
  add_signed(image, noise);
  const int strokes = static_cast<int>(rng.uniform_int(2, 8));
  for (int i = 0; i < strokes; ++i) {
    cv::Point a(static_cast<int>(rng.uniform_int(0, size - 1)),
                static_cast<int>(rng.uniform_int(0, size - 1)));
    cv::Point b(static_cast<int>(rng.uniform_int(0, size - 1)),
                static_cast<int>(rng.uniform_int(0, size - 1)));
    cv::line(image, a, b, random_colour(rng), 1, cv::LINE_AA);
  }
  return image;
}

// The flat style's background: per-pixel uniform colour noise, blurred so that it has some
// spatial structure but no shapes that could pass for objects.
cv::Mat render_noise_background(Rng& rng, int size) {
  cv::Mat image(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    unsigned char* row = image.ptr<unsigned char>(y);
    for (int x = 0; x < 3 * size; ++x) row[x] = static_cast<unsigned char>(rng.uniform_int(0, 255));
  }
  cv::GaussianBlur(image, image, cv::Size(0, 0), rng.uniform(0.8, 2.5));
  return image;
}

// Paints an object's visible pixels with its colour and texture.
void paint_object(const Placement& p, const cv::Mat& visible, Rng& rng, cv::Mat& image) {
  const double c = std::cos(p.texture_angle), s = std::sin(p.texture_angle);
  for (int y = 0; y < image.rows; ++y) {
    const unsigned char* m = visible.ptr<unsigned char>(y);
    cv::Vec3b* px = image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < image.cols; ++x) {
      if (!m[x]) continue;
      double w = 0;  // weight of colour2
      const double along = ((x - p.cx) * c + (y - p.cy) * s);
      if (p.texture == 1) {
        w = std::clamp(0.5 + 0.5 * along / std::max(1.0, p.radius), 0.0, 1.0);
      } else if (p.texture == 2) {
        w = std::sin(along * 2 * kPi / p.texture_period) > 0 ? 1.0 : 0.0;
      } else if (p.texture == 3) {
        w = rng.uniform() < 0.25 ? 1.0 : 0.0;
      }
      for (int ch = 0; ch < 3; ++ch)
        px[x][ch] = cv::saturate_cast<unsigned char>((1 - w) * p.colour[ch] + w * p.colour2[ch]);
    }
  }
}

std::int64_t count_in(const cv::Mat& mask) { return cv::countNonZero(mask); }

}  // namespace

const std::vector<std::string>& synthetic_class_names() {
  static const std::vector<std::string> names = {"disc", "ring",  "triangle",
                                                 "star", "cross", "crescent"};
  return names;
}

SyntheticImage render_synthetic_image(const SyntheticDatasetOptions& options,
                                      std::uint64_t split_id, std::int64_t index) {
  const int size = options.image_size;
  Rng rng(derive_seed(options.seed, {split_id, static_cast<std::uint64_t>(index)}));
  SyntheticImage out;
  // The cluttered background is drawn in both styles so that both place the same objects in
  // image i (the rest of the stream follows it): the styles differ only in appearance.
  out.image = render_background(rng, size);
  const bool flat = options.style == SyntheticStyle::kFlat;
  if (flat) {
    Rng background_rng(derive_seed(options.seed, {split_id, static_cast<std::uint64_t>(index), 1}));
    out.image = render_noise_background(background_rng, size);
  }

  const int count = static_cast<int>(rng.uniform_int(options.min_objects, options.max_objects));
  std::vector<Placement> placements;
  for (int i = 0; i < count; ++i) {
    Placement p;
    p.radius = random_radius(rng, options);
    p.shape = static_cast<int>(rng.uniform_int(0, kNumShapes - 1));
    if (!placements.empty() && rng.bernoulli(options.overlap_probability)) {
      const Placement& under = placements[static_cast<std::size_t>(
          rng.uniform_int(0, static_cast<std::int64_t>(placements.size()) - 1))];
      const double t = rng.uniform(0, 2 * kPi), d = under.radius * rng.uniform(0.2, 1.1);
      p.cx = under.cx + d * std::cos(t);
      p.cy = under.cy + d * std::sin(t);
      if (rng.bernoulli(0.5)) p.shape = under.shape;
    } else {
      // Centers may lie slightly outside so that objects are cut by the border.
      p.cx = rng.uniform(-0.3 * p.radius, size + 0.3 * p.radius);
      p.cy = rng.uniform(-0.3 * p.radius, size + 0.3 * p.radius);
    }
    p.angle = rng.uniform(0, 2 * kPi);
    p.aspect = std::exp(rng.uniform(std::log(0.7), std::log(1.4)));
    p.colour = random_colour(rng);
    p.colour2 = random_colour(rng);
    p.texture = static_cast<int>(rng.uniform_int(0, 3));
    if (flat) p.texture = 0;
    p.texture_angle = rng.uniform(0, kPi);
    p.texture_period = rng.uniform(3, 9);
    p.hole_ratio = rng.uniform(0.4, 0.65);
    placements.push_back(p);
  }

  std::vector<cv::Mat> full(placements.size());
  for (std::size_t i = 0; i < placements.size(); ++i) {
    full[i] = cv::Mat::zeros(size, size, CV_8UC1);
    draw_shape_mask(placements[i], full[i]);
  }
  // Visible = full minus everything drawn later. Objects that stay visible but below the
  // threshold are removed from the scene and the rest recomputed (removing an occluder only
  // uncovers, so this settles in a few rounds).
  std::vector<bool> present(placements.size(), true);
  std::vector<cv::Mat> visible(placements.size());
  for (bool changed = true; changed;) {
    changed = false;
    cv::Mat covered = cv::Mat::zeros(size, size, CV_8UC1);
    for (std::size_t k = placements.size(); k-- > 0;) {
      if (!present[k]) continue;
      visible[k] = full[k] & (covered == 0) / 255;
      covered |= full[k];
      const std::int64_t full_area = count_in(full[k]);
      const std::int64_t visible_area = count_in(visible[k]);
      const bool too_hidden = visible_area < 4 || visible_area < options.min_visible_fraction *
                                                                     static_cast<double>(full_area);
      if (visible_area > 0 && too_hidden) {
        present[k] = false;
        changed = true;
      }
    }
  }
  for (std::size_t k = 0; k < placements.size(); ++k) {
    if (!present[k]) continue;
    paint_object(placements[k], visible[k], rng, out.image);
    if (count_in(visible[k]) == 0) continue;  // fully hidden: drawn, never seen, not annotated
    out.objects.push_back({placements[k].shape, full[k], visible[k]});
  }
  // Sensor-like finish: slight blur and noise over everything, so edges are not perfectly
  // crisp colour steps (the masks stay exact).
  cv::GaussianBlur(out.image, out.image, cv::Size(3, 3), 0.6);
  add_signed(out.image, gaussian_noise(size, 4, rng));
  return out;
}

std::vector<Instance> synthetic_image_instances(const SyntheticImage& image) {
  std::vector<Instance> out;
  for (const SyntheticObject& object : image.objects) {
    const cv::Rect r = cv::boundingRect(object.visible_mask);
    if (r.area() == 0) continue;
    Instance instance;
    instance.class_index = object.class_index;
    instance.box = {static_cast<float>(r.x), static_cast<float>(r.y),
                    static_cast<float>(r.x + r.width), static_cast<float>(r.y + r.height)};
    instance.has_mask = true;
    instance.mask.left = r.x;
    instance.mask.top = r.y;
    instance.mask.width = r.width;
    instance.mask.height = r.height;
    for (int y = r.y; y < r.y + r.height; ++y)
      for (int x = r.x; x < r.x + r.width; ++x)
        instance.mask.pixels.push_back(object.visible_mask.at<std::uint8_t>(y, x) ? 1 : 0);
    out.push_back(std::move(instance));
  }
  return out;
}

CocoDataset generate_synthetic_split(const SyntheticDatasetOptions& options, std::uint64_t split_id,
                                     std::int64_t num_images,
                                     const std::filesystem::path& image_dir,
                                     SyntheticSplitSummary* summary) {
  if (options.image_size < 16 || options.image_size > 8192)
    throw InputError(fmt::format("synth: --size {} is outside [16, 8192]", options.image_size));
  if ((options.min_extent != 0 || options.max_extent != 0) &&
      !(options.min_extent > 0 && options.max_extent >= options.min_extent &&
        options.max_extent <= 2))
    throw InputError(fmt::format(
        "synth: object extent range [{}, {}] must satisfy 0 < min ≤ max ≤ 2 (fractions of the "
        "side)",
        options.min_extent, options.max_extent));
  if (options.min_objects < 0 || options.max_objects < options.min_objects)
    throw InputError(fmt::format("synth: object count range [{}, {}] is empty", options.min_objects,
                                 options.max_objects));
  std::error_code ec;
  std::filesystem::create_directories(image_dir, ec);
  if (ec)
    throw InputError(
        describe_input_problem(image_dir.string(), "", "cannot create folder: " + ec.message()));

  struct Rendered {
    std::vector<std::int32_t> classes;
    std::vector<Rle> masks;
    std::vector<double> visible_fraction;
    std::vector<bool> has_hole;
    std::int64_t same_class_overlaps = 0;
  };
  std::vector<Rendered> rendered(static_cast<std::size_t>(num_images));
  const std::size_t n = rendered.size();
  parallel_for(n, resolve_thread_count(options.threads, n), [&](std::size_t i) {
    SyntheticImage image = render_synthetic_image(options, split_id, static_cast<std::int64_t>(i));
    write_image(image_dir / fmt::format("{:06d}.png", i), image.image);
    Rendered& r = rendered[i];
    for (std::size_t k = 0; k < image.objects.size(); ++k) {
      const SyntheticObject& o = image.objects[k];
      r.classes.push_back(o.class_index);
      r.masks.push_back(rle_encode(o.visible_mask.data, o.visible_mask.rows, o.visible_mask.cols,
                                   o.visible_mask.step[0]));
      r.visible_fraction.push_back(static_cast<double>(cv::countNonZero(o.visible_mask)) /
                                   std::max(1, cv::countNonZero(o.full_mask)));
      std::vector<std::vector<cv::Point>> contours;
      std::vector<cv::Vec4i> hierarchy;
      cv::findContours(o.visible_mask.clone(), contours, hierarchy, cv::RETR_CCOMP,
                       cv::CHAIN_APPROX_SIMPLE);
      r.has_hole.push_back(std::any_of(hierarchy.begin(), hierarchy.end(),
                                       [](const cv::Vec4i& h) { return h[3] >= 0; }));
      for (std::size_t j = 0; j < k; ++j) {
        if (image.objects[j].class_index == o.class_index &&
            cv::countNonZero(image.objects[j].full_mask & o.full_mask) > 0)
          ++r.same_class_overlaps;
      }
    }
  });

  const std::string split_name = split_id == 0   ? "train"
                                 : split_id == 1 ? "val"
                                                 : fmt::format("split{}", split_id);
  CocoDatasetBuilder builder("synthetic " + split_name);
  const auto& names = synthetic_class_names();
  for (std::size_t c = 0; c < names.size(); ++c)
    builder.add_category({static_cast<std::int64_t>(c + 1), names[c], "shape"});
  SyntheticSplitSummary local;
  local.name = split_name;
  const double side_scale = options.image_size / 640.0;
  const double small_limit = 32 * 32 * side_scale * side_scale;
  const double large_limit = 96 * 96 * side_scale * side_scale;
  std::int64_t annotation_id = 1;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t image_id = static_cast<std::int64_t>(i) + 1;
    builder.add_image(
        {image_id, fmt::format("{:06d}.png", i), options.image_size, options.image_size});
    const Rendered& r = rendered[i];
    for (std::size_t k = 0; k < r.masks.size(); ++k) {
      CocoAnnotation meta;
      meta.id = annotation_id++;
      meta.image_id = image_id;
      meta.category_id = r.classes[k] + 1;
      meta.bbox = rle_bbox(r.masks[k]);
      meta.area = static_cast<double>(rle_area(r.masks[k]));
      const std::string counts = rle_to_string(r.masks[k]);
      builder.add_annotation_compressed_rle(meta, counts, options.image_size, options.image_size);
      ++local.instances;
      if (meta.area < small_limit)
        ++local.small;
      else if (meta.area > large_limit)
        ++local.large;
      else
        ++local.medium;
      if (r.visible_fraction[k] < 0.9) ++local.occluded;
      if (r.visible_fraction[k] < 0.5) ++local.heavily_occluded;
      if (r.has_hole[k]) ++local.with_holes;
      if (r.classes[k] >= 0 && r.classes[k] < 16) ++local.per_class[r.classes[k]];
    }
    local.same_class_overlaps += r.same_class_overlaps;
  }
  local.images = static_cast<std::int64_t>(n);
  if (summary) *summary = local;
  return std::move(builder).build();
}

std::vector<SyntheticSplitSummary> generate_synthetic_dataset(
    const std::filesystem::path& out_dir, const SyntheticDatasetOptions& options, bool overwrite) {
  std::error_code ec;
  if (std::filesystem::exists(out_dir, ec)) {
    if (!std::filesystem::is_directory(out_dir, ec))
      throw InputError(describe_input_problem(out_dir.string(), "", "exists and is not a folder"));
    if (!overwrite && !std::filesystem::is_empty(out_dir, ec))
      throw InputError(describe_input_problem(
          out_dir.string(), "", "folder is not empty; choose another --out or pass --overwrite"));
  }
  std::vector<SyntheticSplitSummary> summaries;
  const std::pair<std::uint64_t, int> splits[] = {{0, options.num_train}, {1, options.num_val}};
  for (const auto& [split_id, count] : splits) {
    if (count <= 0) continue;
    SyntheticSplitSummary summary;
    const std::string name = split_id == 0 ? "train" : "val";
    CocoDataset dataset =
        generate_synthetic_split(options, split_id, count, out_dir / name, &summary);
    dataset.save(out_dir / (name + ".json"));
    summaries.push_back(summary);
  }
  return summaries;
}

}  // namespace centermask
