// Done-when check of the model: trained on a handful of synthetic images, CenterMask's loss
// falls and its predicted masks land on the ground truth. Everything here is what training
// and inference use (targets, loss, assembly, decoding), on a small input to stay fast.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <opencv2/imgproc.hpp>

#include "centermask/modeling/methods/centermask/centermask.h"
#include "support/model_fixtures.h"

namespace centermask {
namespace {

TEST(CenterMaskOverfit, LossFallsAndPredictedMasksLandOnTheGroundTruth) {
  torch::manual_seed(0);
  // One thread: on 64-px inputs a second one costs more in synchronisation than it gains
  // (measured on the demo's 128-px inputs: 53 vs 35-43 images/s), and under `ctest -j` it would
  // spin against the other tests.
  torch::set_num_threads(1);
  // Three 64×64 images with two or three objects each, 16–40 px: large enough at stride 4
  // (4–10 cells) for a mask to have a shape, on a noisy background in colours that do not
  // give the class away.
  std::vector<cv::Mat> images;
  std::vector<std::vector<Instance>> truth;
  cv::RNG rng(7);
  for (int i = 0; i < 3; ++i) {
    cv::Mat image(64, 64, CV_8UC3);
    rng.fill(image, cv::RNG::UNIFORM, 0, 120);
    SyntheticImage drawn;
    for (int o = 0; o < 2 + (i % 2); ++o) {
      cv::Mat mask = cv::Mat::zeros(64, 64, CV_8U);
      const int cls = (i + o) % 3;
      const cv::Point center(rng.uniform(14, 50), rng.uniform(14, 50));
      const int r = rng.uniform(8, 20);
      if (cls == 0) cv::circle(mask, center, r, 1, cv::FILLED);
      if (cls == 1)
        cv::rectangle(mask, center - cv::Point(r, r / 2), center + cv::Point(r, r / 2), 1,
                      cv::FILLED);
      if (cls == 2) {
        std::vector<cv::Point> tri{center + cv::Point(0, -r), center + cv::Point(r, r),
                                   center + cv::Point(-r, r)};
        cv::fillConvexPoly(mask, tri, 1);
      }
      // Later objects occlude earlier ones: masks are the visible parts.
      for (SyntheticObject& earlier : drawn.objects) earlier.visible_mask.setTo(0, mask);
      image.setTo(cv::Scalar(rng.uniform(130, 255), rng.uniform(130, 255), rng.uniform(130, 255)),
                  mask);
      drawn.objects.push_back({cls, mask.clone(), mask.clone()});
    }
    images.push_back(image);
    truth.push_back(synthetic_image_instances(drawn));
  }
  const int num_classes = 3;
  Batch batch = testing::make_batch(images, truth, num_classes);
  const CenterMaskTrainingTargets targets = make_training_targets(batch, torch::kCPU);
  torch::Tensor inputs = torch::from_blob(batch.images.data(), {batch.size, 3, 64, 64});

  CenterMaskOptions options;
  options.num_classes = num_classes;
  options.backbone.name = "resnet18";
  options.shape_size = 16;
  CenterMask model(options);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(2e-3));
  double first_loss = 0, last_loss = 0;
  const int steps = 100;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    CenterMaskLosses losses = model->loss(model->forward(inputs), targets);
    losses.total.backward();
    optimizer.step();
    if (step == 0) first_loss = losses.total.item<double>();
    last_loss = losses.total.item<double>();
    if (step % 25 == 0 || step + 1 == steps)
      std::printf("step %3d  total %.4f  heatmap %.4f  offset %.4f  size %.4f  mask %.4f\n", step,
                  losses.total.item<double>(), losses.heatmap.item<double>(),
                  losses.offset.item<double>(), losses.size.item<double>(),
                  losses.mask.item<double>());
  }
  EXPECT_LT(last_loss, 0.2 * first_loss);

  model->eval();
  torch::NoGradGuard no_grad;
  CenterMaskInferenceOptions inference;
  inference.score_threshold = 0.3f;
  const auto predicted = model->predict(model->forward(inputs), batch.infos, inference);
  int matched = 0, total = 0;
  double iou_sum = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    for (const Instance& gt : truth[i]) {
      ++total;
      double best = 0;
      for (const Instance& p : predicted[i])
        if (p.class_index == gt.class_index)
          best = std::max(best, testing::mask_iou(p.mask, gt.mask));
      iou_sum += best;
      matched += best >= 0.5;
    }
  }
  std::printf("%d of %d objects found with mask IoU >= 0.5 (mean best IoU %.3f)\n", matched, total,
              iou_sum / total);
  EXPECT_GE(matched, (total * 8 + 9) / 10);
  EXPECT_GT(iou_sum / total, 0.6);
}

}  // namespace
}  // namespace centermask
