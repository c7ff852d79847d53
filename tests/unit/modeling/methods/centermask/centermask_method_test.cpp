// The method interface: for CenterMask, the engine's path (run_network, compute_losses,
// detect, perfect_network_outputs, its target encoder) is the typed path, value for value; the
// registry builds methods by name and refuses unknown ones naming the known.

#include <gtest/gtest.h>

#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/method_registry.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "support/model_fixtures.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

ModelConfig small_centermask(int classes) {
  ModelConfig config;
  config.num_classes = classes;
  config.backbone = "resnet18";
  config.backbone_width = 16;
  CenterMaskOptions& centermask = config.method_options<CenterMaskOptions>("centermask");
  centermask.head_channels = 8;
  centermask.shape_size = 8;
  centermask.dense_box_loss = true;
  centermask.direct_saliency_loss = true;
  centermask.mask_neighbourhood = 1;
  return config;
}

TEST(MetaArchitecture, CenterMasksInterfaceIsItsTypedPath) {
  const int h = 64, w = 96;
  torch::manual_seed(5);
  const std::shared_ptr<MetaArchitectureImpl> method = build_meta_architecture(small_centermask(2));
  ASSERT_EQ(method->method_name(), "centermask");
  EXPECT_EQ(method->num_classes(), 2);
  auto* typed = dynamic_cast<CenterMaskImpl*>(method.get());
  ASSERT_NE(typed, nullptr);

  const std::vector<cv::Mat> images = {testing::noise_image(h, w, 3),
                                       testing::noise_image(h, w, 4)};
  const std::vector<std::vector<Instance>> truth = {
      {testing::ellipse_instance(1, {8, 8, 40, 30}, h, w),
       testing::ellipse_instance(0, {50, 20, 30, 40}, h, w)},
      {}};  // an image without objects too
  const auto encoder = method->make_target_encoder(16);
  EXPECT_EQ(encoder->num_classes(), 2);
  CenterMaskTargetOptions target_options = typed->target_options(16);
  const Batch through_interface = make_training_batch(images, truth, *encoder);
  const Batch typed_batch = make_training_batch(images, truth, target_options);
  const CenterMaskBatchTargets& a = centermask_batch_targets(through_interface);
  const CenterMaskBatchTargets& b = centermask_batch_targets(typed_batch);
  EXPECT_EQ(a.size, 2);
  EXPECT_EQ(a.heatmap, b.heatmap);
  EXPECT_EQ(a.mask_pixels, b.mask_pixels);
  EXPECT_EQ(a.box_weight, b.box_weight);
  EXPECT_EQ(a.class_masks, b.class_masks);

  method->train();
  const torch::Tensor input =
      torch::from_blob(const_cast<float*>(typed_batch.images.data()), {2, 3, h, w});
  const auto outputs = method->run_network(input);
  const CenterMaskOutputs& raw = method_cast<CenterMaskMethodOutputs>(*outputs, "test").outputs;
  const CenterMaskOutputs again = typed->forward(input);
  EXPECT_TRUE(torch::equal(raw.heatmap_logits, again.heatmap_logits));
  EXPECT_TRUE(torch::equal(raw.saliency_logits, again.saliency_logits));

  const MethodLosses named = method->compute_losses(*outputs, *typed_batch.targets, torch::kCPU);
  const CenterMaskLosses losses =
      typed->loss(raw, make_training_targets(typed_batch, torch::kCPU, 1));
  EXPECT_EQ(named.total.item<double>(), losses.total.item<double>());
  std::vector<std::string> names;
  for (const auto& [name, value] : named.terms) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"heatmap", "offset", "size", "mask", "saliency"}));
  EXPECT_EQ(named.terms[3].second.item<double>(), losses.mask.item<double>());
  EXPECT_EQ(method->first_non_finite_output(*outputs), "");

  method->eval();
  PredictOptions options;
  options.top_k = 7;
  options.mask_quality_scoring = true;
  CenterMaskInferenceOptions decode;
  decode.top_k = 7;
  decode.mask_quality_scoring = true;
  const auto detected = method->detect(*outputs, typed_batch.infos, options);
  const auto predicted = typed->predict(raw, typed_batch.infos, decode);
  ASSERT_EQ(detected.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_EQ(detected[i].size(), predicted[i].size());
    for (std::size_t k = 0; k < detected[i].size(); ++k) {
      EXPECT_EQ(detected[i][k].score, predicted[i][k].score);
      EXPECT_EQ(detected[i][k].class_index, predicted[i][k].class_index);
      EXPECT_EQ(detected[i][k].mask.pixels, predicted[i][k].mask.pixels);
    }
  }

  // Perfect outputs decode to the ground truth's objects.
  const auto perfect = method->perfect_network_outputs(truth, h, w);
  options.score_threshold = 0.5f;
  const auto recovered = method->detect(*perfect, typed_batch.infos, options);
  EXPECT_EQ(recovered[0].size(), 2u);
  EXPECT_TRUE(recovered[1].empty());
}

TEST(MetaArchitecture, AnotherMethodsObjectsAreRefused) {
  struct OtherOutputs : MethodOutputs {};
  struct OtherTargets : BatchTargets {};
  const auto method = build_meta_architecture(small_centermask(2));
  const auto outputs = method->run_network(torch::zeros({1, 3, 64, 64}));
  EXPECT_THROW(method->detect(OtherOutputs{}, {}, {}), std::logic_error);
  EXPECT_THROW(method->compute_losses(*outputs, OtherTargets{}, torch::kCPU), std::logic_error);
}

TEST(MetaArchitecture, UnknownMethodsAreRefusedNamingTheKnownOnes) {
  ModelConfig config = small_centermask(2);
  config.meta_arch = "maskrcnn";
  const std::string message = testing::error_message_of([&] { build_meta_architecture(config); });
  EXPECT_NE(message.find("model.meta_arch: unknown method 'maskrcnn' (known: centermask"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace centermask
