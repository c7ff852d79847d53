// Configs: the shipped files parse, every key round-trips through the saved YAML, and every
// kind of mistake is an error that names the file (or --set) and the key.

#include "centermask/engine/config.h"

#include <gtest/gtest.h>

#include "centermask/common/error.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

const std::string kMinimal = "data:\n  train_json: a.json\n  train_images: imgs\n";

TEST(Config, ShippedConfigsParseWithTheirRecipes) {
  const auto configs = std::filesystem::path(CENTERMASK_SOURCE_DIR) / "configs";
  const TrainConfig paper = load_train_config(configs / "centermask_dla34_coco.yaml");
  EXPECT_EQ(paper.model.backbone.name, "dla34");
  EXPECT_EQ(paper.model.num_classes, 80);
  EXPECT_EQ(paper.model.shape_size, 32);
  EXPECT_TRUE(paper.model.class_specific_saliency);
  EXPECT_EQ(paper.data.input_size, 512);
  EXPECT_EQ(paper.solver.optimizer, OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(paper.solver.lr, 2.5e-4);
  EXPECT_DOUBLE_EQ(paper.solver.epochs, 130);
  EXPECT_EQ(paper.solver.lr_step_epochs, (std::vector<double>{100, 120}));
  EXPECT_DOUBLE_EQ(paper.solver.lr_gamma, 0.1);

  const TrainConfig demo = load_train_config(configs / "centermask_demo_cpu.yaml");
  EXPECT_EQ(demo.model.backbone.name, "resnet18");
  EXPECT_EQ(demo.model.num_classes, 0);  // from the dataset
  EXPECT_EQ(demo.data.input_size, 256);
  EXPECT_TRUE(demo.model.dense_box_loss);
  EXPECT_FALSE(demo.model.small_normal_head_init);
  // The CPU recipe spends its 20 minutes annealed on any machine.
  EXPECT_EQ(demo.solver.schedule_length, ScheduleLength::kTimeLimit);
  EXPECT_DOUBLE_EQ(demo.runtime.time_limit_minutes, 20);
  // One OpenBLAS thread: BLAS beside LibTorch's own threads halved the images/s on 2 cores.
  EXPECT_EQ(demo.runtime.blas_threads, 1);
}

TEST(Config, RecipeOptionsTheModelCannotHonourNameTheKeyAndTheAllowedValues) {
  const std::string stride = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.saliency_stride=3"}); });
  EXPECT_NE(stride.find("model.saliency_stride"), std::string::npos) << stride;
  EXPECT_NE(stride.find("4, 2 or 1"), std::string::npos) << stride;
  const std::string shape = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.shape_size=1"}); });
  EXPECT_NE(shape.find("model.shape_size"), std::string::npos) << shape;
  const std::string neighbourhood = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.mask_neighbourhood=9"}); });
  EXPECT_NE(neighbourhood.find("model.mask_neighbourhood"), std::string::npos) << neighbourhood;
  const std::string shape_only = testing::error_message_of([] {
    parse_train_config(kMinimal, "m.yaml",
                       {"model.saliency_stride=2", "model.assembly=shape_only"});
  });
  EXPECT_NE(shape_only.find("saliency_stride"), std::string::npos) << shape_only;
  const std::string dla_skips = testing::error_message_of([] {
    parse_train_config(kMinimal, "m.yaml", {"model.backbone=dla34", "model.backbone_skips=true"});
  });
  EXPECT_NE(dla_skips.find("model.backbone_skips"), std::string::npos) << dla_skips;
  EXPECT_NE(dla_skips.find("resnet18"), std::string::npos) << dla_skips;
  const std::string dla_channels = testing::error_message_of([] {
    parse_train_config(kMinimal, "m.yaml",
                       {"model.backbone=dla34", "model.backbone_output_channels=32"});
  });
  EXPECT_NE(dla_channels.find("model.backbone_output_channels"), std::string::npos) << dla_channels;
  const std::string negative = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.backbone_output_channels=-8"}); });
  EXPECT_NE(negative.find("backbone_output_channels"), std::string::npos) << negative;
}

TEST(Config, EveryKeyRoundTripsThroughTheSavedYaml) {
  TrainConfig config = parse_train_config(
      kMinimal, "minimal.yaml",
      {"solver.lr=0.000123", "model.assembly=shape_only", "solver.lr_step_epochs=[3, 7.5]",
       "data.val_json=v.json", "data.val_images=v", "runtime.seed=18446744073709",
       "solver.schedule=cosine", "data.strict=true", "runtime.device=cuda:1",
       "solver.schedule_length=time_limit", "runtime.time_limit_minutes=20"});
  const std::string saved = to_yaml(config);
  const TrainConfig again = parse_train_config(saved, "saved.yaml");
  EXPECT_EQ(to_yaml(again), saved);
  EXPECT_DOUBLE_EQ(again.solver.lr, 0.000123);
  EXPECT_EQ(again.model.assembly, MaskAssembly::kShapeOnly);
  EXPECT_EQ(again.solver.lr_step_epochs, (std::vector<double>{3, 7.5}));
  EXPECT_EQ(again.solver.schedule, LrSchedule::kCosine);
  EXPECT_EQ(again.solver.schedule_length, ScheduleLength::kTimeLimit);
  EXPECT_EQ(again.runtime.seed, 18446744073709u);
  EXPECT_EQ(again.runtime.device, "cuda:1");
  EXPECT_TRUE(again.data.strict);
  // Every declared key of the method appears in the saved file; another method's do not.
  for (const auto& [key, doc] : config_keys()) {
    if (key.rfind("model.polarmask.", 0) == 0 || key.rfind("model.centermask_fcos.", 0) == 0)
      continue;
    EXPECT_NE(saved.find(key.substr(key.rfind('.') + 1) + ":"), std::string::npos) << key;
  }
  EXPECT_EQ(saved.find("polarmask"), std::string::npos);
}

TEST(Config, PolarMaskKeysRoundTripAndOtherMethodsOptionsAreRefusedByKey) {
  const std::vector<std::string> polar = {"model.meta_arch=polarmask",
                                          "model.backbone=resnet18",
                                          "model.polarmask.num_rays=24",
                                          "model.polarmask.mask_loss=smooth_l1",
                                          "model.polarmask.centerness=cartesian",
                                          "model.polarmask.sampling_center=box",
                                          "model.polarmask.loss_weights.mask=2.5"};
  const TrainConfig config = parse_train_config(kMinimal, "polar.yaml", polar);
  EXPECT_EQ(config.model.polarmask.num_rays, 24);
  EXPECT_EQ(config.model.polarmask.mask_loss, PolarMaskLoss::kSmoothL1);
  const std::string saved = to_yaml(config);
  const TrainConfig again = parse_train_config(saved, "saved.yaml");
  EXPECT_EQ(to_yaml(again), saved);
  EXPECT_EQ(again.model.polarmask.centerness, PolarMaskCenterness::kCartesian);
  EXPECT_EQ(again.model.polarmask.sampling_center, PolarMaskSamplingCenter::kBoxCenter);
  EXPECT_DOUBLE_EQ(again.model.polarmask.loss_weights.mask, 2.5);
  EXPECT_EQ(saved.find("shape_size"), std::string::npos) << saved;  // CenterMask's keys left out
  for (const auto& [key, doc] : config_keys()) {
    if (key.rfind("model.polarmask.", 0) == 0) {
      EXPECT_NE(saved.find(key.substr(key.rfind('.') + 1) + ":"), std::string::npos) << key;
    }
  }

  const std::string centermask_key = testing::error_message_of([&] {
    std::vector<std::string> with = polar;
    with.push_back("model.shape_size=16");
    parse_train_config(kMinimal, "polar.yaml", with);
  });
  EXPECT_NE(centermask_key.find("model.shape_size: an option of centermask and centermask_fcos, "
                                "but model.meta_arch is polarmask"),
            std::string::npos)
      << centermask_key;
  const std::string polar_key = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.polarmask.num_rays=18"}); });
  EXPECT_NE(polar_key.find("model.polarmask.num_rays: an option of polarmask"), std::string::npos)
      << polar_key;
  // PolarMask needs a ResNet for its pyramid; the default backbone (DLA-34) is named.
  const std::string dla = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.meta_arch=polarmask"}); });
  EXPECT_NE(dla.find("model.backbone"), std::string::npos) << dla;
  EXPECT_NE(dla.find("dla34"), std::string::npos) << dla;
  const std::string rays = testing::error_message_of([&] {
    std::vector<std::string> with = polar;
    with.push_back("model.polarmask.num_rays=7");
    parse_train_config(kMinimal, "polar.yaml", with);
  });
  EXPECT_NE(rays.find("model.polarmask.num_rays"), std::string::npos) << rays;
}

// CenterMask-FCOS: its own keys under model.centermask_fcos, CenterMask's mask keys shared
// (the ablation switches), CenterMask's other keys refused, its saliency strides its own.
TEST(Config, CenterMaskFcosSharesTheMaskKeysAndRefusesCenterMasksOthers) {
  const std::vector<std::string> fcos = {"model.meta_arch=centermask_fcos",
                                         "model.backbone=resnet18",
                                         "model.shape_size=16",
                                         "model.assembly=shape_only",
                                         "model.saliency_stride=8",
                                         "model.centermask_fcos.fpn_channels=64",
                                         "model.centermask_fcos.mask_samples_per_image=32",
                                         "model.centermask_fcos.loss_weights.mask=2"};
  const TrainConfig config = parse_train_config(kMinimal, "fcos.yaml", fcos);
  const CenterMaskFcosOptions options = centermask_fcos_options(config.model);
  EXPECT_EQ(options.shape_size, 16);
  EXPECT_EQ(options.assembly, MaskAssembly::kShapeOnly);
  EXPECT_EQ(options.saliency_stride, 8);
  EXPECT_EQ(options.fpn_channels, 64);
  EXPECT_EQ(options.mask_samples_per_image, 32);
  const std::string saved = to_yaml(config);
  EXPECT_EQ(to_yaml(parse_train_config(saved, "saved.yaml")), saved);
  EXPECT_NE(saved.find("shape_size: 16"), std::string::npos) << saved;
  EXPECT_EQ(saved.find("head_channels"), std::string::npos) << saved;  // CenterMask's own
  EXPECT_EQ(saved.find("polarmask"), std::string::npos) << saved;
  for (const auto& [key, doc] : config_keys()) {
    if (key.rfind("model.centermask_fcos.", 0) == 0) {
      EXPECT_NE(saved.find(key.substr(key.rfind('.') + 1) + ":"), std::string::npos) << key;
    }
  }

  const auto refused = [&](const std::string& extra) {
    std::vector<std::string> with = fcos;
    with.push_back(extra);
    return testing::error_message_of([&] { parse_train_config(kMinimal, "fcos.yaml", with); });
  };
  std::string message = refused("model.head_channels=32");
  EXPECT_NE(message.find("model.head_channels: an option of centermask, but model.meta_arch is "
                         "centermask_fcos"),
            std::string::npos)
      << message;
  message = refused("model.polarmask.num_rays=18");
  EXPECT_NE(message.find("model.polarmask.num_rays"), std::string::npos) << message;
  message = refused("model.saliency_stride=16");
  EXPECT_NE(message.find("model.saliency_stride"), std::string::npos) << message;
  message = refused("model.centermask_fcos.saliency_channels=30");
  EXPECT_NE(message.find("model.centermask_fcos.saliency_channels"), std::string::npos) << message;
  // Stride 8 is CenterMask-FCOS's only: CenterMask refuses it.
  message = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.saliency_stride=8"}); });
  EXPECT_NE(message.find("model.saliency_stride"), std::string::npos) << message;
  message = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.centermask_fcos.fpn_channels=64"}); });
  EXPECT_NE(message.find("model.centermask_fcos.fpn_channels: an option of centermask_fcos"),
            std::string::npos)
      << message;
}

TEST(Config, UnknownKeysAreErrorsThatNameTheKeyAndSuggestTheNearest) {
  const std::string in_file = testing::error_message_of(
      [] { parse_train_config(kMinimal + "solver:\n  lrr: 0.1\n", "my.yaml"); });
  EXPECT_NE(in_file.find("my.yaml"), std::string::npos) << in_file;
  EXPECT_NE(in_file.find("unknown key 'solver.lrr'"), std::string::npos) << in_file;
  EXPECT_NE(in_file.find("did you mean 'solver.lr'"), std::string::npos) << in_file;

  const std::string section = testing::error_message_of(
      [] { parse_train_config(kMinimal + "modle:\n  x: 1\n", "my.yaml"); });
  EXPECT_NE(section.find("unknown key 'modle.x'"), std::string::npos) << section;

  const std::string override_error = testing::error_message_of(
      [] { parse_train_config(kMinimal, "my.yaml", {"solver.momentun=0.5"}); });
  EXPECT_NE(override_error.find("--set solver.momentun=0.5"), std::string::npos) << override_error;
  EXPECT_NE(override_error.find("did you mean 'solver.momentum'"), std::string::npos);
}

TEST(Config, WrongTypesAndBadValuesNameTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"solver:\n  lr: fast\n", "solver.lr: expected a number, got 'fast'"},
      {"solver:\n  batch_size: 2.5\n", "solver.batch_size: expected a whole number"},
      {"data:\n  strict: maybe\n", "data.strict: expected true or false"},
      {"solver:\n  optimizer: rmsprop\n", "solver.optimizer: expected one of adam, sgd"},
      {"solver:\n  lr_step_epochs: 100\n", "solver.lr_step_epochs: expected a list"},
      {"data:\n  input_size: 100\n", "data.input_size: must be a positive multiple of 32"},
      {"solver:\n  lr_step_epochs: [120, 100]\n", "solver.lr_step_epochs: must be ascending"},
      {"model:\n  shape_size: [1, 2]\n", "model.shape_size: expected a single value"},
      {"runtime:\n  device: tpu\n", "runtime.device"},
      {"model:\n  backbone: vgg16\n", "model.backbone"},
      {"data:\n  val_json: v.json\n", "data.val_images"},
      {"solver:\n  schedule_length: wallclock\n",
       "solver.schedule_length: expected one of epochs, time_limit"},
      {"solver:\n  schedule: cosine\n  schedule_length: time_limit\n",
       "solver.schedule_length: time_limit needs runtime.time_limit_minutes > 0"},
      {"solver:\n  schedule: step\n  schedule_length: time_limit\nruntime:\n  "
       "time_limit_minutes: 5\n",
       "solver.schedule_length: time_limit needs solver.schedule: cosine"},
      {"runtime:\n  blas_threads: -1\n", "runtime.blas_threads: must be ≥ 0"},
      {"model:\n  loss_weights:\n    box_giou: 5\n",
       "model.loss_weights.box_giou: needs model.dense_box_loss: true"},
      {"model:\n  meta_arch: maskrcnn\n",
       "model.meta_arch: unknown method 'maskrcnn' (known: centermask"},
      {"solver:\n  ema_decay: 1\n", "solver.ema_decay: must be in [0, 1) (0 = off)"},
  };
  for (const auto& [yaml, expected] : cases) {
    const std::string message =
        testing::error_message_of([&] { parse_train_config(kMinimal + yaml, "c.yaml"); });
    EXPECT_NE(message.find(expected), std::string::npos) << yaml << " → " << message;
  }
  const std::string missing =
      testing::error_message_of([] { parse_train_config("solver:\n  lr: 0.1\n", "c.yaml"); });
  EXPECT_NE(missing.find("data.train_json: is required"), std::string::npos) << missing;
  const std::string malformed =
      testing::error_message_of([] { parse_train_config("model: [\n", "bad.yaml"); });
  EXPECT_NE(malformed.find("bad.yaml: line"), std::string::npos) << malformed;
  const std::string no_value =
      testing::error_message_of([] { parse_train_config(kMinimal, "c.yaml", {"solver.lr"}); });
  EXPECT_NE(no_value.find("expected KEY=VALUE"), std::string::npos) << no_value;
  const std::string missing_file =
      testing::error_message_of([] { load_train_config("/no/such/config.yaml"); });
  EXPECT_NE(missing_file.find("/no/such/config.yaml"), std::string::npos) << missing_file;
}

TEST(Config, BaseFilesAreReadFirstAndOverridden) {
  testing::TempDir dir;
  testing::write_text(dir / "base.yaml", kMinimal + "solver:\n  lr: 0.5\n  batch_size: 7\n");
  testing::write_text(dir / "sub" / "child.yaml", "base: ../base.yaml\nsolver:\n  lr: 0.25\n");
  const TrainConfig config = load_train_config(dir / "sub" / "child.yaml", {"solver.batch_size=3"});
  EXPECT_DOUBLE_EQ(config.solver.lr, 0.25);
  EXPECT_EQ(config.solver.batch_size, 3);
  EXPECT_EQ(config.data.train_json, "a.json");

  testing::write_text(dir / "loop.yaml", "base: loop.yaml\n");
  const std::string cycle =
      testing::error_message_of([&] { load_train_config(dir / "loop.yaml"); });
  EXPECT_NE(cycle.find("more than 8 levels"), std::string::npos) << cycle;
}

}  // namespace
}  // namespace centermask
