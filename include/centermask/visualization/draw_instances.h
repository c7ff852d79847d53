#pragma once
// Draws instances over an image: each instance's mask filled in its own colour and outlined,
// its box, and a label with the class name (and score for predictions). The same code draws
// ground truth and predictions, so the two can be compared side by side.

#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "centermask/structures/instances.h"

namespace centermask {

struct DrawOptions {
  double mask_alpha = 0.45;
  bool draw_boxes = true;
  bool draw_contours = true;
  bool draw_labels = true;
  bool draw_scores = false;  ///< append the score to the label (predictions)
  /// Small images are enlarged (nearest neighbour, whole factors) until the longer side is at
  /// least this, so that labels stay legible; 0 = never.
  int min_display_side = 512;
};

/// A distinct, deterministic colour (BGR) for instance number `i`.
cv::Scalar instance_colour(std::size_t i);

/// The enlargement factor draw_instances uses for an image of this size.
int display_scale(int height, int width, const DrawOptions& options);

/// Returns a new image (8-bit BGR); `instances` are in `image`'s pixel coordinates.
cv::Mat draw_instances(const cv::Mat& image, const std::vector<Instance>& instances,
                       const std::vector<std::string>& class_names,
                       const DrawOptions& options = {});

}  // namespace centermask
