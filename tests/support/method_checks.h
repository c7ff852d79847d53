#pragma once
// Steps the methods' tests share: that the engine's interface is the method's typed path, and
// the overfit test's picture, training and measure.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <utility>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/structures/instances.h"
#include "support/model_fixtures.h"

namespace centermask::testing {

/// A (1, 3, side, side) normalised picture for overfit tests: N(0, 0.3²) noise, class 0's
/// objects painted +1.5 in the first channel, the others' −1.5 in the third.
inline torch::Tensor overfit_picture(const std::vector<Instance>& objects, int side) {
  torch::Tensor image = torch::randn({1, 3, side, side}) * 0.3;
  auto pixels = image.accessor<float, 4>();
  for (const Instance& object : objects)
    for (int y = 0; y < object.mask.height; ++y)
      for (int x = 0; x < object.mask.width; ++x)
        if (object.mask.pixels[static_cast<std::size_t>(y * object.mask.width + x)])
          pixels[0][object.class_index == 0 ? 0 : 2][object.mask.top + y][object.mask.left + x] =
              object.class_index == 0 ? 1.5f : -1.5f;
  return image;
}

/// The loss of the first and of the last of `steps` Adam steps (lr 2e-3) of `model` on one
/// picture and its targets: model->loss(model->forward(image), {targets}).total.
template <class Model, class Targets>
std::pair<double, double> overfit_one_picture(Model& model, const torch::Tensor& image,
                                              const Targets& targets, int steps) {
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(2e-3));
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    const torch::Tensor total = model->loss(model->forward(image), {targets}).total;
    total.backward();
    optimizer.step();
    if (step == 0) first = total.template item<double>();
    last = total.template item<double>();
  }
  return {first, last};
}

/// Through MetaArchitectureImpl, as the engine runs a method: targets encoded and collated by
/// its encoder for `truth` (one image per entry, side × side), losses named classification,
/// box, centerness, mask with the typed loss()'s total, finite outputs, and the perfect
/// outputs decoded (score ≥ `score_threshold`) to one detection per image. `Impl`'s loss takes
/// (`Outputs`' outputs, `Targets`' images).
template <class Impl, class Outputs, class Targets>
void expect_interface_is_the_typed_path(MetaArchitectureImpl& method,
                                        const std::vector<std::vector<Instance>>& truth, int side,
                                        float score_threshold) {
  auto* typed = dynamic_cast<Impl*>(&method);
  ASSERT_NE(typed, nullptr);
  const auto encoder = method.make_target_encoder(8);
  std::vector<std::unique_ptr<SampleTargets>> samples;
  for (const auto& image : truth) samples.push_back(encoder->encode(image, side, side));
  const auto batch_targets = encoder->collate(samples);
  const torch::Tensor images =
      torch::randn({static_cast<std::int64_t>(truth.size()), 3, side, side});
  const auto outputs = method.run_network(images);
  const MethodLosses named = method.compute_losses(*outputs, *batch_targets, torch::kCPU);
  std::vector<std::string> names;
  for (const auto& [name, value] : named.terms) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"classification", "box", "centerness", "mask"}));
  const auto typed_losses = typed->loss(method_cast<Outputs>(*outputs, "test").outputs,
                                        method_cast<Targets>(*batch_targets, "test").images);
  EXPECT_EQ(named.total.template item<double>(), typed_losses.total.template item<double>());
  EXPECT_EQ(method.first_non_finite_output(*outputs), "");
  // Perfect outputs through the interface, decoded as the upper bound does.
  PredictOptions predict;
  predict.score_threshold = score_threshold;
  const std::vector<ImageInfo> infos(truth.size(), identity_info(side, side));
  const auto recovered =
      method.detect(*method.perfect_network_outputs(truth, side, side), infos, predict);
  ASSERT_EQ(recovered.size(), truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i)
    EXPECT_EQ(recovered[i].size(), 1u) << "image " << i;
}

}  // namespace centermask::testing
