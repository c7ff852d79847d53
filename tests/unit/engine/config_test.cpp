// Configs: the shipped files parse, every key round-trips through the saved YAML, and every
// kind of mistake is an error that names the file (or --set) and the key.

#include "centermask/engine/config.h"

#include <gtest/gtest.h>

#include "centermask/common/error.h"
#include "centermask/modeling/methods/centermask/centermask.h"
#include "centermask/modeling/methods/centermask_fcos/centermask_fcos.h"
#include "centermask/modeling/methods/polarmask/polarmask.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

const std::string kMinimal = "data:\n  train_json: a.json\n  train_images: imgs\n";

const CenterMaskOptions& centermask_of(const TrainConfig& config) {
  return config.model.method_options<CenterMaskOptions>("centermask");
}
const PolarMaskOptions& polarmask_of(const TrainConfig& config) {
  return config.model.method_options<PolarMaskOptions>("polarmask");
}

TEST(Config, ShippedConfigsParseWithTheirRecipes) {
  const auto configs = std::filesystem::path(CENTERMASK_SOURCE_DIR) / "configs";
  const TrainConfig paper = load_train_config(configs / "centermask_dla34_coco.yaml");
  EXPECT_EQ(paper.model.backbone, "dla34");
  EXPECT_EQ(paper.model.num_classes, 80);
  EXPECT_EQ(centermask_of(paper).shape_size, 32);
  EXPECT_TRUE(centermask_of(paper).class_specific_saliency);
  EXPECT_EQ(paper.data.input_size, 512);
  EXPECT_EQ(paper.solver.optimizer, OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(paper.solver.lr, 2.5e-4);
  EXPECT_DOUBLE_EQ(paper.solver.epochs, 130);
  EXPECT_EQ(paper.solver.lr_step_epochs, (std::vector<double>{100, 120}));
  EXPECT_DOUBLE_EQ(paper.solver.lr_gamma, 0.1);

  const TrainConfig demo = load_train_config(configs / "centermask_demo_cpu.yaml");
  EXPECT_EQ(demo.model.backbone, "resnet18");
  EXPECT_EQ(demo.model.num_classes, 0);  // from the dataset
  EXPECT_EQ(demo.data.input_size, 256);
  EXPECT_TRUE(centermask_of(demo).dense_box_loss);
  EXPECT_FALSE(centermask_of(demo).small_normal_head_init);
  // The CPU recipe spends its 20 minutes annealed on any machine.
  EXPECT_EQ(demo.solver.schedule_length, ScheduleLength::kTimeLimit);
  EXPECT_DOUBLE_EQ(demo.runtime.time_limit_minutes, 20);
  // One OpenBLAS thread: BLAS beside LibTorch's own threads halved the images/s on 2 cores.
  EXPECT_EQ(demo.runtime.blas_threads, 1);

  // The photo recipe is the CPU recipe plus copy-paste, its base found beside it.
  const TrainConfig photos = load_train_config(configs / "centermask_small_real_cpu.yaml");
  EXPECT_DOUBLE_EQ(photos.data.copy_paste_probability, 0.5);
  EXPECT_DOUBLE_EQ(demo.data.copy_paste_probability, 0);
  EXPECT_EQ(photos.data.input_size, demo.data.input_size);
  EXPECT_DOUBLE_EQ(photos.solver.lr, demo.solver.lr);
  EXPECT_DOUBLE_EQ(photos.runtime.time_limit_minutes, 20);
}

TEST(Config, RecipeOptionsTheModelCannotHonourNameTheKeyAndTheAllowedValues) {
  const auto message_of = [](std::vector<std::string> overrides) {
    return testing::error_message_of([&] { parse_train_config(kMinimal, "m.yaml", overrides); });
  };
  const std::string stride = message_of({"model.centermask.saliency_stride=3"});
  EXPECT_NE(stride.find("model.centermask.saliency_stride"), std::string::npos) << stride;
  EXPECT_NE(stride.find("4, 2 or 1"), std::string::npos) << stride;
  const std::string shape = message_of({"model.centermask.shape_size=1"});
  EXPECT_NE(shape.find("model.centermask.shape_size"), std::string::npos) << shape;
  const std::string neighbourhood = message_of({"model.centermask.mask_neighbourhood=9"});
  EXPECT_NE(neighbourhood.find("model.centermask.mask_neighbourhood"), std::string::npos)
      << neighbourhood;
  const std::string shape_only =
      message_of({"model.centermask.saliency_stride=2", "model.centermask.assembly=shape_only"});
  EXPECT_NE(shape_only.find("saliency_stride"), std::string::npos) << shape_only;
  const std::string dla_skips =
      message_of({"model.backbone=dla34", "model.centermask.backbone_skips=true"});
  EXPECT_NE(dla_skips.find("model.centermask.backbone_skips"), std::string::npos) << dla_skips;
  EXPECT_NE(dla_skips.find("resnet18"), std::string::npos) << dla_skips;
  const std::string dla_channels =
      message_of({"model.backbone=dla34", "model.centermask.backbone_output_channels=32"});
  EXPECT_NE(dla_channels.find("model.centermask.backbone_output_channels"), std::string::npos)
      << dla_channels;
  const std::string negative = message_of({"model.centermask.backbone_output_channels=-8"});
  EXPECT_NE(negative.find("backbone_output_channels"), std::string::npos) << negative;
}

// A value that parses but that validation refuses is named where it was given: the --set, not
// the config file it overrides.
TEST(Config, AValueGivenWithSetIsNamedByItsSet) {
  const std::string lr = testing::error_message_of(
      [] { parse_train_config(kMinimal, "configs/x.yaml", {"solver.lr=-1"}); });
  EXPECT_EQ(lr.rfind("--set solver.lr=-1: solver.lr: must be > 0", 0), 0u) << lr;
  const std::string method = testing::error_message_of(
      [] { parse_train_config(kMinimal, "configs/x.yaml", {"model.centermask.shape_size=1"}); });
  EXPECT_EQ(method.rfind("--set model.centermask.shape_size=1: model.centermask.shape_size", 0), 0u)
      << method;
  // In the file, the file is named.
  const std::string in_file = testing::error_message_of(
      [] { parse_train_config(kMinimal + "solver:\n  lr: -1\n", "configs/x.yaml"); });
  EXPECT_EQ(in_file.rfind("configs/x.yaml: solver.lr: must be > 0", 0), 0u) << in_file;
}

TEST(Config, EveryKeyRoundTripsThroughTheSavedYaml) {
  TrainConfig config =
      parse_train_config(kMinimal, "minimal.yaml",
                         {"solver.lr=0.000123", "model.centermask.assembly=shape_only",
                          "solver.lr_step_epochs=[3, 7.5]", "data.val_json=v.json",
                          "data.val_images=v", "runtime.seed=18446744073709",
                          "solver.schedule=cosine", "data.strict=true", "runtime.device=cuda:1",
                          "solver.schedule_length=time_limit", "runtime.time_limit_minutes=20"});
  const std::string saved = to_yaml(config);
  const TrainConfig again = parse_train_config(saved, "saved.yaml");
  EXPECT_EQ(to_yaml(again), saved);
  EXPECT_DOUBLE_EQ(again.solver.lr, 0.000123);
  EXPECT_EQ(centermask_of(again).assembly, MaskAssembly::kShapeOnly);
  EXPECT_EQ(again.solver.lr_step_epochs, (std::vector<double>{3, 7.5}));
  EXPECT_EQ(again.solver.schedule, LrSchedule::kCosine);
  EXPECT_EQ(again.solver.schedule_length, ScheduleLength::kTimeLimit);
  EXPECT_EQ(again.runtime.seed, 18446744073709u);
  EXPECT_EQ(again.runtime.device, "cuda:1");
  EXPECT_TRUE(again.data.strict);
  // Every declared key of the method appears in the saved file, in its section; another
  // method's do not.
  EXPECT_NE(saved.find("model:\n  meta_arch: centermask\n"), std::string::npos) << saved;
  EXPECT_NE(saved.find("\n  centermask:\n    backbone_skips: false\n"), std::string::npos) << saved;
  for (const auto& [key, doc] : config_keys()) {
    if (key.rfind("model.polarmask.", 0) == 0 || key.rfind("model.centermask_fcos.", 0) == 0)
      continue;
    EXPECT_NE(saved.find(key.substr(key.rfind('.') + 1) + ":"), std::string::npos) << key;
  }
  EXPECT_EQ(saved.find("polarmask"), std::string::npos);
  EXPECT_EQ(saved.find("centermask_fcos"), std::string::npos);
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
  EXPECT_EQ(polarmask_of(config).num_rays, 24);
  EXPECT_EQ(polarmask_of(config).mask_loss, PolarMaskLoss::kSmoothL1);
  const std::string saved = to_yaml(config);
  const TrainConfig again = parse_train_config(saved, "saved.yaml");
  EXPECT_EQ(to_yaml(again), saved);
  EXPECT_EQ(polarmask_of(again).centerness, PolarMaskCenterness::kCartesian);
  EXPECT_EQ(polarmask_of(again).sampling_center, PolarMaskSamplingCenter::kBoxCenter);
  EXPECT_DOUBLE_EQ(polarmask_of(again).loss_weights.mask, 2.5);
  EXPECT_EQ(saved.find("shape_size"), std::string::npos) << saved;  // CenterMask's keys left out
  for (const auto& [key, doc] : config_keys()) {
    if (key.rfind("model.polarmask.", 0) == 0) {
      EXPECT_NE(saved.find(key.substr(key.rfind('.') + 1) + ":"), std::string::npos) << key;
    }
  }

  const std::string centermask_key = testing::error_message_of([&] {
    std::vector<std::string> with = polar;
    with.push_back("model.centermask.shape_size=16");
    parse_train_config(kMinimal, "polar.yaml", with);
  });
  EXPECT_NE(
      centermask_key.find("--set model.centermask.shape_size=16: model.centermask.shape_size: "
                          "an option of centermask, but model.meta_arch is polarmask"),
      std::string::npos)
      << centermask_key;
  // Another method's key is refused whatever its value, its default (PolarMask's 36 rays)
  // included: it was written for another method.
  for (const char* rays : {"model.polarmask.num_rays=18", "model.polarmask.num_rays=36"}) {
    const std::string polar_key =
        testing::error_message_of([&] { parse_train_config(kMinimal, "m.yaml", {rays}); });
    EXPECT_NE(polar_key.find("model.polarmask.num_rays: an option of polarmask, but "
                             "model.meta_arch is centermask"),
              std::string::npos)
        << polar_key;
  }
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

// CenterMask-FCOS: every key of its own under model.centermask_fcos (the mask switches it
// shares with CenterMask's design too), CenterMask's keys refused, its saliency strides its own.
TEST(Config, CenterMaskFcosKeysAreItsOwnAndCenterMasksAreRefused) {
  const std::vector<std::string> fcos = {"model.meta_arch=centermask_fcos",
                                         "model.backbone=resnet18",
                                         "model.centermask_fcos.shape_size=16",
                                         "model.centermask_fcos.assembly=shape_only",
                                         "model.centermask_fcos.saliency_stride=8",
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
  EXPECT_EQ(options.backbone, "resnet18");
  const std::string saved = to_yaml(config);
  EXPECT_EQ(to_yaml(parse_train_config(saved, "saved.yaml")), saved);
  EXPECT_NE(saved.find("  centermask_fcos:\n    shape_size: 16\n"), std::string::npos) << saved;
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
  std::string message = refused("model.centermask.head_channels=32");
  EXPECT_NE(message.find("model.centermask.head_channels: an option of centermask, but "
                         "model.meta_arch is centermask_fcos"),
            std::string::npos)
      << message;
  message = refused("model.polarmask.num_rays=18");
  EXPECT_NE(message.find("model.polarmask.num_rays"), std::string::npos) << message;
  message = refused("model.centermask_fcos.saliency_stride=16");
  EXPECT_NE(message.find("model.centermask_fcos.saliency_stride"), std::string::npos) << message;
  message = refused("model.centermask_fcos.saliency_channels=30");
  EXPECT_NE(message.find("model.centermask_fcos.saliency_channels"), std::string::npos) << message;
  // Stride 8 is CenterMask-FCOS's only: CenterMask refuses it.
  message = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.centermask.saliency_stride=8"}); });
  EXPECT_NE(message.find("model.centermask.saliency_stride"), std::string::npos) << message;
  message = testing::error_message_of(
      [] { parse_train_config(kMinimal, "m.yaml", {"model.centermask_fcos.fpn_channels=64"}); });
  EXPECT_NE(message.find("model.centermask_fcos.fpn_channels: an option of centermask_fcos"),
            std::string::npos)
      << message;
}

// Configs and checkpoints written before methods had their sections held a method's options
// directly under model.: they are read as the same options of the config's method, and saved
// in the new form. An earlier key the config's method does not have says where it lives now.
TEST(Config, TheEarlierFormIsReadAsTheMethodsOwnKeys) {
  const std::string earlier_centermask =
      kMinimal +
      "model:\n  backbone: resnet18\n  backbone_skips: true\n  shape_size: 12\n"
      "  loss_weights:\n    mask: 4.0\n";
  const TrainConfig centermask = parse_train_config(earlier_centermask, "earlier.yaml");
  EXPECT_EQ(centermask_of(centermask).shape_size, 12);
  EXPECT_TRUE(centermask_of(centermask).backbone.skip_connections);
  EXPECT_DOUBLE_EQ(centermask_of(centermask).loss_weights.mask, 4.0);
  const std::string saved = to_yaml(centermask);
  EXPECT_NE(saved.find("  centermask:\n    backbone_skips: true\n"), std::string::npos) << saved;
  EXPECT_NE(saved.find("    shape_size: 12\n"), std::string::npos) << saved;
  EXPECT_EQ(to_yaml(parse_train_config(saved, "saved.yaml")), saved);
  // --set in the earlier form too.
  EXPECT_EQ(
      centermask_of(parse_train_config(kMinimal, "m.yaml", {"model.shape_size=20"})).shape_size,
      20);

  // CenterMask-FCOS's configs shared the mask keys at the top: they are its own now.
  const TrainConfig fcos = parse_train_config(
      kMinimal +
          "model:\n  meta_arch: centermask_fcos\n  backbone: resnet18\n  shape_size: 16\n"
          "  saliency_stride: 8\n  centermask_fcos:\n    fpn_channels: 32\n",
      "earlier_fcos.yaml");
  EXPECT_EQ(centermask_fcos_options(fcos.model).shape_size, 16);
  EXPECT_EQ(centermask_fcos_options(fcos.model).saliency_stride, 8);
  EXPECT_EQ(centermask_fcos_options(fcos.model).fpn_channels, 32);
  EXPECT_EQ(centermask_of(fcos).shape_size, CenterMaskOptions{}.shape_size);  // untouched

  const std::string moved = testing::error_message_of([] {
    parse_train_config(kMinimal + "model:\n  meta_arch: polarmask\n  head_channels: 8\n",
                       "earlier.yaml");
  });
  EXPECT_NE(moved.find("earlier.yaml: model.head_channels: now model.centermask.head_channels, "
                       "an option of centermask, but model.meta_arch is polarmask"),
            std::string::npos)
      << moved;
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
      {"model:\n  centermask:\n    shape_size: [1, 2]\n",
       "model.centermask.shape_size: expected a single value"},
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
      {"model:\n  centermask:\n    loss_weights:\n      box_giou: 5\n",
       "model.centermask.loss_weights.box_giou: needs dense_box_loss: true"},
      {"model:\n  meta_arch: maskrcnn\n",
       "model.meta_arch: unknown method 'maskrcnn' (known: centermask"},
      {"solver:\n  ema_decay: 1\n", "solver.ema_decay: must be in [0, 1) (0 = off)"},
      {"solver:\n  epochs: -1\n", "solver.epochs: must be ≥ 0"},
      {"solver:\n  epochs: 0\n",
       "solver.epochs: 0 (no cap) needs solver.schedule_length: time_limit and "
       "runtime.time_limit_minutes > 0"},
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
