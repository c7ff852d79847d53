#include "centermask/visualization/draw_instances.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>

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

TEST(DrawInstances, LabelsBoxesAndEmptyInputsDoNotFail) {
  const cv::Mat image(5, 5, CV_8UC3, cv::Scalar(40, 40, 40));
  DrawOptions o;
  o.draw_scores = true;
  Instance box_only;
  box_only.box = {-3, -3, 9, 9};  // larger than the image
  box_only.class_index = 7;       // no name for it: "class 7"
  box_only.score = 0.5f;
  const cv::Mat out = draw_instances(image, {box_only, diagonal_instance()}, {"thing"}, o);
  EXPECT_FALSE(out.empty());
  EXPECT_GT(cv::norm(out, cv::NORM_L1), 0.0);
  const cv::Mat none = draw_instances(image, {}, {}, o);
  EXPECT_EQ(none.rows, 5 * display_scale(5, 5, o));
  EXPECT_NE(instance_colour(0), instance_colour(1));
}

}  // namespace
}  // namespace centermask
