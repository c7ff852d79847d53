#pragma once
// The usable part of a COCO dataset for training and prediction: images that exist and match
// their JSON, and annotations whose box lies (at least partly) inside their image. Checking is
// done once, when the set is opened, with one counted warning per kind of problem (or an error
// naming file and record with `strict`), so that a training run never stops mid-epoch on data.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/structures/instances.h"

namespace centermask {

struct TrainingSetOptions {
  bool strict = false;            ///< every problem is an error instead of a counted warning
  bool check_image_files = true;  ///< probe every image file's header at open
  bool keep_images_without_annotations = true;  ///< negatives (CenterNet keeps them)
  int threads = 0;                              ///< for the file checks; 0 = all cores
};

/// One decoded image with its instances in original-image pixels.
struct LoadedImage {
  std::int64_t image_id = -1;
  std::filesystem::path path;
  cv::Mat image;  ///< 8-bit BGR
  std::vector<Instance> instances;
};

class TrainingSet {
 public:
  /// Checks `dataset` against the images in `image_dir` (COCO file_name is relative to it).
  /// Problems go to `report` (counted per kind) or, with `strict`, throw InputError.
  static std::shared_ptr<const TrainingSet> open(std::shared_ptr<const CocoDataset> dataset,
                                                 const std::filesystem::path& image_dir,
                                                 const TrainingSetOptions& options,
                                                 CocoLoadReport* report);

  std::size_t size() const { return images_.size(); }
  std::size_t num_classes() const { return dataset_->num_classes(); }
  std::vector<std::string> class_names() const;
  const CocoDataset& dataset() const { return *dataset_; }
  const std::filesystem::path& image_dir() const { return image_dir_; }
  /// Index into dataset().images() of usable image i.
  std::int32_t dataset_image_index(std::size_t i) const { return images_[i].dataset_index; }
  std::size_t num_instances() const { return total_instances_; }

  /// Decodes usable image i and its instances (original coordinates, masks as patches).
  /// Throws InputError naming the file when the image no longer decodes or changed size.
  LoadedImage load(std::size_t i) const;
  /// Only the instances of usable image i (no image decode).
  std::vector<Instance> instances(std::size_t i) const;

 private:
  struct UsableImage {
    std::int32_t dataset_index = -1;
    std::vector<std::uint32_t> annotations;  ///< usable annotation indices
  };
  std::shared_ptr<const CocoDataset> dataset_;
  std::filesystem::path image_dir_;
  std::vector<UsableImage> images_;
  std::size_t total_instances_ = 0;
};

/// Decodes the part of an RLE mask inside [x0, x1) × [y0, y1) into a patch, walking the runs
/// (no full-image bitmap).
MaskPatch rle_to_patch(const Rle& rle, int x0, int y0, int x1, int y1);

/// The inverse: a patch as the RLE of a height × width image (the part of the patch outside
/// the image is dropped), encoded column by column without a full-image bitmap.
Rle patch_to_rle(const MaskPatch& patch, int height, int width);

}  // namespace centermask
