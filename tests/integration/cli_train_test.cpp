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
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <sstream>
#include <thread>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/modeling/backbone_weights.h"
#include "centermask/modeling/methods/centermask/centermask.h"
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

  // Into a folder that holds that prediction: refused by name, unless --overwrite, which
  // replaces the earlier files (the overlays too) instead of mixing two runs.
  ASSERT_EQ(run_cli("predict --weights " + weights + " --input " +
                    (data_->root() / "val").string() + " --out " + (dir_ / "again").string())
                .exit_code,
            0);
  const std::string again_command = "predict --weights " + weights + " --input " +
                                    (data_->root() / "val" / "000000.png").string() + " --out " +
                                    (dir_ / "again").string();
  const testing::CliRun again = run_cli(again_command);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("holds an earlier prediction"), std::string::npos) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  const testing::CliRun replaced = run_cli(again_command + " --overwrite");
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  std::size_t pictures_now = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "again" / "overlays"))
    pictures_now += entry.path().extension() == ".png";
  EXPECT_EQ(pictures_now, 1u) << "the earlier overlays are gone";

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
  EXPECT_NE(tested.output.find("\"num_images_skipped\":0"), std::string::npos) << tested.output;
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

  // --flip-test on: each image's outputs are averaged with its mirror's, mirrored back. That
  // average is mirror-symmetric by construction, whatever the weights: the flip-tested
  // detections of the mirrored pictures are those of the pictures, mirrored (boxes x → W − x,
  // the x offset 1 − x, masks flipped). A single pass of an untrained network is not, which
  // shows the check can tell the two apart.
  {
    std::filesystem::create_directories(dir_ / "mirrored");
    for (const auto& file : list_image_files(data_->root() / "val")) {
      cv::Mat mirrored;
      cv::flip(cv::imread(file.string(), cv::IMREAD_COLOR), mirrored, 1);
      cv::imwrite((dir_ / "mirrored" / file.filename()).string(), mirrored);
    }
    const auto predicted_with = [&](const std::string& input, const std::string& flip,
                                    const std::string& out) {
      const testing::CliRun predicted_run =
          run_cli("predict --weights " + weights + " --input " + input + " --out " +
                  (dir_ / out).string() + " --score-thr 0 --no-overlays --flip-test " + flip);
      EXPECT_EQ(predicted_run.exit_code, 0) << predicted_run.output;
      const CocoDataset listed = CocoDataset::load(dir_ / out / "images.json");
      const CocoResults results = CocoResults::load(dir_ / out / "results.json", listed);
      // file name → its detections, with each mask decoded
      std::map<std::string, std::vector<std::pair<CocoDetection, std::vector<std::uint8_t>>>>
          by_file;
      for (std::size_t i = 0; i < results.size(); ++i) {
        const CocoDetection& d = results.detections()[i];
        const Rle rle = results.mask(i);
        std::vector<std::uint8_t> bitmap(static_cast<std::size_t>(rle.height) * rle.width);
        rle_decode(rle, bitmap.data(), static_cast<std::size_t>(rle.width));
        // images.json names each picture by its path: key by the file's name.
        const std::string name =
            std::filesystem::path(
                listed.images()[static_cast<std::size_t>(d.image_index)].file_name)
                .filename();
        by_file[name].emplace_back(d, std::move(bitmap));
      }
      return by_file;
    };
    const auto straight_flip = predicted_with((data_->root() / "val").string(), "on", "flip_a");
    const auto mirrored_flip = predicted_with((dir_ / "mirrored").string(), "on", "flip_b");
    const auto straight_single =
        predicted_with((data_->root() / "val").string(), "off", "single_a");
    const auto mirrored_single = predicted_with((dir_ / "mirrored").string(), "off", "single_b");
    ASSERT_EQ(straight_flip.size(), 4u);
    const int side = 64;  // the pictures' width
    double single_score_gap = 0;
    for (const auto& [file, detections] : straight_flip) {
      SCOPED_TRACE(file);
      const auto& mirrored = mirrored_flip.at(file);
      ASSERT_EQ(mirrored.size(), detections.size());
      for (std::size_t k = 0; k < detections.size(); ++k) {
        const auto& [a, mask_a] = detections[k];
        const auto& [b, mask_b] = mirrored[k];
        EXPECT_EQ(a.category_id, b.category_id) << k;
        EXPECT_NEAR(a.score, b.score, 1e-5) << k;
        EXPECT_NEAR(a.bbox.x, side - (b.bbox.x + b.bbox.width), 1e-3) << k;
        EXPECT_NEAR(a.bbox.y, b.bbox.y, 1e-3) << k;
        EXPECT_NEAR(a.bbox.width, b.bbox.width, 1e-3) << k;
        // Column x of one mask is column W − 1 − x of the other. Pixels on a probability
        // within rounding of the cut may differ.
        ASSERT_EQ(mask_a.size(), static_cast<std::size_t>(side * side));
        std::size_t differing = 0, on = 0;
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x) {
            const std::uint8_t pa = mask_a[static_cast<std::size_t>(y * side + x)];
            const std::uint8_t pb = mask_b[static_cast<std::size_t>(y * side + side - 1 - x)];
            differing += pa != pb;
            on += pa;
          }
        EXPECT_LE(differing, 2 + on / 100) << k;
      }
      const auto& single = straight_single.at(file);
      const auto& single_mirrored = mirrored_single.at(file);
      for (std::size_t k = 0; k < std::min(single.size(), single_mirrored.size()); ++k)
        single_score_gap = std::max(
            single_score_gap, std::abs(single[k].first.score - single_mirrored[k].first.score));
    }
    EXPECT_GT(single_score_gap, 1e-3) << "the single pass is mirror-symmetric too: the check "
                                         "above would not see a broken flip test";
  }
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

  // A video: 6 frames (the validation pictures, repeated) in a lossless codec, an annotated
  // video of 6 frames and one JSON line per frame out, whose detections are `predict`'s on the
  // same pictures.
  {
    const auto files = list_image_files(data_->root() / "val");
    const cv::Mat first = cv::imread(files[0].string(), cv::IMREAD_COLOR);
    const std::string clip = (dir_ / "clip.mkv").string();
    {
      // FFV1 keeps every pixel (checked below), so each frame is its picture exactly.
      cv::VideoWriter writer(clip, cv::VideoWriter::fourcc('F', 'F', 'V', '1'), 10, first.size());
      ASSERT_TRUE(writer.isOpened()) << "OpenCV cannot write FFV1 video here";
      for (int i = 0; i < 6; ++i)
        writer.write(cv::imread(files[static_cast<std::size_t>(i) % files.size()].string()));
    }
    {
      cv::VideoCapture source(clip);
      ASSERT_TRUE(source.isOpened());
      cv::Mat frame;
      for (std::size_t i = 0; i < 6 && source.read(frame); ++i) {
        const cv::Mat picture = cv::imread(files[i % files.size()].string(), cv::IMREAD_COLOR);
        ASSERT_EQ(frame.size(), picture.size());
        ASSERT_EQ(cv::norm(frame, picture, cv::NORM_INF), 0.0)
            << "frame " << i << " is not lossless";
      }
    }
    const std::filesystem::path out = dir_ / "video";
    const testing::CliRun video = run_cli("predict --weights " + weights + " --input " + clip +
                                          " --out " + out.string() + " --score-thr 0");
    ASSERT_EQ(video.exit_code, 0) << video.output;
    EXPECT_NE(video.output.find("in 6 frames of"), std::string::npos) << video.output;
    EXPECT_NE(video.output.find("frames/s end to end"), std::string::npos) << video.output;
    const std::string lines = testing::read_text(out / "detections.jsonl");
    EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 6) << lines;

    // Each frame's detections, read as COCO results of its picture, against `predict` on the
    // pictures (dir_/pred, --score-thr 0 as here): the same detections, to the difference of
    // one image against a batch (the one-at-a-time check above).
    const CocoDataset frames_as = CocoDataset::load(dir_ / "pred" / "images.json");
    const CocoResults by_folder = CocoResults::load(dir_ / "pred" / "results.json", frames_as);
    std::map<std::string, std::int64_t> image_id_of;
    for (const CocoImage& image : frames_as.images())
      image_id_of[std::filesystem::path(image.file_name).filename()] = image.id;
    std::string as_results = "[";
    std::istringstream frames_in(lines);
    std::string line;
    for (std::size_t frame = 0; std::getline(frames_in, line); ++frame) {
      EXPECT_EQ(line.rfind("{\"frame\":" + std::to_string(frame) + ",", 0), 0u) << line;
      const std::int64_t id = image_id_of.at(files[frame % files.size()].filename().string());
      const std::size_t list = line.find("\"detections\":[") + 14;
      const std::string detections = line.substr(list, line.rfind(']') - list);
      // Each detection object gains the picture's image_id.
      std::string tagged;
      for (std::size_t at = 0; at < detections.size(); ++at) {
        tagged += detections[at];
        if (detections[at] == '{' && detections.compare(at + 1, 13, "\"category_id\"") == 0)
          tagged += "\"image_id\":" + std::to_string(id) + ",";
      }
      if (!tagged.empty()) as_results += (as_results.size() > 1 ? "," : "") + tagged;
    }
    as_results += "]";
    const CocoResults by_video = CocoResults::parse(as_results, "detections.jsonl", frames_as);
    std::map<std::int64_t, std::vector<const CocoDetection*>> folder_of, video_of;
    for (const CocoDetection& d : by_folder.detections()) folder_of[d.image_id].push_back(&d);
    for (const CocoDetection& d : by_video.detections()) video_of[d.image_id].push_back(&d);
    ASSERT_GT(by_folder.size(), 0u);
    // Frames 4 and 5 repeat pictures 0 and 1: their detections count twice.
    EXPECT_EQ(by_video.size(), by_folder.size() +
                                   folder_of[image_id_of.at(files[0].filename().string())].size() +
                                   folder_of[image_id_of.at(files[1].filename().string())].size());
    for (const auto& [id, from_video] : video_of) {
      const auto& from_folder = folder_of[id];
      ASSERT_EQ(from_video.size() % from_folder.size(), 0u) << "image " << id;
      for (std::size_t k = 0; k < from_video.size(); ++k) {
        const CocoDetection& a = *from_video[k];
        const CocoDetection& b = *from_folder[k % from_folder.size()];
        EXPECT_EQ(a.category_id, b.category_id) << "image " << id << " detection " << k;
        EXPECT_NEAR(a.score, b.score, 1e-4) << "image " << id << " detection " << k;
        EXPECT_NEAR(a.bbox.x, b.bbox.x, 1e-2) << "image " << id << " detection " << k;
        EXPECT_NEAR(a.bbox.height, b.bbox.height, 1e-2) << "image " << id << " detection " << k;
        const std::uint64_t area_a =
            rle_area(by_video.mask(static_cast<std::size_t>(&a - by_video.detections().data())));
        const std::uint64_t area_b =
            rle_area(by_folder.mask(static_cast<std::size_t>(&b - by_folder.detections().data())));
        EXPECT_NEAR(static_cast<double>(area_a), static_cast<double>(area_b),
                    0.01 * static_cast<double>(area_b) + 1)
            << "image " << id << " detection " << k;
      }
    }
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

// `centermask ablate`: two of CenterMask's variants trained for an epoch each; the table lists
// them in order with the figures of each variant's own run (its metrics.json), each run was
// trained with its variant's switches, a rerun reuses the finished runs and prints the same
// table, and an unknown variant is refused with the method's list.
TEST_F(CliTrainTest, AblateTrainsEachVariantAndTabulatesItsOwnRunsFigures) {
  const std::filesystem::path out = dir_ / "ablation";
  const std::string command = "ablate --config " + config_path() + " --out " + out.string() +
                              " --only full,shape_only --set solver.epochs=1";
  const testing::CliRun ablated = run_cli(command);
  ASSERT_EQ(ablated.exit_code, 0) << ablated.output;
  const std::string table = testing::read_text(out / "ablation.md");
  EXPECT_NE(ablated.output.find(table), std::string::npos) << ablated.output;

  std::istringstream rows(table);
  std::vector<std::string> lines;
  for (std::string line; std::getline(rows, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << table;  // header, rule, two variants
  for (const auto& [row, variant] : {std::pair{2, "full"}, std::pair{3, "shape_only"}}) {
    SCOPED_TRACE(variant);
    const std::filesystem::path run = out / variant;
    // The row: | name | mask AP | AP50 | AP75 | box AP | mask loss | iterations |
    std::vector<std::string> cells;
    std::istringstream cells_in(lines[static_cast<std::size_t>(row)]);
    for (std::string cell; std::getline(cells_in, cell, '|');) {
      cell.erase(0, cell.find_first_not_of(' '));
      cell.erase(cell.find_last_not_of(' ') + 1);
      if (!cell.empty()) cells.push_back(cell);
    }
    ASSERT_EQ(cells.size(), 7u) << lines[static_cast<std::size_t>(row)];
    EXPECT_EQ(cells[0], variant);
    EXPECT_EQ(cells[6], "3");  // one epoch of 12 images in batches of 4
    const std::string metrics = testing::read_text(run / "metrics.json");
    const auto stat = [&](const std::string& section, const std::string& name) {
      const std::size_t at = metrics.find("\"" + name + "\":", metrics.find("\"" + section + "\""));
      return std::stod(metrics.substr(at + name.size() + 3));
    };
    EXPECT_NEAR(std::stod(cells[1]), stat("segm", "AP"), 5e-5);
    EXPECT_NEAR(std::stod(cells[2]), stat("segm", "AP50"), 5e-5);
    EXPECT_NEAR(std::stod(cells[3]), stat("segm", "AP75"), 5e-5);
    EXPECT_NEAR(std::stod(cells[4]), stat("bbox", "AP"), 5e-5);
    // The variant's switches are what its run trained with.
    const TrainConfig trained = load_run_config(run, {});
    EXPECT_EQ(to_string(trained.model.method_options<CenterMaskOptions>().assembly),
              std::string(variant) == "full" ? "shape_times_saliency" : "shape_only");
  }

  const testing::CliRun again = run_cli(command);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("finished earlier"), std::string::npos) << again.output;
  EXPECT_EQ(testing::read_text(out / "ablation.md"), table);

  const testing::CliRun unknown = run_cli("ablate --config " + config_path() + " --out " +
                                          (dir_ / "other").string() + " --only full,no_such");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("has no variant 'no_such'"), std::string::npos) << unknown.output;
  EXPECT_NE(unknown.output.find("saliency_only"), std::string::npos) << unknown.output;
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
