#pragma once
// Image transforms of training and test time. All coordinates are continuous pixel
// coordinates in which pixel i covers [i, i + 1) (COCO's box convention); the affine maps
// are exact in that convention (OpenCV's warpAffine uses pixel centers, which the code
// converts), so a box, its mask and its image stay aligned through every warp and flip.

#include <cstdint>
#include <vector>

#include <opencv2/core/mat.hpp>

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
  double scale_min = 0.6;   ///< scale factors drawn from {min, min+step, ..., max}
  double scale_max = 1.3;
  double scale_step = 0.1;
  int center_border_px = 128;  ///< random center kept this far from the edges (halved for small images)
  double flip_probability = 0.5;
  bool color_jitter = true;
  double jitter_strength = 0.4;  ///< brightness, contrast, saturation: factors in 1 ± this
  double lighting_std = 0.1;     ///< PCA lighting noise
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

/// The network input: a normalised float image (H, W, 3 channels BGR, CV_32FC3), the instances
/// in input coordinates and the bookkeeping to map predictions back.
struct TransformedSample {
  cv::Mat image;
  std::vector<Instance> instances;
  ImageInfo info;
  /// Instances dropped because the warp left nothing of them inside the input.
  std::int64_t dropped_outside = 0;
};

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

/// CenterNet's colour augmentation on a float BGR image in [0, 1]: brightness, contrast and
/// saturation in random order, then PCA lighting.
void color_augment(cv::Mat& image_float, double strength, double lighting_std, Rng& rng);

/// Full training transform of one image and its instances (original coordinates).
TransformedSample transform_for_training(const cv::Mat& image_bgr,
                                         const std::vector<Instance>& instances,
                                         const TrainAugmentOptions& options, Rng& rng);

/// Full test transform (no randomness).
TransformedSample transform_for_test(const cv::Mat& image_bgr, const TestTransformOptions& options);

/// 8-bit BGR → float in [0, 1] → (x - mean) / std, per channel.
cv::Mat to_normalized_float(const cv::Mat& image_bgr, const PixelNormalization& normalization);
void normalize_in_place(cv::Mat& image_float01, const PixelNormalization& normalization);

}  // namespace centermask
