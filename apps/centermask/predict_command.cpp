// `centermask predict`: runs a trained model on an image or a folder of images and writes
// COCO results JSON plus overlay pictures; on a video file or a camera, an annotated video and
// a JSON-lines file of each frame's detections. The checkpoint carries its config and
// categories, so no config file is needed.

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"
#include "centermask/data/image_io.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/structures/rle.h"
#include "centermask/visualization/draw_instances.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct PredictOptions {
  ModelRunOptions model;
  std::string input;
  std::string out_dir = "predictions";
  double score_threshold = 0.3;
  bool overlays = true;
  std::int64_t max_frames = 0;  ///< video: stop after this many frames (0 = the whole video)
  bool overwrite = false;       ///< replace an earlier prediction in out_dir
};

// What predict writes into its folder, for pictures and for video.
const char* const kPredictionOutputs[] = {"results.json", "images.json", "overlays",
                                          "annotated.avi", "detections.jsonl"};

// As `train` does with a run folder: a folder holding an earlier prediction is refused
// unless --overwrite, which removes that prediction's files first (so that the folder never
// mixes two runs' overlays). Other files in the folder are left alone.
void prepare_output_folder(const PredictOptions& o) {
  const std::filesystem::path out_dir = o.out_dir;
  std::vector<std::filesystem::path> earlier;
  for (const char* name : kPredictionOutputs)
    if (std::filesystem::exists(out_dir / name)) earlier.push_back(out_dir / name);
  if (earlier.empty()) return;
  if (!o.overwrite)
    throw InputError(fmt::format(
        "{}: holds an earlier prediction ({}); pass --overwrite to replace it, or another --out",
        o.out_dir, earlier.front().filename().string()));
  for (const std::filesystem::path& path : earlier) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) throw InputError(fmt::format("{}: cannot remove it: {}", path.string(), ec.message()));
  }
}

// Ctrl-C during a video or camera run ends the stream; the files written so far are closed
// and renamed into place, as at the end of a video.
std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

/// The model with the command line's settings: the same for pictures and video.
Predictor make_predictor(const PredictOptions& o) {
  PredictorOptions options = predictor_options(o.model);
  options.score_threshold = o.score_threshold;
  return Predictor(o.model.weights, options);
}

bool is_camera_index(const std::string& input) {
  return !input.empty() && input.size() <= 3 &&
         std::all_of(input.begin(), input.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_video_file(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* known :
       {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".mjpeg"})
    if (extension == known) return true;
  return false;
}

/// One frame's detections as a JSON line: boxes [x, y, w, h] and masks as COCO's compressed
/// RLE in the frame's pixels, as results.json has them.
std::string frame_json_line(std::int64_t frame, double seconds, const cv::Mat& image,
                            const std::vector<Instance>& instances,
                            const std::vector<CocoCategory>& categories) {
  std::string line;
  json::Writer w(line);
  w.begin_object().key("frame").value(frame).key("time_s").value(seconds);
  w.key("detections").begin_array();
  for (const Instance& d : instances) {
    const CocoCategory& category = categories.at(static_cast<std::size_t>(d.class_index));
    w.begin_object().key("category_id").value(category.id);
    w.key("category_name").value(category.name).key("score").value(static_cast<double>(d.score));
    w.key("bbox").begin_array().value(d.box.x0).value(d.box.y0).value(d.box.width());
    w.value(d.box.height()).end_array();
    if (d.has_mask) {
      const Rle rle = patch_to_rle(d.mask, image.rows, image.cols);
      w.key("segmentation").begin_object().key("size").begin_array().value(image.rows);
      w.value(image.cols).end_array().key("counts").value(rle_to_string(rle)).end_object();
    }
    w.end_object();
  }
  w.end_array().end_object();
  return line + "\n";
}

// While alive, the process's standard error goes nowhere: FFmpeg and GStreamer print their own
// lines on a file they cannot open, before and beside the one error of ours that names it.
class SilencedStderr {
 public:
  SilencedStderr() {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null >= 0) ::dup2(null, STDERR_FILENO);
    if (null >= 0) ::close(null);
  }
  ~SilencedStderr() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
  }
  SilencedStderr(const SilencedStderr&) = delete;
  SilencedStderr& operator=(const SilencedStderr&) = delete;

 private:
  int saved_ = -1;
};

/// Video or camera: every frame through predict_image, drawn into an annotated video, its
/// detections one JSON line per frame. Both files are written under temporary names and
/// renamed when the stream ends, so an interrupted run leaves no half file under the final
/// names.
int run_predict_video(const PredictOptions& o) {
  cv::VideoCapture capture;
  const bool camera = is_camera_index(o.input);
  const std::string source = camera ? "camera " + o.input : o.input;
  if (camera) {
    capture.open(std::stoi(o.input));
  } else {
    if (!std::filesystem::is_regular_file(o.input))
      throw InputError(o.input + ": no such video file");
    // FFmpeg first (the backend for files), then whatever else OpenCV has, quietly: what
    // fails is said once below.
    const SilencedStderr quiet;
    if (!capture.open(o.input, cv::CAP_FFMPEG)) capture.open(o.input, cv::CAP_ANY);
  }
  if (!capture.isOpened())
    throw InputError(source + ": OpenCV's VideoCapture cannot open it (" +
                     (camera ? std::string("no such camera, or it is busy")
                             : std::string("not a video, or a codec this OpenCV lacks")) +
                     ")");
  cv::Mat frame;
  if (!capture.read(frame) || frame.empty()) throw InputError(source + ": holds no readable frame");
  Predictor predictor = make_predictor(o);

  const std::filesystem::path out_dir = o.out_dir;
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw InputError(o.out_dir + ": cannot create the folder: " + ec.message());
  const std::filesystem::path video_path = out_dir / "annotated.avi";
  const std::filesystem::path lines_path = out_dir / "detections.jsonl";
  // VideoWriter picks the container by the extension: the temporary name keeps ".avi".
  const std::filesystem::path video_partial = out_dir / "annotated.partial.avi";
  const std::filesystem::path lines_partial = out_dir / "detections.jsonl.partial";
  double fps = capture.get(cv::CAP_PROP_FPS);
  if (!(fps > 0 && fps < 1000)) fps = 30;  // cameras and some files report none
  const auto total = static_cast<std::int64_t>(capture.get(cv::CAP_PROP_FRAME_COUNT));
  DrawOptions draw;
  draw.draw_scores = true;
  // Small frames are drawn enlarged (as overlays of small images are): the video has the drawn
  // size, or the writer would drop every frame.
  const int scale = display_scale(frame.rows, frame.cols, draw);
  cv::VideoWriter writer;
  if (o.overlays &&
      !writer.open(video_partial.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps,
                   cv::Size(frame.cols * scale, frame.rows * scale)))
    throw InputError(video_path.string() +
                     ": OpenCV's VideoWriter cannot write Motion JPEG AVI here");
  std::ofstream lines(lines_partial, std::ios::trunc);
  if (!lines) throw InputError(lines_partial.string() + ": cannot write");

  const std::vector<std::string> class_names = predictor.class_names();

  stop_requested = false;
  const auto previous_handler = std::signal(SIGINT, request_stop);
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  std::int64_t frames = 0, detections = 0;
  const auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  do {
    if (frame.channels() == 1) cv::cvtColor(frame, frame, cv::COLOR_GRAY2BGR);
    if (frame.channels() == 4) cv::cvtColor(frame, frame, cv::COLOR_BGRA2BGR);
    const std::vector<Instance> instances = predictor.predict(frame);
    detections += static_cast<std::int64_t>(instances.size());
    lines << frame_json_line(frames, static_cast<double>(frames) / fps, frame, instances,
                             predictor.categories());
    if (o.overlays) writer.write(draw_instances(frame, instances, class_names, draw));
    ++frames;
    if (seconds_since(last_report) >= 1.0) {
      last_report = std::chrono::steady_clock::now();
      std::fprintf(stderr, "\rframe %lld%s  %.1f frames/s   ", static_cast<long long>(frames),
                   total > 0 ? fmt::format("/{}", total).c_str() : "",
                   static_cast<double>(frames) / seconds_since(start));
    }
  } while (!stop_requested && (o.max_frames <= 0 || frames < o.max_frames) && capture.read(frame) &&
           !frame.empty());
  std::signal(SIGINT, previous_handler);
  const double seconds = seconds_since(start);
  writer.release();
  lines.close();
  if (!lines) throw InputError(lines_partial.string() + ": cannot write (disk full?)");
  std::filesystem::rename(lines_partial, lines_path);
  if (o.overlays) std::filesystem::rename(video_partial, video_path);
  std::fprintf(stderr, "\r");
  std::printf(
      "%lld detections with score >= %.2f in %lld frames of %s (%.1f frames/s end to "
      "end)\n",
      static_cast<long long>(detections), o.score_threshold, static_cast<long long>(frames),
      source.c_str(), seconds > 0 ? static_cast<double>(frames) / seconds : 0.0);
  std::printf("detections: %s (one JSON line per frame)\n", lines_path.c_str());
  if (o.overlays) std::printf("video: %s\n", video_path.c_str());
  return 0;
}

int run_predict(const PredictOptions& o) {
  configure_runtime(o.model.threads);
  prepare_output_folder(o);
  if (is_camera_index(o.input) || is_video_file(o.input)) return run_predict_video(o);
  // The inputs first: listing them is cheap, loading the model is not.
  const std::vector<std::filesystem::path> files = list_image_files(o.input);
  Predictor predictor = make_predictor(o);
  const auto set = open_image_files(files, predictor.categories());

  const std::filesystem::path out_dir = o.out_dir;
  const std::filesystem::path overlay_dir = out_dir / "overlays";
  std::error_code ec;
  std::filesystem::create_directories(o.overlays ? overlay_dir : out_dir, ec);
  if (ec) throw InputError(o.out_dir + ": cannot create the folder: " + ec.message());

  const std::vector<std::string> class_names = predictor.class_names();
  std::int64_t detections = 0;
  DrawOptions draw;
  draw.draw_scores = true;
  const auto on_image = [&](std::size_t i, const std::vector<Instance>& instances) {
    detections += static_cast<std::int64_t>(instances.size());
    if (!o.overlays) return;
    const LoadedImage image = set->load(i);
    write_image(overlay_dir / (image.path.stem().string() + ".png"),
                draw_instances(image.image, instances, class_names, draw));
  };
  const InferenceRun run = predictor.predict_set(set, on_image);
  run.results.save(out_dir / "results.json");
  // The image ids of results.json: a COCO file with the images and categories (no
  // annotations), so the results can be read back by any COCO tool.
  set->dataset().save(out_dir / "images.json");
  std::printf("%lld detections with score >= %.2f on %lld images (%.1f images/s)\n",
              static_cast<long long>(detections), o.score_threshold,
              static_cast<long long>(run.images),
              run.seconds > 0 ? static_cast<double>(run.images) / run.seconds : 0.0);
  std::printf("results: %s (image ids: %s)\n", (out_dir / "results.json").c_str(),
              (out_dir / "images.json").c_str());
  if (o.overlays) std::printf("pictures: %s/\n", overlay_dir.c_str());
  return 0;
}

}  // namespace

CommandRunner add_predict_command(CLI::App& app) {
  auto options = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "run a trained model on images: COCO results JSON and overlay pictures");
  add_model_run_options(cmd, &options->model);
  cmd->add_option("--input", options->input,
                  "an image, a folder of images, a video file (.mp4, .avi, .mov, .mkv, ...) or a "
                  "camera index (0, 1, ...)")
      ->required();
  cmd->add_option("--out", options->out_dir,
                  "output folder (images: results.json, overlays/; video: annotated.avi, "
                  "detections.jsonl)");
  cmd->add_option("--max-frames", options->max_frames,
                  "video or camera: stop after this many frames (default: the whole video; a "
                  "camera runs until Ctrl-C or this count)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--score-thr", options->score_threshold, "keep detections at or above")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("!--no-overlays", options->overlays, "write only results.json");
  cmd->add_flag("--overwrite", options->overwrite,
                "replace an earlier prediction in --out (refused without it)");
  return [options]() { return run_predict(*options); };
}

}  // namespace centermask::cli
