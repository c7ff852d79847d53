#include "centermask/data/transforms.h"

#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "centermask/common/random.h"

namespace centermask {
namespace {

// An odd-sized image with a distinct value per pixel and an L-shaped instance near a corner.
cv::Mat ramp_image(int h, int w) {
  cv::Mat image(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      image.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(x * 3), static_cast<uchar>(y * 5),
                                            static_cast<uchar>((x * y) % 251));
  return image;
}

Instance l_shape(int left, int top) {
  Instance inst;
  inst.class_index = 2;
  inst.has_mask = true;
  inst.mask.left = left;
  inst.mask.top = top;
  inst.mask.width = 7;
  inst.mask.height = 9;
  inst.mask.pixels.assign(63, 0);
  for (int y = 0; y < 9; ++y)
    inst.mask.pixels[static_cast<std::size_t>(y * 7)] = 1;  // vertical bar
  for (int x = 0; x < 7; ++x) inst.mask.pixels[static_cast<std::size_t>(8 * 7 + x)] = 1;  // foot
  inst.box = {static_cast<float>(left), static_cast<float>(top), static_cast<float>(left + 7),
              static_cast<float>(top + 9)};
  return inst;
}

TrainAugmentOptions no_randomness(int h, int w) {
  TrainAugmentOptions o;
  o.input_height = h;
  o.input_width = w;
  o.random_scale_and_center = false;
  o.flip_probability = 0;
  o.color_jitter = false;
  return o;
}

TEST(Transforms, WithoutRandomnessASquareImageIsUnchanged) {
  const cv::Mat image = ramp_image(37, 37);
  Rng rng(1);
  bool flipped = true;
  const Affine2D m = sample_train_affine(37, 37, no_randomness(37, 37), rng, &flipped);
  EXPECT_FALSE(flipped);
  EXPECT_EQ(cv::norm(warp_image(image, m, 37, 37), image, cv::NORM_INF), 0.0);
  Instance out;
  ASSERT_TRUE(warp_instance(l_shape(3, 5), m, 37, 37, &out));
  EXPECT_EQ(out.mask.pixels, l_shape(3, 5).mask.pixels);
  EXPECT_EQ(out.mask.left, 3);
  EXPECT_EQ(out.mask.top, 5);
}

TEST(Transforms, FlipMirrorsImageMaskAndBoxExactly) {
  const int h = 29, w = 29;
  const cv::Mat image = ramp_image(h, w);
  TrainAugmentOptions o = no_randomness(h, w);
  o.flip_probability = 1.0;
  Rng rng(3);
  bool flipped = false;
  const Affine2D m = sample_train_affine(h, w, o, rng, &flipped);
  ASSERT_TRUE(flipped);
  cv::Mat expected;
  cv::flip(image, expected, 1);
  EXPECT_EQ(cv::norm(warp_image(image, m, h, w), expected, cv::NORM_INF), 0.0);

  const Instance in = l_shape(2, 4);
  Instance out;
  ASSERT_TRUE(warp_instance(in, m, h, w, &out));
  // Box [2, 9) mirrors to [w-9, w-2).
  EXPECT_FLOAT_EQ(out.box.x0, static_cast<float>(w - 9));
  EXPECT_FLOAT_EQ(out.box.x1, static_cast<float>(w - 2));
  EXPECT_FLOAT_EQ(out.box.y0, 4.0f);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      EXPECT_EQ(out.mask.at_image(x, y), in.mask.at_image(w - 1 - x, y)) << x << "," << y;
}

TEST(Transforms, RandomWarpsKeepMasksInsideTheirBoxesAndScaleAreas) {
  const cv::Mat image = ramp_image(120, 160);
  TrainAugmentOptions o;
  o.input_height = 96;
  o.input_width = 96;
  o.center_border_px = 32;
  o.color_jitter = false;
  Instance big;  // a filled 40×30 rectangle in the middle
  big.class_index = 0;
  big.has_mask = true;
  big.mask = {60, 40, 40, 30, std::vector<std::uint8_t>(1200, 1)};
  big.box = {60, 40, 100, 70};
  for (int draw = 0; draw < 40; ++draw) {
    Rng rng(100 + static_cast<std::uint64_t>(draw));
    bool flipped = false;
    const Affine2D m = sample_train_affine(120, 160, o, rng, &flipped);
    // Scale factors come from {0.6, 0.7, ..., 1.3} applied to the longer side.
    const double scale = 96.0 / (std::abs(m.a) * 160.0);  // m.a = input_width / (side · scale)
    const double step = std::round((scale - 0.6) / 0.1);
    EXPECT_NEAR(scale, 0.6 + 0.1 * step, 1e-9);
    EXPECT_GE(step, 0);
    EXPECT_LE(step, 7);
    // input_to_original undoes original_to_input.
    const Affine2D back = m.inverse().after(m);
    EXPECT_NEAR(back.a, 1, 1e-12);
    EXPECT_NEAR(back.c, 0, 1e-9);
    EXPECT_NEAR(back.f, 0, 1e-9);

    Instance out;
    if (!warp_instance(big, m, 96, 96, &out)) continue;
    for (int y = 0; y < out.mask.height; ++y)
      for (int x = 0; x < out.mask.width; ++x) {
        if (!out.mask.pixels[static_cast<std::size_t>(y * out.mask.width + x)]) continue;
        const double px = out.mask.left + x + 0.5, py = out.mask.top + y + 0.5;
        EXPECT_GE(px, out.box.x0 - 1.0);
        EXPECT_LE(px, out.box.x1 + 1.0);
        EXPECT_GE(py, out.box.y0 - 1.0);
        EXPECT_LE(py, out.box.y1 + 1.0);
      }
    // A rectangle fully inside the input keeps area × factor² (up to its rim).
    if (out.box.x0 > 0 && out.box.y0 > 0 && out.box.x1 < 96 && out.box.y1 < 96) {
      const double expected = 1200 * m.a * m.a;
      EXPECT_NEAR(static_cast<double>(out.mask.area()), expected,
                  2 * (out.box.width() + out.box.height()) + 2);
    }
  }
}

TEST(Transforms, InstanceWarpedOutsideIsDropped) {
  const Affine2D shift = Affine2D::scale_translate(1, 1, 100, 0);
  Instance out;
  EXPECT_FALSE(warp_instance(l_shape(3, 3), shift, 40, 40, &out));
  // Half out: the box is clipped to the input and the mask keeps only what is inside.
  ASSERT_TRUE(warp_instance(l_shape(3, 3), Affine2D::scale_translate(1, 1, 35, 0), 40, 40, &out));
  EXPECT_FLOAT_EQ(out.box.x0, 38.0f);
  EXPECT_FLOAT_EQ(out.box.x1, 40.0f);
  EXPECT_EQ(out.mask.left + out.mask.width, 40);
}

TEST(Transforms, TestTransformFitsAndCentersAndMapsBack) {
  const cv::Mat image = ramp_image(60, 100);  // h 60, w 100
  TestTransformOptions o;
  o.input_height = 64;
  o.input_width = 64;
  const TransformedSample s = transform_for_test(image, o);
  EXPECT_EQ(s.image.rows, 64);
  EXPECT_EQ(s.image.cols, 64);
  EXPECT_EQ(s.image.type(), CV_8UC3);
  // Scale 0.64, centered vertically: original corners land on [0, 64] × [12.8, 51.2].
  const Point2 tl = s.info.original_to_input.apply({0, 0});
  const Point2 br = s.info.original_to_input.apply({100, 60});
  EXPECT_NEAR(tl.x, 0, 1e-9);
  EXPECT_NEAR(tl.y, 12.8, 1e-9);
  EXPECT_NEAR(br.x, 64, 1e-9);
  EXPECT_NEAR(br.y, 51.2, 1e-9);
  const Point2 back = s.info.input_to_original.apply({32, 32});
  EXPECT_NEAR(back.x, 50, 1e-9);
  EXPECT_NEAR(back.y, 30, 1e-9);
  // Padding is black before normalisation: (0 - mean) / std.
  std::vector<float> chw(3 * 64 * 64);
  write_network_input(s, o.normalization, chw.data());
  EXPECT_NEAR(chw[0], -0.408f / 0.289f, 1e-5);

  o.keep_resolution = true;
  const TransformedSample k = transform_for_test(image, o);
  EXPECT_EQ(k.info.input_height, 64);
  EXPECT_EQ(k.info.input_width, 128);
  EXPECT_EQ(k.info.original_to_input.apply({0, 0}).x, 14);
  EXPECT_EQ(k.info.original_to_input.apply({0, 0}).y, 2);
}

// CenterNet's color_aug written naively, op by op, as its Python does (the reference for the
// fused pass); it draws from the generator in the same order.
cv::Mat naive_centernet_input(const cv::Mat& image_u8, double strength, double lighting_std,
                              Rng& rng, const PixelNormalization& n) {
  cv::Mat image;
  image_u8.convertTo(image, CV_32FC3, 1.0 / 255);
  cv::Mat gray, gray3;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  const double gray_mean = cv::mean(gray)[0];
  cv::cvtColor(gray, gray3, cv::COLOR_GRAY2BGR);
  int order[3] = {0, 1, 2};
  for (int i = 2; i > 0; --i) std::swap(order[i], order[rng.uniform_int(0, i)]);
  for (int op : order) {
    const double alpha = 1.0 + rng.uniform(-strength, strength);
    if (op == 0) image *= alpha;
    if (op == 1) image = image * alpha + cv::Scalar::all(gray_mean * (1 - alpha));
    if (op == 2) cv::addWeighted(image, alpha, gray3, 1 - alpha, 0, image);
  }
  const double eigval[3] = {0.2141788, 0.01817699, 0.00104694};
  const double eigvec[3][3] = {{-0.58752847, -0.69563484, 0.41340352},
                               {-0.5832747, 0.00994535, -0.81221408},
                               {-0.56089297, 0.71832671, 0.41158938}};
  double a[3];
  for (double& v : a) v = rng.normal(0, lighting_std);
  for (int r = 0; r < 3; ++r) {
    double shift = 0;
    for (int c = 0; c < 3; ++c) shift += eigvec[r][c] * eigval[c] * a[c];
    cv::Mat channel;
    cv::extractChannel(image, channel, r);
    channel += shift;
    channel = (channel - n.mean_bgr[r]) / n.std_bgr[r];
    cv::insertChannel(channel, image, r);
  }
  return image;
}

TEST(Transforms, FusedColorJitterMatchesCenterNetsOpByOp) {
  const cv::Mat image = ramp_image(13, 27);
  const PixelNormalization n;
  for (std::uint64_t seed = 0; seed < 25; ++seed) {
    Rng r1(seed), r2(seed);
    TransformedSample sample;
    sample.image = image;
    sample.jitter = sample_color_jitter(0.4, 0.1, r1);
    std::vector<float> chw(3 * 13 * 27);
    write_network_input(sample, n, chw.data());
    const cv::Mat expected = naive_centernet_input(image, 0.4, 0.1, r2, n);
    for (int y = 0; y < 13; ++y)
      for (int x = 0; x < 27; ++x)
        for (int c = 0; c < 3; ++c)
          ASSERT_NEAR(chw[static_cast<std::size_t>((c * 13 + y) * 27 + x)],
                      expected.at<cv::Vec3f>(y, x)[c], 2e-5)
              << "seed " << seed << " at " << x << "," << y << "," << c;
  }
}

TEST(Transforms, WithoutJitterTheInputIsJustNormalised) {
  TransformedSample sample;
  sample.image = ramp_image(5, 7);
  std::vector<float> chw(3 * 5 * 7);
  const PixelNormalization n;
  write_network_input(sample, n, chw.data());
  for (int c = 0; c < 3; ++c)
    EXPECT_NEAR(chw[static_cast<std::size_t>(c * 35 + 2 * 7 + 3)],
                (sample.image.at<cv::Vec3b>(2, 3)[c] / 255.0 - n.mean_bgr[c]) / n.std_bgr[c], 1e-5);
  // Zero strength and lighting: identity.
  Rng rng(9);
  const ColorJitter j = sample_color_jitter(0.0, 0.0, rng);
  EXPECT_DOUBLE_EQ(j.gain, 1.0);
  EXPECT_DOUBLE_EQ(j.gray_gain, 0.0);
  EXPECT_DOUBLE_EQ(j.mean_gain, 0.0);
}

TEST(Transforms, SmallImagesHalveTheCenterBorder) {
  // A 100-px side cannot keep a 128-px border: CenterNet halves it (to 32) so a center exists.
  TrainAugmentOptions o;
  o.input_height = 64;
  o.input_width = 64;
  for (int i = 0; i < 50; ++i) {
    Rng rng(static_cast<std::uint64_t>(i));
    bool flipped = false;
    const Affine2D m = sample_train_affine(100, 100, o, rng, &flipped);
    const Point2 center = m.inverse().apply({32, 32});
    const double cx = flipped ? 100 - center.x : center.x;
    EXPECT_GE(cx, 32 - 1e-9);
    EXPECT_LE(cx, 100 - 32);
  }
}

// Copy-paste: the chosen source objects' pixels replace the target's, covered target pixels
// leave the target's masks (a fully covered object leaves the targets), boxes shrink to what
// is left, and unchosen or box-only objects are not pasted.
Instance square_instance(int x0, int y0, int x1, int y1, int class_index) {
  Instance instance;
  instance.box = {static_cast<float>(x0), static_cast<float>(y0), static_cast<float>(x1),
                  static_cast<float>(y1)};
  instance.class_index = class_index;
  instance.has_mask = true;
  instance.mask.left = x0;
  instance.mask.top = y0;
  instance.mask.width = x1 - x0;
  instance.mask.height = y1 - y0;
  instance.mask.pixels.assign(static_cast<std::size_t>((x1 - x0) * (y1 - y0)), 1);
  return instance;
}

TEST(Transforms, CopyPastePastesChosenObjectsAndCutsWhatTheyCover) {
  TransformedSample target, source;
  target.image = cv::Mat(20, 20, CV_8UC3, cv::Scalar(10, 10, 10));
  source.image = cv::Mat(20, 20, CV_8UC3, cv::Scalar(200, 100, 50));
  target.instances.push_back(square_instance(2, 2, 12, 12, 0));  // partly covered
  target.instances.push_back(square_instance(9, 9, 11, 11, 1));  // fully covered
  target.instances.push_back(square_instance(0, 8, 9, 16, 2));   // its right part covered
  Instance box_only;
  box_only.box = {8, 8, 14, 14};
  box_only.class_index = 3;
  target.instances.push_back(box_only);
  source.instances.push_back(square_instance(8, 8, 16, 16, 4));  // chosen
  source.instances.push_back(square_instance(0, 0, 4, 4, 5));    // not chosen
  paste_instances(target, source, {true, false});

  ASSERT_EQ(target.instances.size(), 4u);
  EXPECT_EQ(target.dropped_outside, 1);
  // The L-shaped remainder of the first keeps its box; the third's box loses its right part.
  EXPECT_EQ(target.instances[0].class_index, 0);
  EXPECT_EQ(target.instances[0].mask.area(), 100 - 16);
  EXPECT_FLOAT_EQ(target.instances[0].box.x1, 12);
  EXPECT_EQ(target.instances[1].class_index, 2);
  EXPECT_FLOAT_EQ(target.instances[1].box.x0, 0);
  EXPECT_FLOAT_EQ(target.instances[1].box.x1, 8);
  EXPECT_FLOAT_EQ(target.instances[1].box.y0, 8);
  EXPECT_FLOAT_EQ(target.instances[1].box.y1, 16);
  EXPECT_EQ(target.instances[1].mask.area(), 8 * 8);
  EXPECT_EQ(target.instances[2].class_index, 3);  // box-only: as it was
  EXPECT_FLOAT_EQ(target.instances[2].box.x0, 8);
  EXPECT_EQ(target.instances[3].class_index, 4);  // the pasted object, last
  EXPECT_EQ(target.instances[3].mask.area(), 64);
  // Pixels: the chosen object's are the source's, the rest the target's.
  EXPECT_EQ(target.image.at<cv::Vec3b>(10, 10), cv::Vec3b(200, 100, 50));
  EXPECT_EQ(target.image.at<cv::Vec3b>(15, 15), cv::Vec3b(200, 100, 50));
  EXPECT_EQ(target.image.at<cv::Vec3b>(1, 1), cv::Vec3b(10, 10, 10));  // unchosen not pasted
  EXPECT_EQ(target.image.at<cv::Vec3b>(7, 7), cv::Vec3b(10, 10, 10));
  EXPECT_EQ(cv::countNonZero(target.image.reshape(1) == 200), 64);

  // Nothing chosen: nothing changes.
  TransformedSample untouched;
  untouched.image = cv::Mat(20, 20, CV_8UC3, cv::Scalar(10, 10, 10));
  untouched.instances.push_back(square_instance(2, 2, 12, 12, 0));
  paste_instances(untouched, source, {false, false});
  EXPECT_EQ(untouched.instances.size(), 1u);
  EXPECT_EQ(untouched.instances[0].mask.area(), 100);
  EXPECT_EQ(cv::countNonZero(untouched.image.reshape(1) != 10), 0);
}

}  // namespace
}  // namespace centermask
