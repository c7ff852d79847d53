#pragma once
// Bringing a user's annotations in: labelme JSON folders, YOLO segmentation labels and
// per-image instance-id PNGs, each converted to one COCO dataset (CocoDataset, saved as COCO
// JSON) whose images stay where they are (file_name relative to the images folder given).
// Every malformed file is an InputError that names the file and the field or line.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "centermask/data/coco_dataset.h"

namespace centermask {

/// What a conversion did beyond the dataset it returns (whose images and annotations count
/// themselves), for the command's summary.
struct ConversionSummary {
  std::size_t images_without_annotations = 0;
  /// Shapes or regions left out, by reason ("labelme shape_type 'line'", ...), with counts.
  std::map<std::string, std::size_t> skipped;
};

/// labelme: every *.json in `folder` (not recursive), each {"imagePath", "imageHeight",
/// "imageWidth", "shapes": [{"label", "points", "shape_type", "group_id"}]}. Polygons and
/// rectangles become polygons, circles a 64-sided polygon; shapes of one label and one non-null
/// group_id are one instance (labelme's convention); lines, points and the labels
/// "__ignore__" / "_background_" are skipped (counted). Image file names are imagePath
/// relative to `folder`. Categories are `class_names` in that order when given (a label
/// outside them is an error), else every label in sorted order; ids from 1.
CocoDataset convert_labelme(const std::filesystem::path& folder,
                            const std::vector<std::string>& class_names,
                            ConversionSummary* summary = nullptr);

/// YOLO segmentation: for every image in `images_folder` (jpg, jpeg, png, bmp), the label file
/// of the same stem in `labels_folder` (missing: an image without objects), one object per
/// line "CLASS x1 y1 x2 y2 ..." in coordinates normalised to [0, 1]. `class_names[CLASS]`
/// names the class; category id = CLASS + 1. A box line ("CLASS cx cy w h") is an error
/// naming the file and line: this format needs polygons.
CocoDataset convert_yolo_segmentation(const std::filesystem::path& images_folder,
                                      const std::filesystem::path& labels_folder,
                                      const std::vector<std::string>& class_names,
                                      ConversionSummary* summary = nullptr);

/// Instance-id PNGs: for every image in `images_folder`, the PNG of the same stem in
/// `masks_folder` (missing: an image without objects), of the image's size. Each non-zero
/// value is one instance (a colour PNG: each non-black colour, as DAVIS' palette masks
/// read). The class of value v: `class_of_value` v / id_divisor when id_divisor > 0 (the
/// Cityscapes style: 26001 is class 26; a quotient of 0 is a region, not an instance, and is
/// skipped), looked up in `class_names_by_value` (values not in it are an error naming the
/// file); with no names given every instance is one class named `single_class_name`.
struct InstancePngOptions {
  int id_divisor = 0;
  std::map<std::int64_t, std::string> class_names_by_value;
  std::string single_class_name = "object";
  /// A value that marks pixels to ignore (e.g. 255 in VOC-style masks); -1: none.
  std::int64_t ignore_value = -1;
};
CocoDataset convert_instance_pngs(const std::filesystem::path& images_folder,
                                  const std::filesystem::path& masks_folder,
                                  const InstancePngOptions& options,
                                  ConversionSummary* summary = nullptr);

/// A validation split for a dataset that has none: the images sorted by file name, every
/// `val_every`-th of them (positions val_every - 1, 2 val_every - 1, ...) with its annotations
/// into `val`, the rest into `train`; both keep every category, ids and masks as they were.
/// Deterministic, and spread over the whole set (file names often follow capture order).
struct DatasetSplit {
  CocoDataset train;
  CocoDataset val;
};
DatasetSplit split_every_nth(const CocoDataset& dataset, int val_every);

}  // namespace centermask
