#include "centermask/data/transforms.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

#include "centermask/common/random.h"

namespace centermask {
namespace {

// Area convention (pixel i covers [i, i+1)) → OpenCV's pixel-center convention for the same
// map: u = x - 0.5 on both sides.
cv::Mat to_opencv_matrix(const Affine2D& m) {
  const Affine2D shift_in = Affine2D::scale_translate(1, 1, 0.5, 0.5);
  const Affine2D shift_out = Affine2D::scale_translate(1, 1, -0.5, -0.5);
  const Affine2D centered = shift_out.after(m.after(shift_in));
  const auto k = centered.coefficients();
  return (cv::Mat_<double>(2, 3) << k[0], k[1], k[2], k[3], k[4], k[5]);
}

// CenterNet's `_get_border`: halve the border until the image leaves room for a center.
int random_center_border(int border, int size) {
  int i = 1;
  while (size - border / i <= border / i) i *= 2;
  return border / i;
}

BoxXYXY transform_box(const BoxXYXY& box, const Affine2D& m) {
  const std::array<Point2, 4> corners = {Point2{box.x0, box.y0}, Point2{box.x1, box.y0},
                                         Point2{box.x0, box.y1}, Point2{box.x1, box.y1}};
  double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
  for (const Point2& c : corners) {
    const Point2 p = m.apply(c);
    x0 = std::min(x0, p.x), y0 = std::min(y0, p.y), x1 = std::max(x1, p.x), y1 = std::max(y1, p.y);
  }
  return {static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1),
          static_cast<float>(y1)};
}

}  // namespace

Affine2D sample_train_affine(int height, int width, const TrainAugmentOptions& options, Rng& rng,
                             bool* flipped) {
  double cx = width / 2.0, cy = height / 2.0;
  double side = std::max(height, width);
  if (options.random_scale_and_center) {
    const int steps = static_cast<int>(
        std::floor((options.scale_max - options.scale_min) / options.scale_step + 1e-6));
    side *= options.scale_min + options.scale_step * static_cast<double>(rng.uniform_int(0, steps));
    const int border_x = random_center_border(options.center_border_px, width);
    const int border_y = random_center_border(options.center_border_px, height);
    cx = static_cast<double>(rng.uniform_int(border_x, std::max(border_x, width - border_x - 1)));
    cy = static_cast<double>(rng.uniform_int(border_y, std::max(border_y, height - border_y - 1)));
  }
  const bool flip = options.flip_probability > 0 && rng.bernoulli(options.flip_probability);
  if (flipped) *flipped = flip;
  // CenterNet scales both axes by input_width / side and puts the chosen center in the middle.
  const double factor = options.input_width / side;
  const Affine2D crop =
      Affine2D::scale_translate(factor, factor, options.input_width / 2.0 - factor * cx,
                                options.input_height / 2.0 - factor * cy);
  if (!flip) return crop;
  // The center was drawn uniformly, so drawing it in the mirrored image is the same law.
  return crop.after(Affine2D{-1, 0, static_cast<double>(width), 0, 1, 0});
}

Affine2D test_affine(int height, int width, const TestTransformOptions& options, int* input_height,
                     int* input_width) {
  if (options.keep_resolution) {
    const int d = std::max(1, options.size_divisor);
    *input_height = (height + d - 1) / d * d;
    *input_width = (width + d - 1) / d * d;
    // Same scale, image centered in the padded canvas (whole-pixel shift keeps pixels exact).
    return Affine2D::scale_translate(1, 1, (*input_width - width) / 2,
                                     (*input_height - height) / 2);
  }
  *input_height = options.input_height;
  *input_width = options.input_width;
  const double factor = std::min(static_cast<double>(options.input_width) / width,
                                 static_cast<double>(options.input_height) / height);
  return Affine2D::scale_translate(factor, factor, (options.input_width - factor * width) / 2.0,
                                   (options.input_height - factor * height) / 2.0);
}

cv::Mat warp_image(const cv::Mat& image, const Affine2D& map, int out_height, int out_width) {
  cv::Mat out;
  cv::warpAffine(image, out, to_opencv_matrix(map), cv::Size(out_width, out_height),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

bool warp_instance(const Instance& in, const Affine2D& map, int out_height, int out_width,
                   Instance* out) {
  const BoxXYXY box = transform_box(in.box, map);
  out->class_index = in.class_index;
  out->score = in.score;
  out->has_mask = in.has_mask;
  out->box = {std::clamp(box.x0, 0.0f, static_cast<float>(out_width)),
              std::clamp(box.y0, 0.0f, static_cast<float>(out_height)),
              std::clamp(box.x1, 0.0f, static_cast<float>(out_width)),
              std::clamp(box.y1, 0.0f, static_cast<float>(out_height))};
  out->mask = {};
  if (!(out->box.width() > 0 && out->box.height() > 0)) return false;
  if (!in.has_mask) return true;
  if (in.mask.empty()) return false;

  // Warp only the mask's patch, into the part of the output its rectangle lands on.
  const BoxXYXY patch_box{static_cast<float>(in.mask.left), static_cast<float>(in.mask.top),
                          static_cast<float>(in.mask.left + in.mask.width),
                          static_cast<float>(in.mask.top + in.mask.height)};
  const BoxXYXY landed = transform_box(patch_box, map);
  const int left = std::max(0, static_cast<int>(std::floor(landed.x0)));
  const int top = std::max(0, static_cast<int>(std::floor(landed.y0)));
  const int right = std::min(out_width, static_cast<int>(std::ceil(landed.x1)));
  const int bottom = std::min(out_height, static_cast<int>(std::ceil(landed.y1)));
  if (right <= left || bottom <= top) return false;
  const Affine2D local =
      Affine2D::scale_translate(1, 1, -left, -top)
          .after(map.after(Affine2D::scale_translate(1, 1, in.mask.left, in.mask.top)));
  cv::Mat patch(in.mask.height, in.mask.width, CV_8UC1,
                const_cast<std::uint8_t*>(in.mask.pixels.data()));
  cv::Mat patch255 = patch * 255;
  cv::Mat warped;
  cv::warpAffine(patch255, warped, to_opencv_matrix(local), cv::Size(right - left, bottom - top),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(0));
  MaskPatch& m = out->mask;
  m.left = left, m.top = top, m.width = right - left, m.height = bottom - top;
  m.pixels.resize(static_cast<std::size_t>(m.width) * static_cast<std::size_t>(m.height));
  bool any = false;
  for (int y = 0; y < m.height; ++y) {
    const std::uint8_t* row = warped.ptr<std::uint8_t>(y);
    for (int x = 0; x < m.width; ++x) {
      const std::uint8_t v = row[x] >= 128 ? 1 : 0;
      m.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(m.width) +
               static_cast<std::size_t>(x)] = v;
      any |= v != 0;
    }
  }
  return any;
}

ColorJitter sample_color_jitter(double strength, double lighting_std, Rng& rng) {
  // CenterNet's color_aug: the grayscale and its mean are taken once, before the blends, so
  // each blend is image ← α·image + (1 − α)·X with X fixed; tracking the coefficients of
  // (image, gray, mean gray) composes them exactly.
  ColorJitter j;
  std::array<int, 3> order = {0, 1, 2};  // brightness, contrast, saturation
  for (int i = 2; i > 0; --i)
    std::swap(order[static_cast<std::size_t>(i)],
              order[static_cast<std::size_t>(rng.uniform_int(0, i))]);
  for (int op : order) {
    const double alpha = 1.0 + rng.uniform(-strength, strength);
    j.gain *= alpha;
    j.gray_gain *= alpha;
    j.mean_gain *= alpha;
    if (op == 1) j.mean_gain += 1 - alpha;  // contrast: blend with the mean gray
    if (op == 2) j.gray_gain += 1 - alpha;  // saturation: blend with the gray image
  }
  // PCA lighting with COCO's (CornerNet's) eigen decomposition of BGR pixel covariance.
  static const double kEigVal[3] = {0.2141788, 0.01817699, 0.00104694};
  static const double kEigVec[3][3] = {{-0.58752847, -0.69563484, 0.41340352},
                                       {-0.5832747, 0.00994535, -0.81221408},
                                       {-0.56089297, 0.71832671, 0.41158938}};
  double alpha[3];
  for (double& a : alpha) a = rng.normal(0, lighting_std);
  for (int r = 0; r < 3; ++r) {
    double v = 0;
    for (int c = 0; c < 3; ++c) v += kEigVec[r][c] * kEigVal[c] * alpha[c];
    j.shift_bgr[r] = v;
  }
  return j;
}

void write_network_input(const TransformedSample& sample, const PixelNormalization& n, float* chw) {
  const cv::Mat& image = sample.image;
  const ColorJitter& j = sample.jitter;
  // OpenCV's BGR2GRAY weights, on values scaled to [0, 1].
  const float wb = 0.114f / 255, wg = 0.587f / 255, wr = 0.299f / 255;
  double mean_gray = 0;
  if (j.mean_gain != 0) {
    for (int y = 0; y < image.rows; ++y) {
      const cv::Vec3b* row = image.ptr<cv::Vec3b>(y);
      double acc = 0;
      for (int x = 0; x < image.cols; ++x) acc += wb * row[x][0] + wg * row[x][1] + wr * row[x][2];
      mean_gray += acc;
    }
    mean_gray /= static_cast<double>(image.rows) * image.cols;
  }
  // out_c = (gain·v_c/255 + gray_gain·gray + mean_gain·mean + shift_c − mean_c) / std_c
  float scale[3], offset[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = static_cast<float>(j.gain / 255.0 / n.std_bgr[c]);
    offset[c] = static_cast<float>((j.mean_gain * mean_gray + j.shift_bgr[c] - n.mean_bgr[c]) /
                                   n.std_bgr[c]);
  }
  const float gray_scale[3] = {static_cast<float>(j.gray_gain / n.std_bgr[0]),
                               static_cast<float>(j.gray_gain / n.std_bgr[1]),
                               static_cast<float>(j.gray_gain / n.std_bgr[2])};
  const std::size_t plane =
      static_cast<std::size_t>(image.rows) * static_cast<std::size_t>(image.cols);
  float* out_b = chw;
  float* out_g = chw + plane;
  float* out_r = chw + 2 * plane;
  for (int y = 0; y < image.rows; ++y) {
    const cv::Vec3b* row = image.ptr<cv::Vec3b>(y);
    const std::size_t base = static_cast<std::size_t>(y) * static_cast<std::size_t>(image.cols);
    for (int x = 0; x < image.cols; ++x) {
      const float b = row[x][0], g = row[x][1], r = row[x][2];
      const float gray = wb * b + wg * g + wr * r;
      out_b[base + static_cast<std::size_t>(x)] = scale[0] * b + gray_scale[0] * gray + offset[0];
      out_g[base + static_cast<std::size_t>(x)] = scale[1] * g + gray_scale[1] * gray + offset[1];
      out_r[base + static_cast<std::size_t>(x)] = scale[2] * r + gray_scale[2] * gray + offset[2];
    }
  }
}

TransformedSample transform_for_training(const cv::Mat& image_bgr,
                                         const std::vector<Instance>& instances,
                                         const TrainAugmentOptions& options, Rng& rng) {
  TransformedSample out;
  ImageInfo& info = out.info;
  info.original_height = image_bgr.rows;
  info.original_width = image_bgr.cols;
  info.input_height = options.input_height;
  info.input_width = options.input_width;
  info.original_to_input =
      sample_train_affine(image_bgr.rows, image_bgr.cols, options, rng, &info.flipped);
  info.input_to_original = info.original_to_input.inverse();
  out.image =
      warp_image(image_bgr, info.original_to_input, options.input_height, options.input_width);
  if (options.color_jitter)
    out.jitter = sample_color_jitter(options.jitter_strength, options.lighting_std, rng);
  out.instances.reserve(instances.size());
  for (const Instance& instance : instances) {
    Instance moved;
    if (warp_instance(instance, info.original_to_input, options.input_height, options.input_width,
                      &moved))
      out.instances.push_back(std::move(moved));
    else
      ++out.dropped_outside;
  }
  return out;
}

TransformedSample transform_for_test(const cv::Mat& image_bgr,
                                     const TestTransformOptions& options) {
  TransformedSample out;
  ImageInfo& info = out.info;
  info.original_height = image_bgr.rows;
  info.original_width = image_bgr.cols;
  info.original_to_input =
      test_affine(image_bgr.rows, image_bgr.cols, options, &info.input_height, &info.input_width);
  info.input_to_original = info.original_to_input.inverse();
  out.image = warp_image(image_bgr, info.original_to_input, info.input_height, info.input_width);
  return out;
}

void paste_instances(TransformedSample& target, const TransformedSample& source,
                     const std::vector<bool>& chosen) {
  const int height = target.image.rows, width = target.image.cols;
  if (source.image.rows != height || source.image.cols != width)
    throw std::invalid_argument("paste_instances: source and target differ in size");
  // The union of the pasted masks, and the pasted pixels written over the target's.
  std::vector<std::uint8_t> covered(static_cast<std::size_t>(height) * width, 0);
  std::vector<Instance> pasted;
  for (std::size_t i = 0; i < source.instances.size(); ++i) {
    const Instance& instance = source.instances[i];
    if (i >= chosen.size() || !chosen[i] || !instance.has_mask || instance.mask.empty()) continue;
    const MaskPatch& m = instance.mask;
    for (int y = std::max(0, m.top); y < std::min(height, m.top + m.height); ++y) {
      const std::uint8_t* row =
          m.pixels.data() + static_cast<std::size_t>(y - m.top) * static_cast<std::size_t>(m.width);
      const cv::Vec3b* from = source.image.ptr<cv::Vec3b>(y);
      cv::Vec3b* to = target.image.ptr<cv::Vec3b>(y);
      for (int x = std::max(0, m.left); x < std::min(width, m.left + m.width); ++x) {
        if (!row[x - m.left]) continue;
        to[x] = from[x];
        covered[static_cast<std::size_t>(y) * width + x] = 1;
      }
    }
    pasted.push_back(instance);
  }
  if (pasted.empty()) return;
  // The target's objects lose what the pasted ones cover; their boxes shrink to the rest.
  std::vector<Instance> kept;
  for (Instance& instance : target.instances) {
    if (!instance.has_mask || instance.mask.empty()) {
      kept.push_back(std::move(instance));
      continue;
    }
    MaskPatch& m = instance.mask;
    int x0 = width, y0 = height, x1 = -1, y1 = -1;
    for (int py = 0; py < m.height; ++py) {
      const int y = m.top + py;
      for (int px = 0; px < m.width; ++px) {
        std::uint8_t& p = m.pixels[static_cast<std::size_t>(py) * m.width + px];
        if (!p) continue;
        const int x = m.left + px;
        if (x >= 0 && y >= 0 && x < width && y < height &&
            covered[static_cast<std::size_t>(y) * width + x]) {
          p = 0;
          continue;
        }
        x0 = std::min(x0, x);
        y0 = std::min(y0, y);
        x1 = std::max(x1, x);
        y1 = std::max(y1, y);
      }
    }
    if (x1 < 0) {  // fully covered
      ++target.dropped_outside;
      continue;
    }
    instance.box.x0 = std::max(instance.box.x0, static_cast<float>(x0));
    instance.box.y0 = std::max(instance.box.y0, static_cast<float>(y0));
    instance.box.x1 = std::min(instance.box.x1, static_cast<float>(x1 + 1));
    instance.box.y1 = std::min(instance.box.y1, static_cast<float>(y1 + 1));
    kept.push_back(std::move(instance));
  }
  for (Instance& instance : pasted) kept.push_back(std::move(instance));
  target.instances = std::move(kept);
}

}  // namespace centermask
