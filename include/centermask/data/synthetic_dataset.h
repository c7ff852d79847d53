#pragma once
// The project's own benchmark data: images of textured shapes that overlap heavily, with
// holes (rings) and non-convex outlines (stars, crosses, crescents), over a wide range of
// sizes, on noisy cluttered backgrounds, coloured independently of their class. Masks are the
// *visible* part of each object; objects hidden (almost) completely are not annotated. It
// exercises exactly what CenterMask claims: separating overlapping instances, including two of
// the same class, with pixel-precise masks. Deterministic for a seed, whatever the thread count.

#include <cstdint>
#include <filesystem>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// How the objects and the background look; the objects' geometry (shapes, sizes, placement,
/// occlusion) is drawn the same way in both, and for a seed image i has the same objects.
enum class SyntheticStyle {
  /// Objects in one colour or textured (gradients, two-colour stripes, speckle) on a smooth
  /// colour field with faint stripes, pixel noise and thin strokes that are not objects: the
  /// benchmark, where appearance tells little.
  kCluttered,
  /// Objects in one flat colour on blurred per-pixel colour noise: the kind of set the CPU
  /// recipe is checked on (bench/make_shapes_coco), and the demo's, which a CPU learns quickly.
  kFlat,
};

struct SyntheticDatasetOptions {
  int image_size = 128;  ///< side of the square images, pixels
  int num_train = 200;
  int num_val = 50;
  std::uint64_t seed = 0;
  int min_objects = 2;  ///< objects placed per image (before removing hidden ones)
  int max_objects = 8;
  /// Probability that an object is placed over an earlier one (and then, half the time, with
  /// the same class) instead of anywhere: this is what makes heavy, same-class overlaps common.
  double overlap_probability = 0.5;
  /// An object is annotated only if at least this fraction of its in-image area stays visible;
  /// objects below it (but not fully hidden) are left out of the picture, so that every visible
  /// pixel of an object belongs to an annotation.
  double min_visible_fraction = 0.15;
  /// Object extent (twice the radius) as a fraction of the side, drawn log-uniformly in
  /// [min_extent, max_extent]; both 0 (the default) = the COCO-like mixture of small, medium
  /// and large objects.
  double min_extent = 0;
  double max_extent = 0;
  SyntheticStyle style = SyntheticStyle::kCluttered;
  int threads = 0;  ///< 0 = all cores
};

/// The shape classes, in category-id order (ids 1..N).
const std::vector<std::string>& synthetic_class_names();

/// One generated object: class, full outline mask and visible mask (image-sized, 0/1).
struct SyntheticObject {
  std::int32_t class_index = 0;
  cv::Mat full_mask;
  cv::Mat visible_mask;
};

struct SyntheticImage {
  cv::Mat image;                         ///< BGR, 8-bit, image_size²
  std::vector<SyntheticObject> objects;  ///< annotated objects, back to front
};

/// Renders image `index` of stream `split_id` (0 = train, 1 = val): a pure function of
/// (options, split_id, index).
SyntheticImage render_synthetic_image(const SyntheticDatasetOptions& options,
                                      std::uint64_t split_id, std::int64_t index);

/// The annotated objects of a rendered image as instances (box = the visible mask's extent),
/// for building batches in memory without writing the dataset.
std::vector<Instance> synthetic_image_instances(const SyntheticImage& image);

/// Counts that show what a split exercises. Sizes are COCO's small / medium / large scaled
/// to the image: COCO's thresholds 32² and 96² are for ~640-pixel images, so here they are
/// (32·s/640)² and (96·s/640)² for side s.
struct SyntheticSplitSummary {
  std::string name;
  std::int64_t images = 0;
  std::int64_t instances = 0;
  std::int64_t small = 0;
  std::int64_t medium = 0;
  std::int64_t large = 0;
  std::int64_t occluded = 0;             ///< visible area < 90% of the full in-image area
  std::int64_t heavily_occluded = 0;     ///< visible area < 50%
  std::int64_t same_class_overlaps = 0;  ///< pairs of same-class objects whose outlines overlap
  std::int64_t with_holes = 0;           ///< visible mask has a hole (ring, or cut by another)
  std::int64_t per_class[16] = {};
};

/// Generates a split as a dataset whose images are written to `image_dir` (PNG, atomically).
CocoDataset generate_synthetic_split(const SyntheticDatasetOptions& options, std::uint64_t split_id,
                                     std::int64_t num_images,
                                     const std::filesystem::path& image_dir,
                                     SyntheticSplitSummary* summary = nullptr);

/// Writes OUT/train/*.png, OUT/val/*.png, OUT/train.json and OUT/val.json. Refuses an `out_dir`
/// that holds files unless `overwrite`.
std::vector<SyntheticSplitSummary> generate_synthetic_dataset(
    const std::filesystem::path& out_dir, const SyntheticDatasetOptions& options,
    bool overwrite = false);

}  // namespace centermask
