// `centermask train / predict / test` as a user runs them: a run killed with SIGKILL resumes
// from its last checkpoint and finishes; predictions come out as COCO results and pictures;
// `test` scores exactly the results it writes; bad inputs are refused by name.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <thread>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/engine/inference.h"
#include "centermask/modeling/backbone_weights.h"
#include "centermask/structures/rle.h"
#include "centermask/visualization/draw_instances.h"
#include "support/cli_runner.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

testing::CliRun run_cli(const std::string& args) {
  return testing::run_program(CENTERMASK_CLI, args);
}

class CliTrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::TinyTrainingData();
    testing::write_text(data_->root() / "tiny.yaml", data_->config_yaml());
  }
  static void TearDownTestSuite() { delete data_; }
  static std::string config_path() { return (data_->root() / "tiny.yaml").string(); }
  static testing::TinyTrainingData* data_;
  testing::TempDir dir_;
};
testing::TinyTrainingData* CliTrainTest::data_ = nullptr;

TEST_F(CliTrainTest, ARunKilledMidTrainingResumesFromItsCheckpointAndFinishes) {
  const std::filesystem::path run = dir_ / "run";
  // 8 epochs of 3 iterations, a checkpoint every 2: kill as soon as the first is written.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string out = run.string(), config = config_path();
    freopen("/dev/null", "w", stderr);
    execl(CENTERMASK_CLI, CENTERMASK_CLI, "train", "--config", config.c_str(), "--out", out.c_str(),
          "--set", "solver.epochs=8", static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(run / "last.pt") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run ended before it could be killed";
  ASSERT_TRUE(std::filesystem::exists(run / "last.pt"));
  EXPECT_FALSE(std::filesystem::exists(run / "model_final.pt"));

  // Starting again without --resume is refused; with it the run finishes.
  const testing::CliRun refused =
      run_cli("train --config " + config_path() + " --out " + run.string());
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("--resume"), std::string::npos) << refused.output;
  const testing::CliRun resumed = run_cli("train --resume --out " + run.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("mask AP "), std::string::npos) << resumed.output;
  EXPECT_TRUE(std::filesystem::exists(run / "model_final.pt"));
  // Every iteration is in the log exactly once, however far the killed run had got.
  const auto losses = testing::logged_losses(run / "log.jsonl");
  ASSERT_EQ(losses.size(), 24u);
  EXPECT_EQ(losses.begin()->first, 1);
  EXPECT_EQ(losses.rbegin()->first, 24);
}

TEST_F(CliTrainTest, PredictWritesResultsAndPicturesAndTestScoresWhatItWrites) {
  const std::filesystem::path run = dir_ / "run";
  const testing::CliRun trained = run_cli("train --config " + config_path() + " --out " +
                                          run.string() + " --set solver.epochs=1");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string weights = (run / "model_final.pt").string();

  const testing::CliRun predicted =
      run_cli("predict --weights " + weights + " --input " + (data_->root() / "val").string() +
              " --out " + (dir_ / "pred").string() + " --score-thr 0");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_NE(predicted.output.find("on 4 images"), std::string::npos) << predicted.output;
  std::size_t pictures = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "pred" / "overlays"))
    pictures += entry.path().extension() == ".png";
  EXPECT_EQ(pictures, 4u);
  // results.json reads back against images.json, which names the image files.
  const CocoDataset images = CocoDataset::load(dir_ / "pred" / "images.json");
  EXPECT_EQ(images.images().size(), 4u);
  EXPECT_EQ(images.categories().size(), 6u);
  const testing::CliRun check = run_cli("eval --gt " + (dir_ / "pred" / "images.json").string() +
                                        " --results " + (dir_ / "pred" / "results.json").string());
  EXPECT_EQ(check.exit_code, 0) << check.output;

  // A single image works too.
  const testing::CliRun one = run_cli("predict --weights " + weights + " --input " +
                                      (data_->root() / "val" / "000000.png").string() + " --out " +
                                      (dir_ / "one").string() + " --no-overlays");
  EXPECT_EQ(one.exit_code, 0) << one.output;
  EXPECT_NE(one.output.find("on 1 images"), std::string::npos) << one.output;

  // test: the stats it prints are the stats `eval` computes from the results it wrote.
  const std::string gt = (data_->root() / "val.json").string();
  const testing::CliRun tested =
      run_cli("test --weights " + weights + " --gt " + gt + " --images " +
              (data_->root() / "val").string() + " --json --out " + (dir_ / "r.json").string());
  ASSERT_EQ(tested.exit_code, 0) << tested.output;
  const testing::CliRun segm =
      run_cli("eval --gt " + gt + " --results " + (dir_ / "r.json").string() + " --json");
  ASSERT_EQ(segm.exit_code, 0) << segm.output;
  const auto stats_of = [](const std::string& text, const std::string& after) {
    const std::size_t at = text.find("\"stats\":[", text.find(after));
    return text.substr(at, text.find(']', at) - at);
  };
  EXPECT_EQ(stats_of(tested.output, "\"segm\""), stats_of(segm.output, "\"iou_type\""));

  // --mask-thr: a higher cut keeps the same detections with never a pixel more. (This tiny
  // model's masks are faint: cut at 0.01 and at 0.6.)
  const auto test_with_cut = [&](const std::string& cut, const std::string& out) {
    const testing::CliRun cut_run =
        run_cli("test --weights " + weights + " --gt " + gt + " --images " +
                (data_->root() / "val").string() + " --mask-thr " + cut + " --out " +
                (dir_ / out).string());
    EXPECT_EQ(cut_run.exit_code, 0) << cut_run.output;
  };
  test_with_cut("0.01", "r_low.json");
  test_with_cut("0.6", "r_high.json");
  const CocoDataset truth = CocoDataset::load(gt);
  const CocoResults loose = CocoResults::load(dir_ / "r_low.json", truth);
  const CocoResults tight = CocoResults::load(dir_ / "r_high.json", truth);
  ASSERT_EQ(loose.size(), tight.size());
  ASSERT_GT(loose.size(), 0u);
  std::uint64_t loose_pixels = 0, tight_pixels = 0;
  for (std::size_t i = 0; i < loose.size(); ++i) {
    EXPECT_EQ(loose.detections()[i].score, tight.detections()[i].score) << i;
    const std::uint64_t a = rle_area(loose.mask(i)), b = rle_area(tight.mask(i));
    EXPECT_LE(b, a) << i;
    loose_pixels += a;
    tight_pixels += b;
  }
  EXPECT_LT(tight_pixels, loose_pixels);
  for (const char* bad : {"0", "1", "1.5", "x"}) {
    const testing::CliRun refused =
        run_cli("test --weights " + weights + " --gt " + gt + " --images " +
                (data_->root() / "val").string() + " --mask-thr " + bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
    EXPECT_NE(refused.output.find("--mask-thr"), std::string::npos) << refused.output;
  }

  // --mask-quality-scoring on: the same detections (one per box), each score no higher than
  // the peak's; anything but on/off is refused by name.
  const testing::CliRun rescored =
      run_cli("test --weights " + weights + " --gt " + gt + " --images " +
              (data_->root() / "val").string() + " --mask-thr 0.01 --mask-quality-scoring on" +
              " --out " + (dir_ / "r_rescored.json").string());
  ASSERT_EQ(rescored.exit_code, 0) << rescored.output;
  const CocoResults by_quality = CocoResults::load(dir_ / "r_rescored.json", truth);
  ASSERT_EQ(by_quality.size(), loose.size());
  double peak_sum = 0, rescored_sum = 0;
  for (const CocoDetection& d : loose.detections()) peak_sum += d.score;
  for (const CocoDetection& d : by_quality.detections()) rescored_sum += d.score;
  EXPECT_LT(rescored_sum, peak_sum);
  const testing::CliRun bad_switch =
      run_cli("test --weights " + weights + " --gt " + gt + " --images " +
              (data_->root() / "val").string() + " --mask-quality-scoring maybe");
  EXPECT_EQ(bad_switch.exit_code, 2) << bad_switch.output;
  EXPECT_NE(bad_switch.output.find("--mask-quality-scoring"), std::string::npos)
      << bad_switch.output;

  // --flip-test on: the network also sees each mirrored image; the command works end to end
  // and its detections differ from the single pass's (other scores).
  const testing::CliRun flip_tested =
      run_cli("test --weights " + weights + " --gt " + gt + " --images " +
              (data_->root() / "val").string() + " --mask-thr 0.01 --flip-test on --out " +
              (dir_ / "r_flip.json").string());
  ASSERT_EQ(flip_tested.exit_code, 0) << flip_tested.output;
  const CocoResults by_flip = CocoResults::load(dir_ / "r_flip.json", truth);
  ASSERT_GT(by_flip.size(), 0u);
  double flip_sum = 0;
  for (const CocoDetection& d : by_flip.detections()) flip_sum += d.score;
  EXPECT_NE(flip_sum, peak_sum);
  const testing::CliRun bad_flip =
      run_cli("test --weights " + weights + " --gt " + gt + " --images " +
              (data_->root() / "val").string() + " --flip-test yes");
  EXPECT_EQ(bad_flip.exit_code, 2) << bad_flip.output;
  EXPECT_NE(bad_flip.output.find("--flip-test"), std::string::npos) << bad_flip.output;

  // One image at a time (video frames, the Python package) predicts what the set path does.
  {
    const TrainedModel model = load_trained_model(weights, torch::kCPU);
    const auto files = list_image_files(data_->root() / "val");
    const auto set = open_image_files(files, model.categories);
    InferenceOptions options;
    options.test = model.config.test;
    options.test.score_threshold = 0;
    std::vector<std::vector<Instance>> by_set(files.size());
    options.on_image = [&](std::size_t i, const std::vector<Instance>& found) {
      by_set[i] = found;
    };
    predict_set(*model.model, set, options);
    for (std::size_t i = 0; i < files.size(); ++i) {
      const std::vector<Instance> alone =
          predict_image(*model.model, cv::imread(files[i].string(), cv::IMREAD_COLOR), options);
      ASSERT_EQ(alone.size(), by_set[i].size()) << files[i];
      for (std::size_t k = 0; k < alone.size(); ++k) {
        EXPECT_EQ(alone[k].class_index, by_set[i][k].class_index);
        EXPECT_NEAR(alone[k].score, by_set[i][k].score, 1e-4);
        EXPECT_NEAR(alone[k].box.x0, by_set[i][k].box.x0, 1e-3);
        EXPECT_NEAR(alone[k].box.y1, by_set[i][k].box.y1, 1e-3);
      }
    }
    EXPECT_NE(testing::error_message_of([&] {
                predict_image(*model.model, cv::Mat(), options);
              }).find("non-empty 8-bit 3-channel"),
              std::string::npos);
  }

  // A video: 6 frames (the validation pictures, repeated) in, an annotated video of 6 frames
  // and one JSON line per frame out.
  {
    const auto files = list_image_files(data_->root() / "val");
    const cv::Mat first = cv::imread(files[0].string(), cv::IMREAD_COLOR);
    const std::string clip = (dir_ / "clip.avi").string();
    cv::VideoWriter writer(clip, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, first.size());
    ASSERT_TRUE(writer.isOpened());
    for (int i = 0; i < 6; ++i)
      writer.write(cv::imread(files[static_cast<std::size_t>(i) % files.size()].string()));
    writer.release();
    const std::filesystem::path out = dir_ / "video";
    const testing::CliRun video = run_cli("predict --weights " + weights + " --input " + clip +
                                          " --out " + out.string() + " --score-thr 0");
    ASSERT_EQ(video.exit_code, 0) << video.output;
    EXPECT_NE(video.output.find("in 6 frames of"), std::string::npos) << video.output;
    EXPECT_NE(video.output.find("frames/s end to end"), std::string::npos) << video.output;
    const std::string lines = testing::read_text(out / "detections.jsonl");
    EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 6) << lines;
    EXPECT_EQ(lines.rfind("{\"frame\":0,", 0), 0u) << lines;
    EXPECT_NE(lines.find("{\"frame\":5,"), std::string::npos) << lines;
    EXPECT_NE(lines.find("\"counts\":"), std::string::npos) << lines;
    cv::VideoCapture annotated((out / "annotated.avi").string());
    ASSERT_TRUE(annotated.isOpened());
    // Small frames are drawn enlarged, as picture overlays are.
    const int scale = display_scale(first.rows, first.cols, DrawOptions{});
    int frames = 0;
    for (cv::Mat frame; annotated.read(frame) && !frame.empty(); ++frames)
      EXPECT_EQ(frame.size(), cv::Size(first.cols * scale, first.rows * scale));
    EXPECT_EQ(frames, 6);
    for (const auto& entry : std::filesystem::directory_iterator(out))
      EXPECT_EQ(entry.path().string().find("partial"), std::string::npos) << entry.path();
    const testing::CliRun two = run_cli("predict --weights " + weights + " --input " + clip +
                                        " --out " + (dir_ / "two").string() + " --max-frames 2");
    ASSERT_EQ(two.exit_code, 0) << two.output;
    const std::string two_lines = testing::read_text(dir_ / "two" / "detections.jsonl");
    EXPECT_EQ(std::count(two_lines.begin(), two_lines.end(), '\n'), 2) << two_lines;

    testing::write_text(dir_ / "broken.mp4", "not a video at all");
    const testing::CliRun broken =
        run_cli("predict --weights " + weights + " --input " + (dir_ / "broken.mp4").string());
    EXPECT_EQ(broken.exit_code, 1) << broken.output;
    EXPECT_NE(broken.output.find("broken.mp4"), std::string::npos) << broken.output;
    const testing::CliRun no_camera =
        run_cli("predict --weights " + weights + " --input 97 --out " + (dir_ / "cam").string());
    EXPECT_EQ(no_camera.exit_code, 1) << no_camera.output;
    EXPECT_NE(no_camera.output.find("camera 97"), std::string::npos) << no_camera.output;
  }

  // export-weights: the checkpoint's tensors as a state_dict, whole or the backbone only.
  const std::string pth = (dir_ / "model.pth").string();
  const testing::CliRun exported = run_cli("export-weights --weights " + weights + " --out " + pth);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const TrainedModel trained_model = load_trained_model(weights, torch::kCPU);
  const StateDict file = read_state_dict(pth);
  const StateDict model_tensors = state_dict_of(*trained_model.model);
  ASSERT_EQ(file.size(), model_tensors.size());
  for (std::size_t i = 0; i < file.size(); ++i) {
    EXPECT_EQ(file[i].first, model_tensors[i].first);
    EXPECT_TRUE(torch::equal(file[i].second, model_tensors[i].second)) << file[i].first;
  }
  const testing::CliRun backbone_only =
      run_cli("export-weights --weights " + weights + " --out " + (dir_ / "backbone.pth").string() +
              " --backbone-only");
  ASSERT_EQ(backbone_only.exit_code, 0) << backbone_only.output;
  const StateDict backbone = read_state_dict(dir_ / "backbone.pth");
  EXPECT_EQ(backbone.size(), state_dict_of(trained_model.model->backbone_module()).size());
  for (const auto& [name, tensor] : backbone) EXPECT_EQ(name.rfind("backbone.", 0), 0u) << name;
  const testing::CliRun missing =
      run_cli("export-weights --weights " + (dir_ / "none.pt").string() + " --out " + pth);
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("none.pt"), std::string::npos) << missing.output;
}

TEST_F(CliTrainTest, BadInputsAreRefusedByName) {
  testing::write_text(dir_ / "broken.pt", "PK\x03\x04 not really a zip");
  const testing::CliRun broken = run_cli("predict --weights " + (dir_ / "broken.pt").string() +
                                         " --input " + (data_->root() / "val").string());
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_NE(broken.output.find("broken.pt: not a readable checkpoint"), std::string::npos)
      << broken.output;

  const testing::CliRun typo = run_cli("train --config " + config_path() + " --out " +
                                       (dir_ / "x").string() + " --set solver.lrate=1");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.output.find("unknown key 'solver.lrate'"), std::string::npos) << typo.output;

  std::filesystem::create_directories(dir_ / "no_images");
  const testing::CliRun empty = run_cli("predict --weights " + (dir_ / "broken.pt").string() +
                                        " --input " + (dir_ / "no_images").string());
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_NE(empty.output.find("no_images: holds no image files"), std::string::npos)
      << empty.output;

  const testing::CliRun keys = run_cli("train --list-keys");
  EXPECT_EQ(keys.exit_code, 0);
  EXPECT_NE(keys.output.find("solver.clip_grad_norm"), std::string::npos) << keys.output;
}

TEST(CliBench, EveryMethodReportsItsStagesModelOnlyAndEndToEndTimes) {
  for (const std::string method : {"centermask", "polarmask", "centermask_fcos"}) {
    const testing::CliRun run =
        run_cli("bench --meta-arch " + method +
                " --backbone resnet18 --set model.backbone_width=8 --classes 3 --size 128 "
                "--iters 2 --warmup 0 --json");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    for (const char* field : {"\"end_to_end_ms\"", "\"model_ms\"", "\"end_to_end_fps\"",
                              "\"model_fps\"", "\"peak_rss_mib\"", "\"preprocess\"", "\"backbone\"",
                              "\"heads\"", "\"decode\"", "\"assembly\""})
      EXPECT_NE(run.output.find(field), std::string::npos) << method << ": " << run.output;
    // The FCOS-based methods' NMS is its own stage; CenterMask's peaks need none.
    EXPECT_EQ(run.output.find("\"nms\"") != std::string::npos, method != "centermask")
        << run.output;
  }
  const testing::CliRun table = run_cli(
      "bench --backbone resnet18 --set model.backbone_width=8 --size 64 --iters 1 --warmup 0");
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("end-to-end"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("FPS"), std::string::npos) << table.output;
}

TEST(CliBench, BadSizesPrecisionsAndDevicesAreRefusedByName) {
  const std::string base = "bench --backbone resnet18 --set model.backbone_width=8 --iters 1 ";
  const testing::CliRun size = run_cli(base + "--size 100");
  EXPECT_EQ(size.exit_code, 1);
  EXPECT_NE(size.output.find("--size 100"), std::string::npos) << size.output;
  EXPECT_NE(size.output.find("multiple of 32"), std::string::npos) << size.output;
  const testing::CliRun half = run_cli(base + "--size 64 --dtype fp16");
  EXPECT_EQ(half.exit_code, 1);
  EXPECT_NE(half.output.find("--dtype fp16"), std::string::npos) << half.output;
  const testing::CliRun unknown = run_cli(base + "--size 64 --dtype int4");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("--dtype int4"), std::string::npos) << unknown.output;
  if (!torch::cuda::is_available()) {
    const testing::CliRun cuda = run_cli(base + "--size 64 --device cuda");
    EXPECT_EQ(cuda.exit_code, 1);
    EXPECT_NE(cuda.output.find("no CUDA"), std::string::npos) << cuda.output;
  }
}

}  // namespace
}  // namespace centermask
