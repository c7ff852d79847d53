#pragma once
// Image transforms of training and test time. All coordinates are continuous pixel
// coordinates in which pixel i covers [i, i + 1) (COCO's box convention); the affine maps
// are exact in that convention (OpenCV's warpAffine uses pixel centers, which the code
// converts), so a box, its mask and its image stay aligned through every warp and flip.

#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <vector>

#include "centermask/structures/affine.h"
#include "centermask/structures/instances.h"

namespace centermask {
class Rng;

/// What the network input is made of, and how to get back to the original image.
struct ImageInfo {
  std::int64_t image_id = -1;
  int original_height = 0;
  int original_width = 0;
  int input_height = 0;
  int input_width = 0;
  Affine2D original_to_input;
  Affine2D input_to_original;
  bool flipped = false;
};

/// CenterNet's normalisation (COCO statistics), for BGR images scaled to [0, 1].
struct PixelNormalization {
  float mean_bgr[3] = {0.408f, 0.447f, 0.470f};
  float std_bgr[3] = {0.289f, 0.274f, 0.278f};
};

/// CenterNet's training augmentation (`ctdet` with its defaults).
struct TrainAugmentOptions {
  int input_height = 512;
  int input_width = 512;
  bool random_scale_and_center = true;
  double scale_min = 0.6;  ///< scale factors drawn from {min, min+step, ..., max}
  double scale_max = 1.3;
  double scale_step = 0.1;
  int center_border_px =
      128;  ///< random center kept this far from the edges (halved for small images)
  double flip_probability = 0.5;
  bool color_jitter = true;
  double jitter_strength = 0.4;  ///< brightness, contrast, saturation: factors in 1 ± this
  double lighting_std = 0.1;     ///< PCA lighting noise
  /// Simple copy-paste (Ghiasi et al., CVPR 2021): with this probability a second training
  /// image, augmented on its own, gives a random half of its objects (pixels and masks),
  /// pasted over this one; objects they cover are cut out of (or, fully covered, removed
  /// from) the targets. 0 = off.
  double copy_paste_probability = 0;
  PixelNormalization normalization;
};

/// Test-time resize and pad (CenterNet): fit the image into a fixed input keeping its aspect
/// ratio, centered; or with `keep_resolution`, keep the scale and pad each side up to a
/// multiple of `size_divisor`.
struct TestTransformOptions {
  int input_height = 512;
  int input_width = 512;
  bool keep_resolution = false;
  int size_divisor = 32;
  PixelNormalization normalization;
};

/// CenterNet's colour augmentation (brightness, contrast, saturation in random order, then PCA
/// lighting) is linear in the pixel, its grayscale and the image's mean grayscale, so one draw
/// folds into: out_c = gain·x_c + gray_gain·gray(x) + mean_gain·mean(gray) + shift_c, for x in
/// [0, 1] BGR. Applying it in one pass fused with normalisation is 3–4× cheaper than the ops
/// one after the other, with the same result.
struct ColorJitter {
  double gain = 1;
  double gray_gain = 0;
  double mean_gain = 0;
  double shift_bgr[3] = {0, 0, 0};
};

/// Draws a jitter: order of the three blends, their factors 1 ± strength, lighting N(0, std).
ColorJitter sample_color_jitter(double strength, double lighting_std, Rng& rng);

/// The network input before normalisation: the warped 8-bit image and its colour jitter,
/// plus the instances in input coordinates and the bookkeeping to map predictions back.
struct TransformedSample {
  cv::Mat image;       ///< 8-bit BGR, input size
  ColorJitter jitter;  ///< identity at test time
  std::vector<Instance> instances;
  ImageInfo info;
  /// Instances dropped because the warp left nothing of them inside the input.
  std::int64_t dropped_outside = 0;
};

/// Writes the sample as the network sees it: /255, colour jitter, (x − mean) / std, planar
/// (3, H, W) float starting at `chw`.
void write_network_input(const TransformedSample& sample, const PixelNormalization& normalization,
                         float* chw);

/// The training affine (random scale, center and flip) for an image of this size.
Affine2D sample_train_affine(int height, int width, const TrainAugmentOptions& options, Rng& rng,
                             bool* flipped);

/// The test-time affine and the input size it leads to.
Affine2D test_affine(int height, int width, const TestTransformOptions& options, int* input_height,
                     int* input_width);

/// Warps an image (8-bit BGR) with an area-convention affine into an output of the given size;
/// outside the source is black, as in CenterNet.
cv::Mat warp_image(const cv::Mat& image, const Affine2D& map, int out_height, int out_width);

/// Warps an instance (box and mask patch) into an output of the given size, clipping the box.
/// Returns false when nothing of it lands inside.
bool warp_instance(const Instance& in, const Affine2D& map, int out_height, int out_width,
                   Instance* out);

/// Full training transform of one image and its instances (original coordinates).
TransformedSample transform_for_training(const cv::Mat& image_bgr,
                                         const std::vector<Instance>& instances,
                                         const TrainAugmentOptions& options, Rng& rng);

/// Copy-paste: pastes `source`'s instances with masks that `chosen` marks (one flag per
/// source instance) onto `target` (both at the same input size): their pixels replace the
/// target's, the target's masks lose the covered pixels and their boxes shrink to what is left,
/// and target instances left with no pixel are removed (counted in target.dropped_outside).
/// Target instances without masks are kept as they are.
void paste_instances(TransformedSample& target, const TransformedSample& source,
                     const std::vector<bool>& chosen);

/// Full test transform (no randomness).
TransformedSample transform_for_test(const cv::Mat& image_bgr, const TestTransformOptions& options);

}  // namespace centermask
