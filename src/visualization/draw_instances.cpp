#include "centermask/visualization/draw_instances.h"

#include <fmt/format.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>

namespace centermask {

cv::Scalar instance_colour(std::size_t i) {
  // Golden-angle hue steps keep neighbouring instances far apart in hue; saturation and
  // value alternate so that many instances stay distinguishable.
  const double hue = std::fmod(static_cast<double>(i) * 137.508, 360.0) / 2.0;  // OpenCV: 0..180
  const double sat = i % 2 == 0 ? 230 : 170;
  const double val = i % 3 == 0 ? 255 : 210;
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(hue, sat, val)), bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const cv::Vec3b v = bgr.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(v[0]), static_cast<double>(v[1]), static_cast<double>(v[2])};
}

int display_scale(int height, int width, const DrawOptions& options) {
  const int side = std::max(1, std::max(height, width));
  if (options.min_display_side <= 0 || side >= options.min_display_side) return 1;
  return std::min(16, (options.min_display_side + side - 1) / side);
}

cv::Mat draw_instances(const cv::Mat& image, const std::vector<Instance>& instances,
                       const std::vector<std::string>& class_names, const DrawOptions& options) {
  const int scale = display_scale(image.rows, image.cols, options);
  cv::Mat canvas;
  if (image.channels() == 1) {
    cv::cvtColor(image, canvas, cv::COLOR_GRAY2BGR);
  } else {
    canvas = image.clone();
  }
  if (scale > 1) cv::resize(canvas, canvas, cv::Size(), scale, scale, cv::INTER_NEAREST);

  // Masks first (all of them), then outlines, boxes and labels on top, so no fill hides a label.
  std::vector<cv::Mat> scaled_masks(instances.size());
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const Instance& inst = instances[i];
    if (!inst.has_mask || inst.mask.empty()) continue;
    const MaskPatch& m = inst.mask;
    cv::Mat patch(m.height, m.width, CV_8UC1, const_cast<std::uint8_t*>(m.pixels.data()));
    cv::Mat full = cv::Mat::zeros(canvas.rows, canvas.cols, CV_8UC1);
    const cv::Rect target(m.left * scale, m.top * scale, m.width * scale, m.height * scale);
    const cv::Rect visible = target & cv::Rect(0, 0, canvas.cols, canvas.rows);
    if (visible.empty()) continue;
    cv::Mat enlarged;
    cv::resize(patch, enlarged, cv::Size(target.width, target.height), 0, 0, cv::INTER_NEAREST);
    enlarged(cv::Rect(visible.x - target.x, visible.y - target.y, visible.width, visible.height))
        .copyTo(full(visible));
    scaled_masks[i] = full;
    cv::Mat tinted(canvas.size(), CV_8UC3, instance_colour(i));
    cv::Mat blended;
    cv::addWeighted(canvas, 1 - options.mask_alpha, tinted, options.mask_alpha, 0, blended);
    blended.copyTo(canvas, full);
  }
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const Instance& inst = instances[i];
    const cv::Scalar colour = instance_colour(i);
    if (options.draw_contours && !scaled_masks[i].empty()) {
      std::vector<std::vector<cv::Point>> contours;
      cv::findContours(scaled_masks[i], contours, cv::RETR_CCOMP, cv::CHAIN_APPROX_SIMPLE);
      cv::drawContours(canvas, contours, -1, colour, std::max(1, scale / 2), cv::LINE_8);
    }
    const cv::Point p0(static_cast<int>(std::lround(inst.box.x0 * scale)),
                       static_cast<int>(std::lround(inst.box.y0 * scale)));
    const cv::Point p1(static_cast<int>(std::lround(inst.box.x1 * scale)) - 1,
                       static_cast<int>(std::lround(inst.box.y1 * scale)) - 1);
    if (options.draw_boxes) cv::rectangle(canvas, p0, p1, colour, 1, cv::LINE_8);
    if (options.draw_labels) {
      std::string label =
          inst.class_index >= 0 && static_cast<std::size_t>(inst.class_index) < class_names.size()
              ? class_names[static_cast<std::size_t>(inst.class_index)]
              : fmt::format("class {}", inst.class_index);
      if (options.draw_scores) label += fmt::format(" {:.2f}", inst.score);
      int baseline = 0;
      const double font_scale = 0.4;
      const cv::Size text =
          cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, font_scale, 1, &baseline);
      // Above the box when there is room, else inside its top edge.
      const int top =
          p0.y - text.height - baseline - 2 >= 0 ? p0.y - text.height - baseline - 2 : p0.y;
      const cv::Rect background(p0.x, top, text.width + 4, text.height + baseline + 2);
      cv::rectangle(canvas, background & cv::Rect(0, 0, canvas.cols, canvas.rows), colour,
                    cv::FILLED);
      const double luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2];
      cv::putText(canvas, label, cv::Point(p0.x + 2, top + text.height + 1),
                  cv::FONT_HERSHEY_SIMPLEX, font_scale,
                  luminance > 140 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255), 1,
                  cv::LINE_AA);
    }
  }
  return canvas;
}

}  // namespace centermask
