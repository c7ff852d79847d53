#pragma once
// CenterMask's training targets for one image (SPEC §1–2): CenterNet's center heatmap,
// per-object center cell, sub-cell offset, box size, class, and each object's mask cropped to
// its box at output resolution for the mask loss, plus optional per-class union masks for
// direct saliency supervision. A pure function of (instances, output size, classes, stride).

#include <cstdint>
#include <memory>
#include <vector>

#include "centermask/data/mask_cells.h"
#include "centermask/data/target_encoder.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// CenterNet's gaussian_radius((h, w), min_overlap): the smallest of its three quadratic-root
/// bounds on how far a corner may move while the box keeps IoU ≥ min_overlap.
double gaussian_radius(double height, double width, double min_overlap = 0.7);

/// Draws CenterNet's Gaussian (σ = (2r+1)/6, zeroed below float epsilon · peak) at an integer
/// center by element-wise max into a (height, width) map.
void draw_gaussian_max(float* map, int height, int width, int center_x, int center_y, int radius);

struct CenterMaskTargetOptions {
  int num_classes = 1;
  int stride = 4;  ///< input pixels per output cell (heatmap, offset, size)
  /// Input pixels per cell of the mask map (the saliency map's resolution: mask crops, mask
  /// regions and union masks are at this resolution); must divide `stride`.
  int mask_stride = 4;
  int max_objects = 128;  ///< slots per image (CenterNet's max_objs); more are dropped and counted
  double min_overlap = 0.7;        ///< of gaussian_radius
  bool class_union_masks = false;  ///< also build (C, Hm, Wm) per-class union masks
  /// TTFNet's dense box targets (Liu et al., AAAI 2020): offset and size are also targets at
  /// every cell of an elliptical Gaussian of radii alpha·(w/2, h/2) around the center, each
  /// object's weights summing to 1; where objects overlap the smaller one wins.
  bool dense_box = false;
  double dense_box_alpha = 0.54;
};

struct CenterMaskTargets {
  int num_classes = 0;
  int height = 0;  ///< output map rows
  int width = 0;   ///< output map columns
  int mask_stride = 0;
  int mask_height = 0;  ///< mask map rows (input height / mask_stride)
  int mask_width = 0;   ///< mask map columns
  int max_objects = 0;
  int num_objects = 0;                 ///< valid slots (the first num_objects)
  std::int64_t dropped_too_small = 0;  ///< objects whose box has no area at output resolution
  std::int64_t dropped_over_max = 0;   ///< objects beyond max_objects

  std::vector<float> heatmap;  ///< (C, H, W), CenterNet Gaussians
  // Per slot (max_objects of each), zero past num_objects:
  std::vector<std::int64_t> center_index;  ///< (K) y·W + x of the integer center cell
  std::vector<float> offset;               ///< (K, 2) center − integer center, x then y
  std::vector<float> size;                 ///< (K, 2) box width, height in cells
  std::vector<std::int64_t> class_id;      ///< (K)
  std::vector<std::uint8_t> valid;         ///< (K) 1 for a real object
  std::vector<std::uint8_t> has_mask;      ///< (K) 1 when the object has a mask target
  std::vector<std::int32_t> radius;        ///< (K) the heatmap Gaussian's radius, output cells
  std::vector<std::int32_t> source_index;  ///< (K) the instance it encodes (index in the input)
  /// (K) box_cell_region of the ground-truth box, in mask-map cells
  std::vector<CellRegion> mask_region;
  /// (K + 1) offsets into mask_pixels; object k's crop is mask_region[k] clipped to the map,
  /// row-major, each value the fraction of that cell's input pixels covered by the mask.
  std::vector<std::int64_t> mask_start;
  std::vector<float> mask_pixels;
  std::vector<float> class_masks;  ///< (C, Hm, Wm) when requested, else empty
  /// Dense box targets when requested, else empty: (4, H, W) offset x, y (object center minus
  /// the cell), width, height in output cells; and (H, W) weights, zero outside every object.
  std::vector<float> box_target;
  std::vector<float> box_weight;

  /// The clipped part of mask_region[k] (what mask_pixels holds for k), in mask cells.
  CellRegion clipped_region(int k) const;
};

/// Encodes instances given in input pixels (box and mask) for an output map of
/// input_height/stride × input_width/stride cells.
CenterMaskTargets encode_centermask_targets(const std::vector<Instance>& instances,
                                            int input_height, int input_width,
                                            const CenterMaskTargetOptions& options);

/// A batch's CenterMaskTargets collated into contiguous arrays, image after image; h, w = the
/// output map, K = max_objects. What the loader hands the trainer for CenterMask
/// (make_training_targets turns it into tensors).
struct CenterMaskBatchTargets : BatchTargets {
  int size = 0;  ///< N images
  int num_classes = 0;
  int output_height = 0;
  int output_width = 0;
  int mask_height = 0;  ///< mask map (saliency resolution) rows and columns
  int mask_width = 0;
  int max_objects = 0;
  std::vector<float> heatmap;              ///< (N, C, h, w)
  std::vector<std::int64_t> center_index;  ///< (N, K)
  std::vector<float> offset;               ///< (N, K, 2)
  std::vector<float> size_cells;           ///< (N, K, 2)
  std::vector<std::int64_t> class_id;      ///< (N, K)
  std::vector<std::uint8_t> valid;         ///< (N, K)
  std::vector<std::uint8_t> has_mask;      ///< (N, K)
  std::vector<std::int32_t> radius;        ///< (N, K) heatmap Gaussian radius, cells
  std::vector<CellRegion> mask_region;     ///< (N, K) in mask cells
  std::vector<std::int64_t> mask_start;    ///< (N·K + 1) into mask_pixels
  std::vector<float> mask_pixels;          ///< crops, see CenterMaskTargets
  std::vector<float> class_masks;          ///< (N, C, hm, wm) or empty
  std::vector<float> box_target;           ///< (N, 4, h, w) dense box targets, or empty
  std::vector<float> box_weight;           ///< (N, h, w), or empty
};

/// Collates per-image targets (all of one output size, class count and max_objects).
CenterMaskBatchTargets collate_centermask_targets(
    const std::vector<const CenterMaskTargets*>& targets);

/// One image's targets behind the method interface.
struct CenterMaskSampleTargets : SampleTargets {
  CenterMaskTargets targets;
  std::int64_t dropped_objects() const override {
    return targets.dropped_too_small + targets.dropped_over_max;
  }
};

/// CenterMask's target encoder for the loader: encode_centermask_targets and
/// collate_centermask_targets with fixed options.
class CenterMaskTargetEncoder : public TargetEncoder {
 public:
  explicit CenterMaskTargetEncoder(CenterMaskTargetOptions options) : options_(options) {}
  int num_classes() const override { return options_.num_classes; }
  std::unique_ptr<SampleTargets> encode(const std::vector<Instance>& instances, int input_height,
                                        int input_width) const override;
  std::shared_ptr<const BatchTargets> collate(
      const std::vector<std::unique_ptr<SampleTargets>>& samples) const override;
  const CenterMaskTargetOptions& options() const { return options_; }

 private:
  CenterMaskTargetOptions options_;
};

}  // namespace centermask
