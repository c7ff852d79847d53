#pragma once
// Using a graph that `centermask export` wrote (ONNX, TorchScript) from a program of your own,
// with OpenCV alone — no LibTorch, nothing else of ours; copy this header where you need it.
//
//   const centermask::deploy::InputTransform fit = centermask::deploy::fit_into(image, 512, 512);
//   std::vector<float> input = centermask::deploy::network_input(image, fit);   // (1, 3, 512, 512)
//   ... run the graph (ONNX Runtime, OpenCV DNN, TensorRT) on `input` ...
//   ExportedOutputs out{boxes, scores, classes, masks, mask_boxes, count, /*mask_size=*/28};
//   for (const Detection& d : centermask::deploy::detections(out, 0, fit, 0.4f)) ...
//
// The graph's outputs per image (export --postprocess on): K rows, the first `count` valid, in
// input pixels; each mask an M×M grid of probabilities over its mask box (cell (i, j) centered
// (j + 0.5)/M across and (i + 0.5)/M down the box), or for PolarMask a polygon. Pasting
// samples the grid bilinearly at every original pixel's center and keeps what is above the
// mask threshold (a polygon is filled): what `centermask predict` gives, up to the M×M grid's
// resampling.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace centermask::deploy {

/// How an image was fitted into the network input: input = scale · original + offset, in
/// pixel-area coordinates (pixel i covers [i, i + 1)).
struct InputTransform {
  double scale = 1, offset_x = 0, offset_y = 0;
  int input_width = 0, input_height = 0;
  int original_width = 0, original_height = 0;
};

/// CenterNet's test transform: the image scaled to fit the input keeping its aspect ratio,
/// centered (what `centermask predict` does at test.input_size).
inline InputTransform fit_into(const cv::Mat& image, int input_width, int input_height) {
  InputTransform t;
  t.original_width = image.cols;
  t.original_height = image.rows;
  t.input_width = input_width;
  t.input_height = input_height;
  t.scale = std::min(static_cast<double>(input_width) / image.cols,
                     static_cast<double>(input_height) / image.rows);
  t.offset_x = (input_width - t.scale * image.cols) / 2.0;
  t.offset_y = (input_height - t.scale * image.rows) / 2.0;
  return t;
}

/// The network input for an 8-bit BGR image: warped by `t` (bilinear, black outside), /255,
/// minus mean, divided by std (BGR order; the file's metadata mean_bgr / std_bgr), planar
/// (3, H, W) float32.
inline std::vector<float> network_input(const cv::Mat& image_bgr, const InputTransform& t,
                                        const float mean_bgr[3], const float std_bgr[3]) {
  // OpenCV's matrix works on pixel indices (centers at integers): shift by half a pixel.
  const cv::Mat matrix = (cv::Mat_<double>(2, 3) << t.scale, 0, t.offset_x + 0.5 * t.scale - 0.5, 0,
                          t.scale, t.offset_y + 0.5 * t.scale - 0.5);
  cv::Mat warped;
  cv::warpAffine(image_bgr, warped, matrix, cv::Size(t.input_width, t.input_height),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  const std::size_t plane = static_cast<std::size_t>(t.input_width) * t.input_height;
  std::vector<float> out(3 * plane);
  for (int y = 0; y < t.input_height; ++y) {
    const std::uint8_t* row = warped.ptr<std::uint8_t>(y);
    for (int x = 0; x < t.input_width; ++x)
      for (int c = 0; c < 3; ++c)
        out[c * plane + static_cast<std::size_t>(y) * t.input_width + x] =
            (row[3 * x + c] / 255.0f - mean_bgr[c]) / std_bgr[c];
  }
  return out;
}

/// CenterNet's normalisation (COCO statistics), what the metadata's mean_bgr / std_bgr hold
/// for the shipped recipes.
inline std::vector<float> network_input(const cv::Mat& image_bgr, const InputTransform& t) {
  static const float mean[3] = {0.408f, 0.447f, 0.470f};
  static const float std[3] = {0.289f, 0.274f, 0.278f};
  return network_input(image_bgr, t, mean, std);
}

/// A box in input pixels mapped to the original image and clipped to it.
inline cv::Rect2f box_in_original(const float box[4], const InputTransform& t) {
  const auto clip = [](double v, int hi) {
    return static_cast<float>(std::clamp(v, 0.0, static_cast<double>(hi)));
  };
  const float x0 = clip((box[0] - t.offset_x) / t.scale, t.original_width);
  const float y0 = clip((box[1] - t.offset_y) / t.scale, t.original_height);
  const float x1 = clip((box[2] - t.offset_x) / t.scale, t.original_width);
  const float y1 = clip((box[3] - t.offset_y) / t.scale, t.original_height);
  return {x0, y0, x1 - x0, y1 - y0};
}

/// A binary mask over part of the original image: `pixels` (CV_8U, 0 or 1) at `rect`.
struct MaskPatch {
  cv::Rect rect;
  cv::Mat pixels;
};

/// One detection's M×M mask probabilities over its mask box (input pixels) pasted into the
/// original image: every pixel of the box's original rectangle samples the grid bilinearly
/// (edges replicated) at its center, 1 where above `threshold`.
inline MaskPatch paste_mask(const float* mask, int mask_size, const float mask_box[4],
                            const InputTransform& t, float threshold) {
  MaskPatch patch;
  const cv::Rect2f area = box_in_original(mask_box, t);
  const int x0 = static_cast<int>(std::floor(area.x)), y0 = static_cast<int>(std::floor(area.y));
  const int x1 = static_cast<int>(std::ceil(area.x + area.width));
  const int y1 = static_cast<int>(std::ceil(area.y + area.height));
  patch.rect = cv::Rect(x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0));
  patch.pixels = cv::Mat::zeros(patch.rect.height, patch.rect.width, CV_8U);
  const double box_w = mask_box[2] - mask_box[0], box_h = mask_box[3] - mask_box[1];
  if (patch.rect.area() == 0 || box_w <= 0 || box_h <= 0) return patch;
  // Per axis: the two grid cells each pixel reads and the second one's weight.
  const auto taps = [&](int first, int count, double offset, double box_start, double box_size,
                        std::vector<int>& lo, std::vector<float>& weight) {
    lo.resize(static_cast<std::size_t>(count));
    weight.resize(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
      const double input = t.scale * (first + i + 0.5) + offset;
      double g = (input - box_start) * mask_size / box_size - 0.5;
      g = std::clamp(g, 0.0, static_cast<double>(mask_size - 1));
      const int base = std::min(static_cast<int>(std::floor(g)), mask_size - 1);
      lo[static_cast<std::size_t>(i)] = base;
      weight[static_cast<std::size_t>(i)] = static_cast<float>(g - base);
    }
  };
  std::vector<int> col, row;
  std::vector<float> col_weight, row_weight;
  taps(x0, patch.rect.width, t.offset_x, mask_box[0], box_w, col, col_weight);
  taps(y0, patch.rect.height, t.offset_y, mask_box[1], box_h, row, row_weight);
  const auto at = [&](int r, int c) {
    return mask[static_cast<std::size_t>(std::min(r, mask_size - 1)) * mask_size +
                std::min(c, mask_size - 1)];
  };
  for (int y = 0; y < patch.rect.height; ++y) {
    const int r = row[static_cast<std::size_t>(y)];
    const float wy = row_weight[static_cast<std::size_t>(y)];
    std::uint8_t* out = patch.pixels.ptr<std::uint8_t>(y);
    for (int x = 0; x < patch.rect.width; ++x) {
      const int c = col[static_cast<std::size_t>(x)];
      const float wx = col_weight[static_cast<std::size_t>(x)];
      const float top = at(r, c) + (at(r, c + 1) - at(r, c)) * wx;
      const float bottom = at(r + 1, c) + (at(r + 1, c + 1) - at(r + 1, c)) * wx;
      out[x] = top + (bottom - top) * wy > threshold ? 1 : 0;
    }
  }
  return patch;
}

/// A polygon in input pixels (PolarMask's rays' ends, `points` x, y pairs) filled in the
/// original image: its vertices mapped there and cut to whole pixels, then OpenCV's fillPoly.
inline MaskPatch fill_polygon(const float* points, int count, const InputTransform& t) {
  MaskPatch patch;
  if (count <= 0 || t.original_width <= 0 || t.original_height <= 0) return patch;
  std::vector<cv::Point> vertices;
  int x0 = t.original_width, y0 = t.original_height, x1 = -1, y1 = -1;
  for (int i = 0; i < count; ++i) {
    const double x = (points[2 * i] - t.offset_x) / t.scale;
    const double y = (points[2 * i + 1] - t.offset_y) / t.scale;
    const cv::Point v(std::clamp(static_cast<int>(x), 0, t.original_width - 1),
                      std::clamp(static_cast<int>(y), 0, t.original_height - 1));
    vertices.push_back(v);
    x0 = std::min(x0, v.x), y0 = std::min(y0, v.y);
    x1 = std::max(x1, v.x), y1 = std::max(y1, v.y);
  }
  patch.rect = cv::Rect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  patch.pixels = cv::Mat::zeros(patch.rect.height, patch.rect.width, CV_8U);
  for (cv::Point& v : vertices) v -= cv::Point(x0, y0);
  cv::fillPoly(patch.pixels, std::vector<std::vector<cv::Point>>{vertices}, cv::Scalar(1));
  return patch;
}

/// The graph's outputs (one batch, as the runtime returned them; row-major).
struct ExportedOutputs {
  const float* boxes = nullptr;           ///< (N, K, 4) input pixels
  const float* scores = nullptr;          ///< (N, K)
  const std::int64_t* classes = nullptr;  ///< (N, K) contiguous class index (class_names)
  const float* masks = nullptr;           ///< (N, K, M, M) or null (methods without masks)
  const float* mask_boxes = nullptr;      ///< (N, K, 4) input pixels, with masks
  const std::int64_t* count = nullptr;    ///< (N) valid rows
  const float* polygons = nullptr;        ///< (N, K, P, 2) PolarMask's, instead of masks
  int polygon_points = 0;                 ///< P
  int top_k = 100;                        ///< K
  int mask_size = 56;                     ///< M
};

struct Detection {
  cv::Rect2f box;  ///< original pixels
  float score = 0;
  int class_index = 0;
  MaskPatch mask;  ///< original pixels; empty without masks
};

/// Image `image`'s valid detections in original pixels, highest score first.
inline std::vector<Detection> detections(const ExportedOutputs& out, int image,
                                         const InputTransform& t, float mask_threshold) {
  std::vector<Detection> result;
  const std::int64_t valid = std::min<std::int64_t>(out.count[image], out.top_k);
  const std::size_t m2 = static_cast<std::size_t>(out.mask_size) * out.mask_size;
  for (std::int64_t j = 0; j < valid; ++j) {
    const std::size_t row = static_cast<std::size_t>(image) * out.top_k + j;
    Detection d;
    d.box = box_in_original(out.boxes + 4 * row, t);
    d.score = out.scores[row];
    d.class_index = static_cast<int>(out.classes[row]);
    if (out.masks != nullptr)
      d.mask = paste_mask(out.masks + m2 * row, out.mask_size, out.mask_boxes + 4 * row, t,
                          mask_threshold);
    if (out.polygons != nullptr)
      d.mask = fill_polygon(out.polygons + 2 * static_cast<std::size_t>(out.polygon_points) * row,
                            out.polygon_points, t);
    result.push_back(std::move(d));
  }
  return result;
}

}  // namespace centermask::deploy
