#include "synthetic_coco.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cmath>
#include <fstream>
#include <random>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/structures/rle.h"

namespace centermask::bench {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A star-shaped polygon around (cx, cy): non-convex, like real outlines.
std::vector<double> random_polygon(std::mt19937& rng, double cx, double cy, double radius,
                                   int points) {
  std::uniform_real_distribution<double> wobble(0.55, 1.0);
  std::vector<double> xy;
  xy.reserve(static_cast<std::size_t>(points) * 2);
  for (int p = 0; p < points; ++p) {
    const double angle = 2 * kPi * p / points;
    const double r = radius * wobble(rng);
    xy.push_back(std::round((cx + r * std::cos(angle)) * 100) / 100);
    xy.push_back(std::round((cy + r * std::sin(angle)) * 100) / 100);
  }
  return xy;
}

}  // namespace

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

std::size_t write_synthetic_ground_truth(const std::filesystem::path& path,
                                         const SyntheticCocoSpec& spec) {
  std::mt19937 rng(spec.seed);
  std::ofstream out(path, std::ios::binary);
  std::string chunk;
  auto flush = [&](bool force) {
    if (force || chunk.size() > (8u << 20)) {
      out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
      chunk.clear();
    }
  };
  std::uniform_int_distribution<int> side(0, 1);
  std::vector<std::pair<int, int>> sizes(static_cast<std::size_t>(spec.num_images));
  chunk += "{\"info\": {\"description\": \"synthetic\"}, \"images\": [";
  for (int i = 0; i < spec.num_images; ++i) {
    const bool landscape = side(rng) != 0;
    sizes[static_cast<std::size_t>(i)] =
        landscape ? std::make_pair(480, 640) : std::make_pair(640, 427);
    fmt::format_to(std::back_inserter(chunk),
                   "{}{{\"license\": 1, \"file_name\": \"{:012d}.jpg\", \"height\": {}, \"width\": "
                   "{}, \"id\": {}}}",
                   i ? ", " : "", i + 1, sizes[static_cast<std::size_t>(i)].first,
                   sizes[static_cast<std::size_t>(i)].second, i + 1);
    flush(false);
  }
  chunk += "], \"annotations\": [";
  std::poisson_distribution<int> count(spec.instances_per_image);
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int> category(1, spec.num_categories);
  std::uniform_int_distribution<int> num_points(8, 40);
  std::size_t ann_id = 0;
  for (int i = 0; i < spec.num_images; ++i) {
    const auto [h, w] = sizes[static_cast<std::size_t>(i)];
    const int n = count(rng);
    for (int a = 0; a < n; ++a) {
      const double radius = 4 + std::pow(unit(rng), 2.5) * 0.45 * std::min(h, w);
      const double cx = radius + unit(rng) * (w - 2 * radius),
                   cy = radius + unit(rng) * (h - 2 * radius);
      const bool crowd = unit(rng) < 0.01;
      chunk += ann_id ? ", {\"segmentation\": " : "{\"segmentation\": ";
      BoxXYWH box;
      double area;
      if (crowd) {
        const Rle rle = rle_from_box({cx - radius, cy - radius, 2 * radius, 2 * radius}, h, w);
        fmt::format_to(std::back_inserter(chunk), "{{\"counts\": [{}], \"size\": [{}, {}]}}",
                       fmt::join(rle.counts, ", "), h, w);
        box = rle_bbox(rle);
        area = static_cast<double>(rle_area(rle));
      } else {
        const std::vector<double> xy = random_polygon(rng, cx, cy, radius, num_points(rng));
        chunk += "[[";
        for (std::size_t k = 0; k < xy.size(); ++k)
          fmt::format_to(std::back_inserter(chunk), "{}{:.2f}", k ? ", " : "", xy[k]);
        chunk += "]]";
        double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9, shoelace = 0;
        for (std::size_t k = 0; k < xy.size(); k += 2) {
          x0 = std::min(x0, xy[k]);
          x1 = std::max(x1, xy[k]);
          y0 = std::min(y0, xy[k + 1]);
          y1 = std::max(y1, xy[k + 1]);
          const std::size_t next = (k + 2) % xy.size();
          shoelace += xy[k] * xy[next + 1] - xy[next] * xy[k + 1];
        }
        box = {x0, y0, x1 - x0, y1 - y0};
        area = std::fabs(shoelace) / 2;
      }
      ++ann_id;
      fmt::format_to(std::back_inserter(chunk),
                     ", \"area\": {:.4f}, \"iscrowd\": {}, \"image_id\": {}, \"bbox\": [{:.2f}, "
                     "{:.2f}, {:.2f}, {:.2f}], "
                     "\"category_id\": {}, \"id\": {}}}",
                     area, crowd ? 1 : 0, i + 1, box.x, box.y, box.width, box.height, category(rng),
                     ann_id);
      flush(false);
    }
  }
  chunk += "], \"categories\": [";
  for (int c = 1; c <= spec.num_categories; ++c) {
    fmt::format_to(std::back_inserter(chunk),
                   "{}{{\"supercategory\": \"thing\", \"id\": {}, \"name\": \"class{}\"}}",
                   c > 1 ? ", " : "", c, c);
  }
  chunk += "]}";
  flush(true);
  return ann_id;
}

std::size_t write_synthetic_results(const std::filesystem::path& ground_truth_path,
                                    const std::filesystem::path& path, int detections_per_image,
                                    std::uint32_t seed) {
  const CocoDataset gt = CocoDataset::load(ground_truth_path);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> jitter(0, 1);
  std::uniform_int_distribution<int> category(1, static_cast<int>(gt.num_classes()));
  CocoResults results;
  for (std::size_t i = 0; i < gt.images().size(); ++i) {
    const CocoImage& image = gt.images()[i];
    const Span<std::uint32_t> anns = gt.annotations_of_image(i);
    for (int d = 0; d < detections_per_image; ++d) {
      // Most detections are shifted copies of a ground-truth object (true and near-miss
      // positives), the rest are random false positives: a realistic IoU workload.
      std::int64_t category_id;
      std::vector<double> xy;
      if (!anns.empty() && unit(rng) < 0.6) {
        const std::uint32_t a = anns[static_cast<std::size_t>(rng() % anns.size())];
        const CocoAnnotation& ann = gt.annotations()[a];
        category_id = unit(rng) < 0.9 ? ann.category_id : category(rng);
        const double shift = 0.08 * std::max(ann.bbox.width, ann.bbox.height);
        const double dx = jitter(rng) * shift, dy = jitter(rng) * shift;
        const BoxXYWH b = ann.bbox;
        xy = std::vector<double>{b.x + dx, b.y + dy,           b.x + b.width + dx,
                                 b.y + dy, b.x + b.width + dx, b.y + b.height + dy,
                                 b.x + dx, b.y + b.height + dy};
        if (ann.segmentation_format == SegmentationFormat::kPolygons) {
          const Span<double> outline = gt.polygons(a)[0];
          xy.clear();
          for (std::size_t k = 0; k < outline.size(); k += 2) {
            xy.push_back(outline[k] + dx);
            xy.push_back(outline[k + 1] + dy);
          }
        }
      } else {
        category_id = category(rng);
        const double r = 5 + unit(rng) * 100;
        const double cx = unit(rng) * image.width, cy = unit(rng) * image.height;
        xy = std::vector<double>{cx - r, cy - r, cx + r, cy - r, cx + r, cy + r, cx - r, cy + r};
      }
      const Rle mask =
          rle_from_polygon(Span<double>(xy.data(), xy.size()), image.height, image.width);
      results.add(gt, image.id, category_id, std::round(unit(rng) * 1e4) / 1e4, rle_bbox(mask),
                  &mask);
    }
  }
  results.save(path);
  return results.size();
}

}  // namespace centermask::bench
