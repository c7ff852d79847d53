#include "centermask/visualization/draw_instances.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>

namespace centermask {
namespace {

Instance diagonal_instance() {
  Instance inst;
  inst.class_index = 0;
  inst.has_mask = true;
  inst.mask = {2, 1, 3, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1}};
  inst.box = {2, 1, 5, 4};
  return inst;
}

TEST(DrawInstances, FillsExactlyTheMaskPixels) {
  const cv::Mat image(7, 9, CV_8UC3, cv::Scalar(0, 0, 0));
  DrawOptions o;
  o.draw_boxes = o.draw_contours = o.draw_labels = false;
  o.min_display_side = 0;
  o.mask_alpha = 0.5;
  const cv::Mat out = draw_instances(image, {diagonal_instance()}, {"thing"}, o);
  ASSERT_EQ(out.size(), image.size());
  const cv::Scalar colour = instance_colour(0);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 9; ++x) {
      const bool in_mask = diagonal_instance().mask.at_image(x, y) != 0;
      const cv::Vec3b px = out.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c)
        EXPECT_NEAR(px[c], in_mask ? colour[c] * 0.5 : 0, 1.0) << x << "," << y;
    }
  EXPECT_EQ(cv::norm(image, cv::Mat(7, 9, CV_8UC3, cv::Scalar(0, 0, 0)), cv::NORM_INF),
            0.0);  // input untouched
}

TEST(DrawInstances, SmallImagesAreEnlargedByWholeFactors) {
  const cv::Mat image(10, 12, CV_8UC3, cv::Scalar(0, 0, 0));
  DrawOptions o;
  o.draw_boxes = o.draw_contours = o.draw_labels = false;
  o.min_display_side = 48;
  EXPECT_EQ(display_scale(10, 12, o), 4);
  const cv::Mat out = draw_instances(image, {diagonal_instance()}, {"thing"}, o);
  ASSERT_EQ(out.rows, 40);
  ASSERT_EQ(out.cols, 48);
  EXPECT_GT(cv::norm(out.at<cv::Vec3b>(1 * 4 + 3, 2 * 4 + 3)), 0.0);  // inside mask pixel (2, 1)
  EXPECT_EQ(cv::norm(out.at<cv::Vec3b>(1 * 4 + 3, 3 * 4 + 3)), 0.0);  // (3, 1) is background
}

// Boxes and labels land on the pixels they should: the box's outline in the instance's colour,
// the label's background above the box, as wide as its text (with the score when asked), and
// nothing where neither is — so a box larger than the image, or no instance at all, leaves the
// enlarged picture exactly as it was.
TEST(DrawInstances, BoxesAndLabelsAreDrawnWhereTheyBelongAndNowhereElse) {
  const cv::Scalar grey(40, 40, 40);
  const cv::Mat image(8, 8, CV_8UC3, grey);
  DrawOptions o;
  o.draw_contours = false;
  const int scale = display_scale(8, 8, o);
  ASSERT_EQ(scale, 16);
  const auto is_colour = [](const cv::Mat& m, int x, int y, const cv::Scalar& c) {
    const cv::Vec3b px = m.at<cv::Vec3b>(y, x);
    return px[0] == c[0] && px[1] == c[1] && px[2] == c[2];
  };
  const auto pixels_not = [&](const cv::Mat& m, const cv::Scalar& c) {
    cv::Mat same;
    cv::inRange(m, c, c, same);
    return static_cast<int>(m.total()) - cv::countNonZero(same);
  };

  // Nothing to draw, or a box around the whole image (its outline and label fall outside):
  // the enlarged image, unchanged.
  EXPECT_EQ(pixels_not(draw_instances(image, {}, {}, o), grey), 0);
  Instance around;
  around.box = {-3, -3, 12, 12};
  around.class_index = 7;  // no name for it: "class 7"
  const cv::Mat outside = draw_instances(image, {around}, {"thing"}, o);
  ASSERT_EQ(outside.size(), cv::Size(8 * scale, 8 * scale));
  EXPECT_EQ(pixels_not(outside, grey), 0);

  // A box from (1, 1) to (4, 4): its outline runs along x, y = 16 and 63 (the last pixel
  // inside the box), in the first instance's colour; inside and outside it stays grey.
  Instance boxed;
  boxed.box = {1, 1, 4, 4};
  boxed.class_index = 0;
  boxed.score = 0.5f;
  const cv::Scalar colour = instance_colour(0);
  for (const bool with_score : {false, true}) {
    SCOPED_TRACE(with_score ? "with score" : "without score");
    o.draw_scores = with_score;
    const cv::Mat out = draw_instances(image, {boxed}, {"thing"}, o);
    for (int t = 16; t <= 63; ++t) {
      EXPECT_TRUE(is_colour(out, t, 63, colour)) << "bottom edge at x " << t;
      EXPECT_TRUE(is_colour(out, 16, t, colour)) << "left edge at y " << t;
      EXPECT_TRUE(is_colour(out, 63, t, colour)) << "right edge at y " << t;
    }
    EXPECT_TRUE(is_colour(out, 40, 40, grey));  // inside the box
    EXPECT_TRUE(is_colour(out, 70, 70, grey));  // outside it
    // The label sits on a filled background just above the box, text.width + 4 pixels wide.
    int baseline = 0;
    const std::string label = with_score ? "thing 0.50" : "thing";
    const cv::Size text = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1, &baseline);
    const int top = 16 - text.height - baseline - 2;
    ASSERT_GE(top, 0);
    ASSERT_LT(16 + text.width + 4, out.cols);
    EXPECT_TRUE(is_colour(out, 16, top, colour));                   // its top-left corner
    EXPECT_TRUE(is_colour(out, 16 + text.width + 3, top, colour));  // its top-right corner
    EXPECT_TRUE(is_colour(out, 16 + text.width + 4, top, grey));    // and just beyond it
    EXPECT_TRUE(is_colour(out, 15, top, grey));
    if (top > 0) {
      EXPECT_TRUE(is_colour(out, 20, top - 1, grey));
    }
  }
  EXPECT_NE(instance_colour(0), instance_colour(1));
}

}  // namespace
}  // namespace centermask
