// `centermask export`'s graphs run in real runtimes and compute what our model computes: each
// method's network (the learning check's small configs, with BatchNorm statistics drawn at
// random so that folding them is tested) exported at a non-square size, then run on a random
// input by ONNX Runtime (the npm package onnxruntime-node, through node), by OpenCV DNN and by
// LibTorch's torch::jit::load; every raw map compared with the model's own. ONNX Runtime's
// cases skip where node or the package is missing (scripts/install-deps.sh installs both).

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>

#include "centermask/common/json_reader.h"
#include "centermask/data/transforms.h"
#include "centermask/deploy/exported_detections.h"
#include "centermask/engine/config.h"
#include "centermask/engine/inference.h"
#include "centermask/export/network_export.h"
#include "centermask/modeling/meta_arch.h"
#include "centermask/predictor.h"
#include "export/deploy_check.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

#ifdef CENTERMASK_TEST_HAVE_OPENCV_DNN
#include <opencv2/dnn.hpp>
#endif

namespace centermask {
namespace {

constexpr int kHeight = 64, kWidth = 96;

// The model of a learning config (with `overrides`), untrained, with BatchNorm statistics away
// from (0, 1).
Predictor small_model(const std::string& method, const std::vector<std::string>& overrides = {}) {
  TrainConfig config =
      load_train_config(testing::test_data_dir() / "learning" / (method + ".yaml"));
  apply_config_overrides(&config, overrides);
  config.validate();
  Predictor predictor = Predictor::untrained(config, {}, {}, 3);
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  for (auto& item : predictor.model().named_buffers()) {
    if (item.key().find("running_mean") != std::string::npos) item.value().normal_(0, 0.2);
    if (item.key().find("running_var") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
  return predictor;
}

std::vector<std::pair<std::string, torch::Tensor>> our_maps(MetaArchitectureImpl& model,
                                                            const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<std::pair<std::string, torch::Tensor>> maps =
      model.raw_maps(*model.run_network(input));
  for (auto& [name, map] : maps) map = map.contiguous();
  return maps;
}

// Max |a − b| over max(1, max |b|): fp32 runtimes differ in summation order only.
double scaled_difference(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a - b).abs().max().item<double>() / scale;
}

// ONNX Runtime's outputs of `dir`/model.onnx on `input` (deploy_check.h).
std::map<std::string, torch::Tensor> run_onnxruntime(const std::filesystem::path& dir,
                                                     const torch::Tensor& input,
                                                     const ExportReport& report) {
  return centermask::run_onnxruntime(dir, input, report, CENTERMASK_SOURCE_DIR);
}

// Runs `dir`/model.onnx in ONNX Runtime on `input` and expects each of `ours` maps back within
// 1e-4 (scaled).
void expect_onnxruntime_gives(const std::filesystem::path& dir, const torch::Tensor& input,
                              const std::vector<std::pair<std::string, torch::Tensor>>& ours) {
  ExportReport report;
  for (const auto& [name, map] : ours) {
    report.output_names.push_back(name);
    report.output_shapes.push_back(map.sizes().vec());
  }
  const auto theirs = run_onnxruntime(dir, input, report);
  for (const auto& [name, map] : ours)
    EXPECT_LT(scaled_difference(theirs.at(name), map), 1e-4) << name;
}

// Export settings of the raw maps (--postprocess off) at `height` × `width`.
ExportOptions raw_maps_options(int height = kHeight, int width = kWidth) {
  ExportOptions options;
  options.postprocess = false;
  options.input_height = height;
  options.input_width = width;
  return options;
}

class ExportTest : public ::testing::TestWithParam<std::string> {
 protected:
  testing::TempDir dir_;
};

TEST_P(ExportTest, OnnxRuntimeAndTorchScriptComputeTheModelsRawMaps) {
  Predictor predictor = small_model(GetParam());
  MetaArchitectureImpl& model = predictor.model();
  torch::manual_seed(11);
  const torch::Tensor input = torch::randn({1, 3, kHeight, kWidth});
  const auto ours = our_maps(model, input);

  ExportOptions options = raw_maps_options();
  options.format = ExportFormat::kTorchScript;
  const ExportReport script_report =
      export_network(model, dir_ / "model.pt", options, {{"class_names", "[\"a\"]"}});
  ASSERT_EQ(script_report.output_names.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i)
    EXPECT_EQ(script_report.output_names[i], ours[i].first);
  // The module runs without our code: only LibTorch's loader.
  torch::jit::Module loaded = torch::jit::load((dir_ / "model.pt").string());
  const c10::IValue result = loaded.forward({input});
  const auto elements = result.toTuple()->elements();
  ASSERT_EQ(elements.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i)
    EXPECT_LT(scaled_difference(elements[i].toTensor(), ours[i].second), 1e-5) << ours[i].first;

  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  options.format = ExportFormat::kOnnx;
  const ExportReport report = export_network(model, dir_ / "model.onnx", options, {});
  EXPECT_EQ(report.output_names, script_report.output_names);
  EXPECT_EQ(report.op_counts.count("BatchNormalization"), 0u) << "BatchNorm is folded";
  if (!onnxruntime_available())
    GTEST_SKIP() << "node or onnxruntime-node (" << onnxruntime_node_path()
                 << ") missing: scripts/install-deps.sh installs them";
  expect_onnxruntime_gives(dir_.path(), input, ours);
}

// --dynamic: one graph of the raw maps runs at a batch and sides other than the traced ones
// (and at the traced ones), computing the model's maps there; the decoding, whose coordinate
// grids hold the traced size, is refused by name.
TEST_P(ExportTest, DynamicGraphRunsAtOtherBatchesAndSizes) {
  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  Predictor predictor = small_model(GetParam());
  MetaArchitectureImpl& model = predictor.model();
  ExportOptions options = raw_maps_options();
  options.dynamic = true;
  const ExportReport report = export_network(model, dir_ / "model.onnx", options, {});
  EXPECT_EQ(report.input_shape, (std::vector<std::int64_t>{1, 3, kHeight, kWidth}));
  options.postprocess = true;
  const std::string decoded_error =
      testing::error_message_of([&] { export_network(model, dir_ / "decoded.onnx", options, {}); });
  EXPECT_NE(decoded_error.find("--dynamic: the graph depends on the input's size"),
            std::string::npos)
      << decoded_error;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "decoded.onnx"));
  if (!onnxruntime_available()) GTEST_SKIP() << "node or onnxruntime-node missing";
  torch::manual_seed(12);
  for (const auto& [batch, height, width] :
       {std::tuple<int, int, int>{2, kHeight + 32, kWidth - 32},
        {1, kHeight, kWidth},
        {3, 32, 160}}) {
    SCOPED_TRACE(fmt::format("{} x {} x {}", batch, height, width));
    const torch::Tensor input = torch::randn({batch, 3, height, width});
    expect_onnxruntime_gives(dir_.path(), input, our_maps(model, input));
  }
}

TEST_P(ExportTest, BadSettingsAreRefusedByNameAndWriteNothing) {
  Predictor predictor = small_model(GetParam());
  ExportOptions options;
  options.input_height = 64;
  options.input_width = 70;  // not a multiple of 32
  const std::string size_error = testing::error_message_of(
      [&] { export_network(predictor.model(), dir_ / "model.onnx", options, {}); });
  EXPECT_NE(size_error.find("--input-size: the input width is 70"), std::string::npos)
      << size_error;
  options.input_width = 64;
  options.opset = 11;
  EXPECT_NE(testing::error_message_of([&] {
              export_network(predictor.model(), dir_ / "model.onnx", options, {});
            }).find("--opset: 11"),
            std::string::npos);
  options.opset = 17;
  const std::string folder_error = testing::error_message_of(
      [&] { export_network(predictor.model(), dir_ / "missing" / "model.onnx", options, {}); });
  EXPECT_NE(folder_error.find("does not exist"), std::string::npos) << folder_error;
  options.dtype = ExportDtype::kFloat16;
  options.format = ExportFormat::kTorchScript;
  const std::string dtype_error = testing::error_message_of(
      [&] { export_network(predictor.model(), dir_ / "model.pt", options, {}); });
  EXPECT_NE(dtype_error.find("--dtype fp16: float16 is written for ONNX"), std::string::npos)
      << dtype_error;
  options.dtype = ExportDtype::kFloat32;
  options.dynamic = true;
  EXPECT_NE(testing::error_message_of([&] {
              export_network(predictor.model(), dir_ / "model.pt", options, {});
            }).find("--dynamic: a TorchScript module is traced at one size"),
            std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir_.path()));
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, ExportTest,
                         ::testing::Values("centermask", "polarmask", "centermask_fcos"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// The paper's backbones export and compute the model's maps in TorchScript and ONNX Runtime:
// DLA-34 with DCNv2 (exported as its grid-sample formulation: ONNX's GridSample, opset 16),
// DLA-34 without it and Hourglass-104. Before opset 16 DCN is refused by name.
TEST(ExportBackbones, DlaWithAndWithoutDcnAndHourglassComputeTheModelsMaps) {
  for (const auto& [backbone, side] :
       {std::pair<std::string, int>{"dla34", 64}, {"dla34_plain", 64}, {"hourglass104", 128}}) {
    SCOPED_TRACE(backbone);
    testing::TempDir dir;
    Predictor predictor =
        small_model("centermask", {"model.backbone=" + backbone, "model.backbone_width=64",
                                   "model.centermask.backbone_skips=false"});
    MetaArchitectureImpl& model = predictor.model();
    torch::manual_seed(13);
    const torch::Tensor input = torch::randn({1, 3, side, side});
    const auto ours = our_maps(model, input);
    ExportOptions options = raw_maps_options(side, side);
    options.format = ExportFormat::kTorchScript;
    export_network(model, dir / "model.pt", options, {});
    torch::jit::Module loaded = torch::jit::load((dir / "model.pt").string());
    const auto elements = loaded.forward({input}).toTuple()->elements();
    ASSERT_EQ(elements.size(), ours.size());
    // DCN's exported formulation sums in another order than our CPU kernel (the two agree to
    // 1e-5 relative in deform_conv_test); the other layers are the same operations.
    const double tolerance = backbone == "dla34" ? 1e-4 : 1e-5;
    for (std::size_t i = 0; i < ours.size(); ++i)
      EXPECT_LT(scaled_difference(elements[i].toTensor(), ours[i].second), tolerance)
          << ours[i].first;
    if (!onnx_export_available()) continue;
    if (backbone == "dla34") {
      options.format = ExportFormat::kOnnx;
      options.opset = 15;
      const std::string error =
          testing::error_message_of([&] { export_network(model, dir / "old.onnx", options, {}); });
      EXPECT_NE(error.find("GridSample: opset 16 or later"), std::string::npos) << error;
      EXPECT_FALSE(std::filesystem::exists(dir / "old.onnx"));
      options.opset = 17;
    }
    options.format = ExportFormat::kOnnx;
    export_network(model, dir / "model.onnx", options, {});
    if (onnxruntime_available()) expect_onnxruntime_gives(dir.path(), input, ours);
    // --dynamic: DLA-34 plain and Hourglass hold no size; DCN's sampling grid does (named).
    options.dynamic = true;
    if (backbone == "dla34") {
      const std::string error = testing::error_message_of(
          [&] { export_network(model, dir / "dynamic.onnx", options, {}); });
      EXPECT_NE(error.find("--dynamic: the graph depends on the input's size"), std::string::npos)
          << error;
      continue;
    }
    export_network(model, dir / "model.onnx", options, {});
    if (!onnxruntime_available()) continue;
    const torch::Tensor other_size = torch::randn({2, 3, side + model.size_divisor(), side});
    expect_onnxruntime_gives(dir.path(), other_size, our_maps(model, other_size));
  }
}

// The command: a config's untrained model exported, its maps listed, what a deploy program
// needs in the file's metadata; bad input refused by name.
TEST(ExportCommand, WritesTheGraphWithItsMetadataAndRefusesBadInput) {
  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  testing::TempDir dir;
  const std::string config = (testing::test_data_dir() / "learning" / "polarmask.yaml").string();
  const testing::CliRun run = testing::run_program(
      CENTERMASK_CLI,
      fmt::format("export --config {} --classes 3 --input-size 64 --postprocess off --out {}",
                  config, (dir / "model.onnx").string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("rays_p3                  1 x 36 x 8 x 8"), std::string::npos)
      << run.output;
  const std::string bytes = testing::read_text(dir / "model.onnx");
  for (const char* key : {"class_names", "mean_bgr", "std_bgr", "test.score_threshold", "outputs",
                          "class_logits_p3 1x3x8x8"})
    EXPECT_NE(bytes.find(key), std::string::npos) << key;
  const testing::CliRun odd = testing::run_program(
      CENTERMASK_CLI, fmt::format("export --config {} --input-size 80 --out {}", config,
                                  (dir / "odd.onnx").string()));
  EXPECT_NE(odd.exit_code, 0);
  EXPECT_NE(odd.output.find("--input-size: the input height is 80"), std::string::npos)
      << odd.output;
  const testing::CliRun neither = testing::run_program(
      CENTERMASK_CLI, fmt::format("export --out {}", (dir / "x.onnx").string()));
  EXPECT_NE(neither.output.find("give --weights"), std::string::npos) << neither.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "odd.onnx"));
  // PolarMask's decoding holds NMS, an operation of ours: TorchScript refuses it by name.
  const testing::CliRun decoded = testing::run_program(
      CENTERMASK_CLI,
      fmt::format("export --config {} --classes 3 --input-size 64 --format torchscript --out {}",
                  config, (dir / "decoded.pt").string()));
  EXPECT_NE(decoded.exit_code, 0);
  EXPECT_NE(decoded.output.find("holds class-wise NMS"), std::string::npos) << decoded.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "decoded.pt"));
  // CenterMask's decoding resamples masks with GridSample: opset 16 at least, said by name.
  const testing::CliRun old_opset = testing::run_program(
      CENTERMASK_CLI,
      fmt::format("export --config {} --classes 3 --input-size 64 --opset 15 --out {}",
                  (testing::test_data_dir() / "learning" / "centermask.yaml").string(),
                  (dir / "old.onnx").string()));
  EXPECT_NE(old_opset.output.find("GridSample: opset 16 or later"), std::string::npos)
      << old_opset.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "old.onnx"));
}

// Pictures to compare detections on: the real COCO images of ../shared/data/coco_mini's
// validation split where it exists, and a drawn one.
std::vector<std::pair<std::string, cv::Mat>> comparison_images(int coco_images) {
  std::vector<std::pair<std::string, cv::Mat>> images;
  cv::Mat drawn(90, 150, CV_8UC3, cv::Scalar(40, 90, 30));
  cv::circle(drawn, {50, 45}, 25, cv::Scalar(200, 60, 60), -1);
  cv::rectangle(drawn, {90, 20}, {140, 80}, cv::Scalar(30, 200, 220), -1);
  images.emplace_back("drawn", drawn);
  if (!testing::has_shared_dir()) return images;
  const std::filesystem::path split = testing::shared_dir() / "data" / "coco_mini";
  const std::string text = testing::read_text(split / "val.json");
  const std::regex file_name("\"file_name\"\\s*:\\s*\"([^\"]+)\"");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), file_name);
       it != std::sregex_iterator() && static_cast<int>(images.size()) <= coco_images; ++it)
    images.emplace_back((*it)[1].str(), cv::imread((split / "images" / (*it)[1].str()).string()));
  return images;
}

// An untrained network's boxes are about a cell (CenterMask) or its classes below FCOS's
// candidate threshold, and its masks empty or whole: set its last layers so that boxes span
// several cells, candidates exist and masks are blobs with ragged edges — what a comparison
// of detections and masks needs.
void give_objects_masks(MetaArchitectureImpl& model) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(17);
  const auto ends_with = [](const std::string& name, const std::string& tail) {
    return name.size() >= tail.size() &&
           name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (name == "size.2.bias") p.fill_(5.0);  // CenterMask: boxes of 5 cells
    if (ends_with(name, "regression.bias") || name == "rays.bias") p.fill_(1.0);  // e strides
    if (ends_with(name, "class_logits.bias")) p.fill_(0.0);  // FCOS: candidates everywhere
    if (name == "size.2.weight" || ends_with(name, "regression.weight") || name == "rays.weight")
      p.normal_(0, 0.2);
    if (ends_with(name, "class_logits.weight")) p.normal_(0, 0.5);
    if (name == "saliency.2.bias" || name == "saliency_output.bias") p.fill_(1.5);
    if (name == "saliency.2.weight" || name == "saliency_output.weight") p.normal_(0, 0.3);
    if (name == "shape_output.bias") {
      const auto s = static_cast<std::int64_t>(std::lround(std::sqrt(p.numel())));
      const torch::Tensor axis = torch::linspace(-1, 1, s);
      const torch::Tensor radius2 = axis.view({s, 1}).pow(2) + axis.view({1, s}).pow(2);
      p.copy_((4.0 - 6.0 * radius2).reshape({-1}));
    }
    if (name == "shape_output.weight") p.normal_(0, 0.3);
  }
}

// The decoding inside the graph (--postprocess on), run in ONNX Runtime (and TorchScript where
// it holds no operation of ours) on real and drawn pictures prepared and pasted by the deploy
// header (include/centermask/deploy/exported_detections.h), gives what Predictor::predict
// gives: the same detections, each of the same class, its score within 1e-4, its box within
// 0.5 px and its mask as close as the M×M grid's resampling allows (below).
class ExportDetections : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportDetections, TheGraphGivesPredictsDetectionsOnRealPictures) {
  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  if (!onnxruntime_available()) GTEST_SKIP() << "node or onnxruntime-node missing";
  constexpr int kSide = 128;
  Predictor predictor = small_model(GetParam(), {"test.input_size=128", "test.top_k=30"});
  give_objects_masks(predictor.model());
  testing::TempDir dir;
  ExportOptions options;
  options.input_height = options.input_width = kSide;
  options.predict = predict_options(predictor.config().test);
  // The M×M grid resamples the masks: M = 224 here, where these pictures' blocks span up to
  // 34 mask cells, 640 original pixels (at 112 a 15-pixel mask vanished; see compare_masks).
  options.mask_size = 224;
  const ExportReport report = export_network(predictor.model(), dir / "model.onnx", options, {});
  const bool polygons = GetParam() == "polarmask";
  const std::vector<std::string> expected_outputs =
      polygons
          ? std::vector<std::string>{"boxes", "scores", "classes", "polygons", "count"}
          : std::vector<std::string>{"boxes", "scores", "classes", "masks", "mask_boxes", "count"};
  ASSERT_EQ(report.output_names, expected_outputs);
  // TorchScript holds CenterMask's decoding; the FCOS family's NMS is an operation of ours,
  // which TorchScript export refuses by name.
  const bool scripted = GetParam() == "centermask";
  options.format = ExportFormat::kTorchScript;
  torch::jit::Module script;
  if (scripted) {
    export_network(predictor.model(), dir / "model.pt", options, {});
    script = torch::jit::load((dir / "model.pt").string());
  } else {
    EXPECT_NE(testing::error_message_of([&] {
                export_network(predictor.model(), dir / "model.pt", options, {});
              }).find("holds class-wise NMS"),
              std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "model.pt"));
  }

  std::int64_t compared = 0, masked = 0;  // masked: neither empty nor its whole box
  double worst_iou = 1;
  for (const auto& [name, image] : comparison_images(3)) {
    SCOPED_TRACE(name);
    const deploy::InputTransform fit = deploy::fit_into(image, kSide, kSide);
    std::vector<float> input = deploy::network_input(image, fit);
    // The header prepares the input as the test transform does.
    TestTransformOptions transform;
    transform.input_height = transform.input_width = kSide;
    std::vector<float> expected(input.size());
    write_network_input(transform_for_test(image, transform), transform.normalization,
                        expected.data());
    float input_difference = 0;
    for (std::size_t i = 0; i < input.size(); ++i)
      input_difference = std::max(input_difference, std::abs(input[i] - expected[i]));
    EXPECT_LT(input_difference, 1e-5);

    const torch::Tensor input_tensor = torch::from_blob(input.data(), {1, 3, kSide, kSide});
    const std::map<std::string, torch::Tensor> outputs =
        run_onnxruntime(dir.path(), input_tensor, report);
    // The TorchScript module's outputs, as the deploy header reads ONNX Runtime's.
    std::vector<const std::map<std::string, torch::Tensor>*> runtimes = {&outputs};
    std::map<std::string, torch::Tensor> script_outputs;
    if (scripted) {
      const auto elements = script.forward({input_tensor}).toTuple()->elements();
      for (std::size_t i = 0; i < report.output_names.size(); ++i)
        script_outputs[report.output_names[i]] = elements[i].toTensor().contiguous();
      runtimes.push_back(&script_outputs);
    }
    const std::vector<Instance> ours = predictor.predict(image);
    for (const std::map<std::string, torch::Tensor>* runtime : runtimes) {
      SCOPED_TRACE(runtime == &outputs ? "ONNX Runtime" : "TorchScript");
      const deploy::ExportedOutputs exported = exported_view(*runtime, options.mask_size);
      const std::vector<deploy::Detection> theirs =
          deploy::detections(exported, 0, fit, predictor.config().test.mask_threshold);
      ASSERT_EQ(theirs.size(), ours.size());
      const std::vector<int> match = match_detections(ours, theirs);
      for (std::size_t i = 0; i < ours.size(); ++i) {
        const Instance& object = ours[i];
        ASSERT_GE(match[i], 0) << "no graph detection matches class " << object.class_index
                               << " score " << object.score;
        // The M×M grid resamples what predict thresholds directly: masks agree to IoU 0.99, or
        // for thin or tiny masks (where a pixel is much of the IoU) differ by at most half
        // their boundary's pixels — a boundary moved by under half a pixel.
        const MaskAgreement agreement =
            compare_masks(object.mask, theirs[static_cast<std::size_t>(match[i])].mask);
        worst_iou = std::min(worst_iou, agreement.iou);
        EXPECT_TRUE(agreement.iou >= 0.99 || 2 * agreement.differing <= agreement.boundary)
            << "score " << object.score << ": IoU " << agreement.iou << ", " << agreement.differing
            << " pixels differ, boundary " << agreement.boundary << ", area " << agreement.area;
        ++compared;
        masked += agreement.area > 0 &&
                  agreement.area < static_cast<std::int64_t>(object.mask.pixels.size());
      }
    }
  }
  EXPECT_GT(masked, compared / 2);
  std::printf("compared %lld detections (%lld with a partial mask); worst mask IoU %.4f\n",
              static_cast<long long>(compared), static_cast<long long>(masked), worst_iou);
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, ExportDetections,
                         ::testing::Values("centermask", "centermask_fcos", "polarmask"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// --dtype fp16: the graph computes in float16 between a float32 input and float32 outputs. In
// ONNX Runtime its raw maps stay within float16's precision of the model's, and its decoded
// detections are predict's: the same classes, scores within 5e-3, boxes within 1 px, masks
// close — the few near-ties that float16 reorders (below a score's last float16 bit) aside.
class ExportFloat16 : public ::testing::TestWithParam<std::string> {};

TEST_P(ExportFloat16, RunsInOnnxRuntimeCloseToTheFloat32Model) {
  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  if (!onnxruntime_available()) GTEST_SKIP() << "node or onnxruntime-node missing";
  Predictor predictor = small_model(GetParam(), {"test.input_size=128", "test.top_k=30"});
  give_objects_masks(predictor.model());
  MetaArchitectureImpl& model = predictor.model();
  testing::TempDir dir;

  // Raw maps.
  torch::manual_seed(11);
  const torch::Tensor random_input = torch::randn({1, 3, kHeight, kWidth});
  const auto ours = our_maps(model, random_input);
  ExportOptions options = raw_maps_options();
  options.dtype = ExportDtype::kFloat16;
  const ExportReport raw = export_network(model, dir / "model.onnx", options, {});
  const auto size_of = [&] { return std::filesystem::file_size(dir / "model.onnx"); };
  const std::uintmax_t half_size = size_of();
  const auto theirs = run_onnxruntime(dir.path(), random_input, raw);
  for (const auto& [name, map] : ours) {
    const double difference = scaled_difference(theirs.at(name), map);
    EXPECT_LT(difference, 1e-2) << name;
    std::printf("%s: float16 raw map %s within %.2e (scaled)\n", GetParam().c_str(), name.c_str(),
                difference);
  }
  options.dtype = ExportDtype::kFloat32;
  export_network(model, dir / "model.onnx", options, {});
  EXPECT_LT(static_cast<double>(half_size), 0.55 * static_cast<double>(size_of()))
      << "float16 weights halve the file";

  // Decoded detections against predict's.
  constexpr int kSide = 128;
  options.postprocess = true;
  options.dtype = ExportDtype::kFloat16;
  options.input_height = options.input_width = kSide;
  options.predict = predict_options(predictor.config().test);
  options.mask_size = 112;
  const ExportReport report = export_network(model, dir / "model.onnx", options, {});
  std::size_t expected = 0, matched = 0;
  double iou_sum = 0;
  for (const auto& [name, image] : comparison_images(3)) {
    SCOPED_TRACE(name);
    const deploy::InputTransform fit = deploy::fit_into(image, kSide, kSide);
    std::vector<float> input = deploy::network_input(image, fit);
    const auto outputs =
        run_onnxruntime(dir.path(), torch::from_blob(input.data(), {1, 3, kSide, kSide}), report);
    const std::vector<deploy::Detection> detections = deploy::detections(
        exported_view(outputs, options.mask_size), 0, fit, predictor.config().test.mask_threshold);
    const std::vector<Instance> predicted = predictor.predict(image);
    const std::vector<int> match = match_detections(predicted, detections, 5e-3f, 1.0f);
    expected += predicted.size();
    for (std::size_t i = 0; i < predicted.size(); ++i) {
      if (match[i] < 0) continue;
      ++matched;
      iou_sum +=
          compare_masks(predicted[i].mask, detections[static_cast<std::size_t>(match[i])].mask).iou;
    }
  }
  ASSERT_GT(expected, 0u);
  const double matched_share = static_cast<double>(matched) / static_cast<double>(expected);
  const double mean_iou = matched == 0 ? 0 : iou_sum / static_cast<double>(matched);
  std::printf("%s: float16 decoded %zu of %zu detections matched, mean mask IoU %.4f\n",
              GetParam().c_str(), matched, expected, mean_iou);
  EXPECT_GE(matched_share, 0.9);
  EXPECT_GE(mean_iou, 0.95);
}

INSTANTIATE_TEST_SUITE_P(EveryMethod, ExportFloat16,
                         ::testing::Values("centermask", "centermask_fcos", "polarmask"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

#ifdef CENTERMASK_TEST_HAVE_OPENCV_DNN
// OpenCV DNN (our own dependency) reads the ONNX of the ResNet CenterMask and computes its maps.
TEST(ExportOpenCvDnn, RunsTheResNetCenterMasksGraph) {
  if (!onnx_export_available()) GTEST_SKIP() << "this build writes no ONNX (libonnx-dev)";
  testing::TempDir dir;
  Predictor predictor = small_model("centermask");
  MetaArchitectureImpl& model = predictor.model();
  torch::manual_seed(12);
  const torch::Tensor input = torch::randn({1, 3, kHeight, kWidth});
  const auto ours = our_maps(model, input);
  export_network(model, dir / "model.onnx", raw_maps_options(), {});
  cv::dnn::Net net = cv::dnn::readNetFromONNX((dir / "model.onnx").string());
  const int shape[] = {1, 3, kHeight, kWidth};
  cv::Mat blob(4, shape, CV_32F, input.data_ptr<float>());
  net.setInput(blob);
  std::vector<std::string> names;
  for (const auto& [name, map] : ours) names.push_back(name);
  std::vector<cv::Mat> outputs;
  net.forward(outputs, names);
  ASSERT_EQ(outputs.size(), ours.size());
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const torch::Tensor theirs =
        torch::from_blob(outputs[i].ptr<float>(), ours[i].second.sizes(), torch::kFloat32);
    EXPECT_LT(scaled_difference(theirs, ours[i].second), 1e-4) << ours[i].first;
  }
}
#endif

}  // namespace
}  // namespace centermask
