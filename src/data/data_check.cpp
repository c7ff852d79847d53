#include "centermask/data/data_check.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "centermask/data/image_io.h"
#include "centermask/structures/rle.h"
#include "common/parallel.h"

namespace centermask {
namespace {

constexpr std::size_t kExamples = 5;

// Object sides in input pixels: below 4 a stride-4 heatmap has one cell for the object, and
// COCO's small/medium/large boundaries (32, 96) scaled to a 640 side sit near 16 and 48.
const double kSideEdges[] = {4, 8, 16, 32, 64, 128};

Histogram side_histogram() {
  Histogram h;
  h.labels = {"<4 px", "4-8 px", "8-16 px", "16-32 px", "32-64 px", "64-128 px", ">=128 px"};
  h.counts.assign(h.labels.size(), 0);
  return h;
}

std::size_t side_bucket(double side) {
  std::size_t b = 0;
  while (b < std::size(kSideEdges) && side >= kSideEdges[b]) ++b;
  return b;
}

}  // namespace

DataCheckReport check_dataset(const std::filesystem::path& gt_path,
                              const std::filesystem::path& images_folder,
                              const DataCheckOptions& options) {
  CocoLoadReport load_report;
  const CocoDataset dataset = CocoDataset::load(gt_path, {}, &load_report);
  DataCheckReport r;
  r.images = static_cast<std::int64_t>(dataset.images().size());
  r.annotations = static_cast<std::int64_t>(dataset.annotations().size());
  r.load_warnings = load_report.lines();

  std::vector<std::int64_t> per_class(dataset.num_classes(), 0);
  std::vector<std::int64_t> per_image(dataset.images().size(), 0);
  for (std::size_t s = 0; s < options.input_sizes.size(); ++s)
    r.object_sides.push_back(side_histogram());
  std::vector<std::int64_t> under_8(options.input_sizes.size(), 0);
  std::int64_t measured = 0;
  for (std::size_t i = 0; i < dataset.annotations().size(); ++i) {
    const CocoAnnotation& a = dataset.annotations()[i];
    ++per_class[static_cast<std::size_t>(a.class_index)];
    ++per_image[static_cast<std::size_t>(a.image_index)];
    if (a.iscrowd) ++r.crowd;
    if (a.segmentation_format == SegmentationFormat::kNone) {
      ++r.without_mask;
      continue;
    }
    const std::uint64_t area = rle_area(dataset.mask(i));
    if (area == 0 || a.bbox.width < 1 || a.bbox.height < 1) ++r.degenerate;
    if (a.iscrowd || area == 0) continue;
    const CocoImage& image = dataset.images()[static_cast<std::size_t>(a.image_index)];
    const double longer = std::max(image.height, image.width);
    ++measured;
    for (std::size_t s = 0; s < options.input_sizes.size(); ++s) {
      const double side = std::sqrt(static_cast<double>(area)) * options.input_sizes[s] / longer;
      ++r.object_sides[s].counts[side_bucket(side)];
      if (side < 8) ++under_8[s];
    }
  }
  for (std::size_t c = 0; c < per_class.size(); ++c)
    r.instances_per_class.emplace_back(dataset.categories()[c].name, per_class[c]);
  r.instances_per_image.labels = {"0", "1", "2-5", "6-10", "11-20", "21-50", "51-100", ">100"};
  r.instances_per_image.counts.assign(r.instances_per_image.labels.size(), 0);
  for (std::int64_t n : per_image) {
    const std::size_t b = n == 0     ? 0
                          : n == 1   ? 1
                          : n <= 5   ? 2
                          : n <= 10  ? 3
                          : n <= 20  ? 4
                          : n <= 50  ? 5
                          : n <= 100 ? 6
                                     : 7;
    ++r.instances_per_image.counts[b];
    if (n > 100) ++r.images_over_100_objects;
  }
  for (std::size_t s = 0; s < options.input_sizes.size(); ++s)
    r.fraction_under_8px.push_back(measured ? static_cast<double>(under_8[s]) / measured : 0.0);

  // Every image: present, decodable (or its header readable), and of the JSON's size.
  std::mutex mutex;
  const std::size_t n = dataset.images().size();
  parallel_for(n, resolve_thread_count(options.threads, n), [&](std::size_t i) {
    const CocoImage& image = dataset.images()[i];
    const std::filesystem::path path = images_folder / image.file_name;
    std::string problem;
    std::optional<ImageSize> size;
    bool missing = !std::filesystem::exists(path);
    if (!missing) {
      if (options.headers_only) {
        size = probe_image_size(path, &problem);
      } else {
        try {
          const cv::Mat decoded = read_image_bgr(path);
          size = ImageSize{decoded.rows, decoded.cols};
        } catch (const std::exception& e) {
          problem = e.what();
        }
      }
    }
    const std::lock_guard<std::mutex> lock(mutex);
    if (missing) {
      if (r.missing_images.size() < kExamples) r.missing_images.push_back(path.string());
      ++r.num_missing;
    } else if (!size) {
      if (r.unreadable_images.size() < kExamples)
        r.unreadable_images.push_back(path.string() + ": " + problem);
      ++r.num_unreadable;
    } else if (size->height != image.height || size->width != image.width) {
      if (r.size_mismatches.size() < kExamples)
        r.size_mismatches.push_back(fmt::format("{} is {}x{}, the JSON says {}x{}", path.string(),
                                                size->height, size->width, image.height,
                                                image.width));
      ++r.num_size_mismatches;
    }
  });

  // The smallest measured size at which at most a tenth of the objects are under 8 input
  // pixels (2 cells of the stride-4 maps every method here predicts on); else the largest.
  r.recommended_input_size = options.input_sizes.empty() ? 0 : options.input_sizes.back();
  bool suits = false;
  for (std::size_t s = 0; s < options.input_sizes.size(); ++s) {
    if (r.fraction_under_8px[s] <= 0.10) {
      r.recommended_input_size = options.input_sizes[s];
      suits = true;
      break;
    }
  }
  if (!options.input_sizes.empty() && !suits) {
    r.recommendation = fmt::format(
        "{:.0f}% of the objects are under 8 px at input size {}, still {:.0f}% at {}: train at "
        "the largest size the budget allows (data.input_size) or crop/tile the images so that "
        "objects cover more of the input",
        100 * r.fraction_under_8px.front(), options.input_sizes.front(),
        100 * r.fraction_under_8px.back(), options.input_sizes.back());
  } else if (!options.input_sizes.empty()) {
    r.recommendation =
        r.recommended_input_size == options.input_sizes.front()
            ? fmt::format("input size {} suits these objects ({:.0f}% under 8 px)",
                          options.input_sizes.front(), 100 * r.fraction_under_8px.front())
            : fmt::format(
                  "{:.0f}% of the objects are under 8 px at input size {}: train at {} "
                  "(data.input_size; test.input_size about 1.25x that), or crop/tile large images",
                  100 * r.fraction_under_8px.front(), options.input_sizes.front(),
                  r.recommended_input_size);
  }
  return r;
}

}  // namespace centermask
