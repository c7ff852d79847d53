#include "centermask/data/training_set.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

#include "centermask/common/error.h"
#include "centermask/data/image_io.h"
#include "common/parallel.h"

namespace centermask {

MaskPatch rle_to_patch(const Rle& rle, int x0, int y0, int x1, int y1) {
  MaskPatch patch;
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, rle.width), y1 = std::min(y1, rle.height);
  if (x1 <= x0 || y1 <= y0) return patch;
  patch.left = x0, patch.top = y0, patch.width = x1 - x0, patch.height = y1 - y0;
  patch.pixels.assign(
      static_cast<std::size_t>(patch.width) * static_cast<std::size_t>(patch.height), 0);
  const std::uint64_t h = static_cast<std::uint64_t>(rle.height);
  std::uint64_t position = 0;  // column-major pixel index
  for (std::size_t i = 0; i < rle.counts.size(); ++i) {
    const std::uint64_t end = position + rle.counts[i];
    if (i % 2 == 1) {
      // A run of ones may span columns: visit it column piece by column piece.
      for (std::uint64_t p = position; p < end;) {
        const std::uint64_t column = p / h, row = p % h;
        const std::uint64_t piece_end = std::min(end, (column + 1) * h);
        const int x = static_cast<int>(column);
        if (x >= x0 && x < x1) {
          const int r0 = std::max(static_cast<int>(row), y0);
          const int r1 = std::min(static_cast<int>(row + (piece_end - p)), y1);
          for (int y = r0; y < r1; ++y)
            patch.pixels[static_cast<std::size_t>(y - y0) * static_cast<std::size_t>(patch.width) +
                         static_cast<std::size_t>(x - x0)] = 1;
        }
        p = piece_end;
      }
    }
    position = end;
  }
  return patch;
}

Rle patch_to_rle(const MaskPatch& patch, int height, int width) {
  Rle rle;
  rle.height = height;
  rle.width = width;
  const std::uint64_t h = static_cast<std::uint64_t>(height);
  const int x0 = std::max(patch.left, 0), x1 = std::min(patch.left + patch.width, width);
  const int y0 = std::max(patch.top, 0), y1 = std::min(patch.top + patch.height, height);
  // Runs alternate 0, 1, 0, ...: `value` is what the current (open) run counts.
  std::uint8_t value = 0;
  std::uint64_t run = 0;
  std::uint64_t position = 0;  // column-major index of the next pixel not yet counted
  auto emit_until = [&](std::uint64_t end, std::uint8_t v) {
    if (end <= position) return;
    if (v != value) {
      rle.counts.push_back(static_cast<std::uint32_t>(run));
      value = v;
      run = 0;
    }
    run += end - position;
    position = end;
  };
  if (!patch.pixels.empty()) {
    for (int x = x0; x < x1; ++x) {
      const std::uint64_t column = static_cast<std::uint64_t>(x) * h;
      for (int y = y0; y < y1; ++y) {
        const std::uint8_t v = patch.pixels[static_cast<std::size_t>(y - patch.top) *
                                                static_cast<std::size_t>(patch.width) +
                                            static_cast<std::size_t>(x - patch.left)] != 0;
        if (v) {
          emit_until(column + static_cast<std::uint64_t>(y), 0);
          emit_until(column + static_cast<std::uint64_t>(y) + 1, 1);
        }
      }
    }
  }
  emit_until(rle.num_pixels(), 0);
  rle.counts.push_back(static_cast<std::uint32_t>(run));
  return rle;
}

std::shared_ptr<const TrainingSet> TrainingSet::open(std::shared_ptr<const CocoDataset> dataset,
                                                     const std::filesystem::path& image_dir,
                                                     const TrainingSetOptions& options,
                                                     CocoLoadReport* report) {
  auto set = std::shared_ptr<TrainingSet>(new TrainingSet());
  set->dataset_ = dataset;
  set->image_dir_ = image_dir;
  const CocoDataset& ds = *dataset;
  const std::size_t n = ds.images().size();

  auto problem = [&](const std::string& kind, const std::string& file, const std::string& record,
                     const std::string& detail) {
    if (options.strict) throw InputError(describe_input_problem(file, record, detail));
    if (report) report->add(kind, describe_input_problem(file, record, detail));
  };

  // 1. Image files: present, readable header, size as in the JSON. Probed in parallel; the
  //    warnings are then issued in image order so the report is the same for any thread count.
  std::vector<std::string> file_problem(n), file_problem_kind(n);
  if (options.check_image_files) {
    parallel_for(n, resolve_thread_count(options.threads, n), [&](std::size_t i) {
      const CocoImage& image = ds.images()[i];
      const std::filesystem::path path = image_dir / image.file_name;
      std::string why;
      std::optional<ImageSize> size = probe_image_size(path, &why);
      std::error_code ec;
      if (!size && std::filesystem::is_regular_file(path, ec) && why == "not a PNG or JPEG file") {
        // Another format OpenCV may read (BMP, TIFF, WebP): decode it once to know.
        try {
          const cv::Mat decoded = read_image_bgr(path);
          size = ImageSize{decoded.rows, decoded.cols};
        } catch (const InputError&) {
          why = "image does not decode";
        }
      }
      if (!size) {
        file_problem_kind[i] = std::filesystem::exists(path, ec)
                                   ? "images that do not decode (skipped)"
                                   : "images missing on disk (skipped)";
        file_problem[i] = why;
      } else if (size->height != image.height || size->width != image.width) {
        file_problem_kind[i] = "images whose size differs from the JSON (skipped)";
        file_problem[i] = fmt::format("file is {}x{} (w x h), JSON says {}x{}", size->width,
                                      size->height, image.width, image.height);
      }
    });
  }

  // 2. Annotations: inside the image, with a box of some area; crowd regions are not targets.
  for (std::size_t i = 0; i < n; ++i) {
    const CocoImage& image = ds.images()[i];
    const std::string image_record = fmt::format("image id {}", image.id);
    if (!file_problem[i].empty()) {
      problem(file_problem_kind[i], (image_dir / image.file_name).string(), image_record,
              file_problem[i]);
      continue;
    }
    UsableImage usable;
    usable.dataset_index = static_cast<std::int32_t>(i);
    for (std::uint32_t a : ds.annotations_of_image(i)) {
      const CocoAnnotation& ann = ds.annotations()[a];
      const std::string record = fmt::format("annotation id {} (image id {})", ann.id, image.id);
      if (ann.iscrowd) {
        if (report) report->add("crowd annotations (not training targets)", record);
        continue;
      }
      const BoxXYWH& b = ann.bbox;
      if (!(b.width > 0 && b.height > 0)) {
        problem("annotations with a zero-area box (dropped)", "", record,
                fmt::format("bbox [{}, {}, {}, {}]", b.x, b.y, b.width, b.height));
        continue;
      }
      const double x1 = b.x + b.width, y1 = b.y + b.height;
      const bool wholly_outside = x1 <= 0 || y1 <= 0 || b.x >= image.width || b.y >= image.height;
      if (wholly_outside) {
        problem("annotations wholly outside their image (dropped)", "", record,
                fmt::format("bbox [{}, {}, {}, {}] vs image {}x{}", b.x, b.y, b.width, b.height,
                            image.width, image.height));
        continue;
      }
      // Sub-pixel excess is common in COCO (boxes from float polygons); only whole pixels count.
      if (b.x < -1 || b.y < -1 || x1 > image.width + 1 || y1 > image.height + 1) {
        problem("annotations partly outside their image (box clipped)", "", record,
                fmt::format("bbox [{}, {}, {}, {}] vs image {}x{}", b.x, b.y, b.width, b.height,
                            image.width, image.height));
      }
      usable.annotations.push_back(a);
    }
    if (usable.annotations.empty() && !options.keep_images_without_annotations) continue;
    set->total_instances_ += usable.annotations.size();
    set->images_.push_back(std::move(usable));
  }
  return set;
}

std::vector<std::string> TrainingSet::class_names() const {
  std::vector<std::string> names;
  for (const CocoCategory& c : dataset_->categories()) names.push_back(c.name);
  return names;
}

std::vector<Instance> TrainingSet::instances(std::size_t i) const {
  const UsableImage& usable = images_.at(i);
  const CocoImage& image = dataset_->images()[static_cast<std::size_t>(usable.dataset_index)];
  std::vector<Instance> out;
  out.reserve(usable.annotations.size());
  for (std::uint32_t a : usable.annotations) {
    const CocoAnnotation& ann = dataset_->annotations()[a];
    Instance instance;
    instance.class_index = ann.class_index;
    instance.box = {
        static_cast<float>(std::max(0.0, ann.bbox.x)),
        static_cast<float>(std::max(0.0, ann.bbox.y)),
        static_cast<float>(std::min<double>(image.width, ann.bbox.x + ann.bbox.width)),
        static_cast<float>(std::min<double>(image.height, ann.bbox.y + ann.bbox.height))};
    if (ann.segmentation_format != SegmentationFormat::kNone) {
      const Rle rle = dataset_->mask(a);
      const BoxXYWH tight = rle_bbox(rle);
      instance.has_mask = true;
      instance.mask = rle_to_patch(rle, static_cast<int>(tight.x), static_cast<int>(tight.y),
                                   static_cast<int>(tight.x + tight.width),
                                   static_cast<int>(tight.y + tight.height));
    }
    out.push_back(std::move(instance));
  }
  return out;
}

LoadedImage TrainingSet::load(std::size_t i) const {
  const UsableImage& usable = images_.at(i);
  const CocoImage& image = dataset_->images()[static_cast<std::size_t>(usable.dataset_index)];
  LoadedImage out;
  out.image_id = image.id;
  out.path = image_dir_ / image.file_name;
  out.image = read_image_bgr(out.path);
  if (out.image.rows != image.height || out.image.cols != image.width) {
    throw InputError(describe_input_problem(
        out.path.string(), fmt::format("image id {}", image.id),
        fmt::format("decoded size {}x{} (w x h) differs from the JSON's {}x{}", out.image.cols,
                    out.image.rows, image.width, image.height)));
  }
  out.instances = instances(i);
  return out;
}

}  // namespace centermask
