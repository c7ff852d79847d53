// PyTorch state_dict files: files written by PyTorch's own torch.save (fixtures made by
// tests/data/state_dicts/make_fixtures.py) land in our backbones where their names say, with
// the first convolution converted to our input; our files round-trip; what does not fit is
// refused by file, name and shape.

#include "centermask/modeling/backbone_weights.h"

#include <gtest/gtest.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <fstream>
#include <map>

#include "centermask/data/transforms.h"
#include "centermask/modeling/backbone.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

std::filesystem::path fixture(const std::string& name) {
  return testing::test_data_dir() / "state_dicts" / name;
}

/// The value make_fixtures.py wrote into tensor k of a fixture: k + 0.001 · position.
torch::Tensor coded(int k, std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return (k + 0.001 * torch::arange(n, torch::kFloat32)).reshape(shape);
}

std::map<std::string, torch::Tensor> by_name(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, tensor] : state_dict_of(module)) tensors.emplace(name, tensor);
  return tensors;
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(BackboneWeights, ATorchvisionFileFromPyTorchLandsWhereItsNamesSay) {
  const StateDict file = read_state_dict(fixture("torchvision_resnet18_w16_partial.pth"));
  ASSERT_EQ(file.size(), 17u);
  EXPECT_EQ(file.front().first, "conv1.weight");  // the file's order is kept
  torch::manual_seed(0);
  const auto backbone = build_backbone({"resnet18", 16});
  const auto untouched = by_name(*backbone)["layer4.1.block.conv2.weight"].clone();
  const BackboneWeightsReport report = load_backbone_weights(*backbone, file, "fixture");
  EXPECT_EQ(report.naming, WeightNaming::kTorchvisionResNet);
  const auto ours = by_name(*backbone);
  // The file's k-th tensor (make_fixtures.py's list order) under our name.
  EXPECT_TRUE(torch::equal(ours.at("stem.1.weight"), coded(1, {16})));
  EXPECT_TRUE(torch::equal(ours.at("stem.1.running_var"), coded(4, {16})));
  EXPECT_EQ(ours.at("stem.1.num_batches_tracked").item<int64_t>(), 5);
  EXPECT_TRUE(torch::equal(ours.at("layer1.0.block.conv1.weight"), coded(6, {16, 16, 3, 3})));
  EXPECT_TRUE(torch::equal(ours.at("layer1.0.block.bn1.running_mean"), coded(9, {16})));
  EXPECT_TRUE(torch::equal(ours.at("layer1.0.block.conv2.weight"), coded(11, {16, 16, 3, 3})));
  EXPECT_TRUE(torch::equal(ours.at("layer2.0.shortcut.0.weight"), coded(12, {32, 16, 1, 1})));
  EXPECT_TRUE(torch::equal(ours.at("layer2.0.shortcut.1.running_var"), coded(14, {32})));
  // 15 of the 17 set something; fc has no counterpart; the rest keeps its initialisation.
  EXPECT_EQ(report.loaded.size(), 15u);
  EXPECT_EQ(report.unused, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_TRUE(contains(report.left_initialised, "layer4.1.block.conv2.weight"));
  EXPECT_TRUE(torch::equal(ours.at("layer4.1.block.conv2.weight"), untouched));
  EXPECT_EQ(report.loaded.size() + report.left_initialised.size(), ours.size());
  // torchvision's first convolution reads RGB with ImageNet's normalisation: converted.
  EXPECT_TRUE(report.stem_converted);
  const PixelNormalization n;
  const double imagenet_std_rgb[3] = {0.229, 0.224, 0.225};
  const torch::Tensor rgb = coded(0, {16, 3, 7, 7});
  for (int bgr = 0; bgr < 3; ++bgr)
    EXPECT_TRUE(torch::allclose(
        ours.at("stem.0.weight").select(1, bgr),
        rgb.select(1, 2 - bgr) * (n.std_bgr[bgr] / imagenet_std_rgb[2 - bgr]), 1e-6, 1e-6))
        << bgr;
  const std::string line = describe(report);
  EXPECT_NE(line.find("15 tensors loaded (torchvision ResNet names)"), std::string::npos) << line;
  EXPECT_NE(line.find("fc.weight"), std::string::npos) << line;
}

TEST(BackboneWeights, TheConvertedStemComputesOnOurInputWhatTheOriginalDidOnItsOwn) {
  // A random RGB/ImageNet stem; the same picture normalised both ways; the convolution minus
  // BatchNorm's running mean (what eval-mode BN subtracts) agrees away from the padded border.
  torch::manual_seed(3);
  const torch::Tensor weight = torch::randn({16, 3, 7, 7}) * 0.1;
  const torch::Tensor running_mean = torch::randn({16});
  const StateDict file = {{"conv1.weight", weight}, {"bn1.running_mean", running_mean}};
  const auto backbone = build_backbone({"resnet18", 16});
  load_backbone_weights(*backbone, file, "stem");
  const auto ours = by_name(*backbone);

  const torch::Tensor picture_rgb = torch::rand({1, 3, 37, 29});  // [0, 1], odd sides
  const torch::Tensor imagenet_mean = torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1});
  const torch::Tensor imagenet_std = torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
  const PixelNormalization n;
  const torch::Tensor our_mean =
      torch::tensor({n.mean_bgr[0], n.mean_bgr[1], n.mean_bgr[2]}).view({1, 3, 1, 1});
  const torch::Tensor our_std =
      torch::tensor({n.std_bgr[0], n.std_bgr[1], n.std_bgr[2]}).view({1, 3, 1, 1});
  const torch::Tensor theirs_in = (picture_rgb - imagenet_mean) / imagenet_std;
  const torch::Tensor ours_in = (picture_rgb.flip(1) - our_mean) / our_std;
  const auto conv = [](const torch::Tensor& x, const torch::Tensor& w) {
    return torch::conv2d(x, w, {}, /*stride=*/2, /*padding=*/3);
  };
  const torch::Tensor theirs = conv(theirs_in, weight) - running_mean.view({1, 16, 1, 1});
  const torch::Tensor converted =
      conv(ours_in, ours.at("stem.0.weight")) - ours.at("stem.1.running_mean").view({1, 16, 1, 1});
  const auto interior = [](const torch::Tensor& t) {
    return t.slice(2, 2, t.size(2) - 2).slice(3, 2, t.size(3) - 2);
  };
  EXPECT_TRUE(torch::allclose(interior(converted), interior(theirs), 1e-4, 1e-4))
      << (interior(converted) - interior(theirs)).abs().max().item<float>();
  // At the border the zero padding differs (as for any change of normalisation): not equal.
  EXPECT_FALSE(torch::allclose(converted, theirs, 1e-4, 1e-4));
}

TEST(BackboneWeights, BottleneckUnitsTakeConv123AsReduceSpatialExpand) {
  torch::manual_seed(0);
  const auto backbone = build_backbone({"resnet50", 16});
  const auto before = by_name(*backbone);
  const std::map<std::string, std::string> torchvision_to_ours = {
      {"layer1.0.conv1.weight", "layer1.0.block.reduce.0.weight"},
      {"layer1.0.bn2.running_var", "layer1.0.block.spatial.1.running_var"},
      {"layer3.5.conv3.weight", "layer3.5.block.expand.0.weight"},
      {"layer4.0.downsample.0.weight", "layer4.0.shortcut.0.weight"},
  };
  StateDict file;
  for (const auto& [theirs, ours] : torchvision_to_ours)
    file.emplace_back(theirs, torch::randn(before.at(ours).sizes()));
  const BackboneWeightsReport report = load_backbone_weights(*backbone, file, "bottleneck");
  EXPECT_EQ(report.loaded.size(), 4u);
  EXPECT_TRUE(report.unused.empty());
  const auto after = by_name(*backbone);
  for (const auto& [theirs, tensor] : file)
    EXPECT_TRUE(torch::equal(after.at(torchvision_to_ours.at(theirs)), tensor)) << theirs;
}

TEST(BackboneWeights, ACenterNetCheckpointLoadsItsDlaBaseAndLeavesTheHeads) {
  const StateDict file = read_state_dict(fixture("centernet_dla34_partial.pth"));
  ASSERT_EQ(file.size(), 4u);  // found under "state_dict" beside "epoch"
  const auto backbone = build_backbone({"dla34"});
  const BackboneWeightsReport report = load_backbone_weights(*backbone, file, "centernet");
  EXPECT_EQ(report.naming, WeightNaming::kCenterNetDla);
  const auto ours = by_name(*backbone);
  // CenterNet trained on BGR input with our normalisation: its stem is taken as it is.
  EXPECT_FALSE(report.stem_converted);
  EXPECT_TRUE(torch::equal(ours.at("base_layer.0.weight"), coded(0, {16, 3, 7, 7})));
  EXPECT_TRUE(torch::equal(ours.at("level2.root.conv_bn.0.weight"), coded(1, {64, 128, 1, 1})));
  EXPECT_TRUE(torch::equal(ours.at("level2.root.conv_bn.1.running_mean"), coded(2, {64})));
  EXPECT_EQ(report.unused, (std::vector<std::string>{"module.hm.0.weight"}));
}

TEST(BackboneWeights, CenterNetsDeformableUpPathAndHourglassLoadUnderTheirNames) {
  // pose_dla_dcn: DLAUp's IDAUps are dla_up.ida_N (ours dla_up_ida_N), the last IDAUp ida_up.
  const auto dla = build_backbone({"dla34"});
  const auto dla_before = by_name(*dla);
  const std::map<std::string, std::string> dla_names = {
      {"module.base.base_layer.0.weight", "base_layer.0.weight"},
      {"module.dla_up.ida_0.proj_1.conv.conv_offset_mask.weight",
       "dla_up_ida_0.proj_1.conv.conv_offset_mask.weight"},
      {"module.dla_up.ida_2.node_3.conv.bias", "dla_up_ida_2.node_3.conv.bias"},
      {"module.ida_up.node_2.actf.0.running_mean", "ida_up.node_2.actf.0.running_mean"},
      {"module.ida_up.up_1.weight", "ida_up.up_1.weight"}};
  StateDict file;
  int k = 0;
  for (const auto& [theirs, ours] : dla_names) {
    const auto shape = dla_before.at(ours).sizes().vec();
    file.emplace_back(theirs, coded(k++, shape));
  }
  file.emplace_back("module.hm.0.weight", coded(k++, {80, 64, 3, 3}));
  BackboneWeightsReport report = load_backbone_weights(*dla, file, "ctdet_coco_dla_2x.pth");
  EXPECT_EQ(report.naming, WeightNaming::kCenterNetDla);
  EXPECT_EQ(report.loaded.size(), dla_names.size());
  EXPECT_EQ(report.unused, (std::vector<std::string>{"module.hm.0.weight"}));
  const auto dla_after = by_name(*dla);
  for (const auto& [theirs, tensor] : file) {
    if (dla_names.count(theirs)) {
      EXPECT_TRUE(torch::equal(dla_after.at(dla_names.at(theirs)), tensor)) << theirs;
    }
  }

  // large_hourglass: the backbone's names are ours; the per-stack heads are left.
  const auto hourglass = build_backbone({"hourglass104"});
  const auto hg_before = by_name(*hourglass);
  const std::vector<std::string> hg_names = {"pre.0.conv.weight",
                                             "kps.1.low2.low2.low1.0.skip.0.weight",
                                             "inters_.0.1.running_var", "cnvs.1.bn.bias"};
  StateDict hg_file;
  for (const std::string& name : hg_names)
    hg_file.emplace_back("module." + name, coded(k++, hg_before.at(name).sizes().vec()));
  hg_file.emplace_back("module.hm.1.0.conv.weight", coded(k++, {256, 256, 3, 3}));
  report = load_backbone_weights(*hourglass, hg_file, "ctdet_coco_hg.pth");
  EXPECT_EQ(report.naming, WeightNaming::kCenterNetHourglass);
  EXPECT_EQ(report.loaded.size(), hg_names.size());
  EXPECT_EQ(report.unused, (std::vector<std::string>{"module.hm.1.0.conv.weight"}));
  const auto hg_after = by_name(*hourglass);
  for (std::size_t i = 0; i < hg_names.size(); ++i)
    EXPECT_TRUE(torch::equal(hg_after.at(hg_names[i]), hg_file[i].second)) << hg_names[i];
}

TEST(BackboneWeights, OurOwnFileRoundTripsThroughPyTorchsFormatAndLoadsEverything) {
  testing::TempDir dir;
  torch::manual_seed(1);
  const auto trained = build_backbone({"resnet18", 16, true});
  StateDict written;
  for (auto& [name, tensor] : state_dict_of(*trained))
    written.emplace_back("backbone." + name, tensor);
  write_state_dict(dir / "w.pth", written);
  EXPECT_FALSE(std::filesystem::exists(dir / "w.pth.tmp"));
  const StateDict read = read_state_dict(dir / "w.pth");
  ASSERT_EQ(read.size(), written.size());
  for (std::size_t i = 0; i < read.size(); ++i) {
    EXPECT_EQ(read[i].first, written[i].first);
    EXPECT_TRUE(torch::equal(read[i].second, written[i].second)) << read[i].first;
  }
  torch::manual_seed(2);
  const auto fresh = build_backbone({"resnet18", 16, true});
  const BackboneWeightsReport report = load_backbone_weights(*fresh, read, "ours");
  EXPECT_EQ(report.naming, WeightNaming::kOurs);
  EXPECT_TRUE(report.left_initialised.empty());
  EXPECT_TRUE(report.unused.empty());
  EXPECT_FALSE(report.stem_converted);
  const auto expected = by_name(*trained);
  for (const auto& [name, tensor] : by_name(*fresh))
    EXPECT_TRUE(torch::equal(tensor, expected.at(name))) << name;
}

TEST(BackboneWeights, WhatDoesNotFitIsRefusedByFileNameAndShape) {
  const StateDict torchvision = read_state_dict(fixture("torchvision_resnet18_w16_partial.pth"));
  const auto wide = build_backbone({"resnet18", 64});
  const std::string shape = testing::error_message_of(
      [&] { load_backbone_weights(*wide, torchvision, "resnet18-w16.pth"); });
  for (const char* part : {"resnet18-w16.pth", "model.backbone_weights", "conv1.weight",
                           "[16, 3, 7, 7]", "stem.0.weight", "[64, 3, 7, 7]"})
    EXPECT_NE(shape.find(part), std::string::npos) << part << " in: " << shape;

  const StateDict centernet = read_state_dict(fixture("centernet_dla34_partial.pth"));
  const auto resnet = build_backbone({"resnet18", 16});
  const std::string nothing =
      testing::error_message_of([&] { load_backbone_weights(*resnet, centernet, "dla.pth"); });
  EXPECT_NE(nothing.find("dla.pth"), std::string::npos) << nothing;
  EXPECT_NE(nothing.find("none of its 4 tensors"), std::string::npos) << nothing;

  const std::string legacy =
      testing::error_message_of([&] { read_state_dict(fixture("legacy_format.pth")); });
  EXPECT_NE(legacy.find("legacy_format.pth"), std::string::npos) << legacy;
  EXPECT_NE(legacy.find("torch.save(torch.load("), std::string::npos) << legacy;

  testing::TempDir dir;
  const std::string missing =
      testing::error_message_of([&] { read_state_dict(dir / "missing.pth"); });
  EXPECT_NE(missing.find("missing.pth"), std::string::npos) << missing;
  // A torch.save file of something else (a list of numbers).
  {
    const std::vector<char> bytes = torch::pickle_save(c10::IValue(std::vector<int64_t>{1, 2}));
    std::ofstream(dir / "list.pth", std::ios::binary).write(bytes.data(), bytes.size());
  }
  const std::string list = testing::error_message_of([&] { read_state_dict(dir / "list.pth"); });
  EXPECT_NE(list.find("rather than a state_dict"), std::string::npos) << list;
  // A truncated file.
  {
    const std::string whole = testing::read_text(fixture("torchvision_resnet18_w16_partial.pth"));
    std::ofstream(dir / "cut.pth", std::ios::binary).write(whole.data(), whole.size() / 2);
  }
  const std::string cut = testing::error_message_of([&] { read_state_dict(dir / "cut.pth"); });
  EXPECT_NE(cut.find("cut.pth"), std::string::npos) << cut;
  // Writing into a folder that does not exist names the file.
  const std::string unwritable = testing::error_message_of(
      [&] { write_state_dict(dir / "no" / "such" / "w.pth", StateDict{}); });
  EXPECT_NE(unwritable.find("w.pth"), std::string::npos) << unwritable;
}

}  // namespace
}  // namespace centermask
