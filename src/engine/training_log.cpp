#include "engine/training_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ostream>
#include <sstream>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_writer.h"

namespace centermask {
namespace {

constexpr const char* kStatNames[12] = {"AP",  "AP50", "AP75",  "APs", "APm", "APl",
                                        "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"};

// The "iter" of a log line, or -1 (lines are written by us, so a plain scan is enough).
std::int64_t line_iteration(const std::string& line) {
  const std::size_t at = line.find("\"iter\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(line.c_str() + at + 7, nullptr, 10);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

const char* coco_stat_name(std::size_t i) { return i < 12 ? kStatNames[i] : "?"; }

std::string format_duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

TrainingLog::TrainingLog(const std::filesystem::path& path, std::int64_t keep_through_iteration,
                         std::ostream* console, bool interactive)
    : path_(path), console_(console), interactive_(interactive) {
  if (path.empty()) return;  // a data-parallel rank other than 0: nothing written
  if (keep_through_iteration >= 0 && std::filesystem::exists(path)) {
    std::istringstream in(read_file(path));
    std::string kept, line;
    while (std::getline(in, line))
      if (!line.empty() && line_iteration(line) <= keep_through_iteration) kept += line + "\n";
    write_file_atomically(path, kept);
  }
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr)
    throw InputError(path.string() + ": cannot open the log: " + std::strerror(errno));
}

TrainingLog::~TrainingLog() {
  end_progress_line();
  if (file_ != nullptr) std::fclose(file_);
}

void TrainingLog::write_line(const std::string& json) {
  if (file_ == nullptr) return;
  if (std::fputs(json.c_str(), file_) < 0 || std::fputc('\n', file_) < 0 || std::fflush(file_) != 0)
    throw InputError(path_.string() + ": cannot write the log: " + std::strerror(errno));
}

void TrainingLog::end_progress_line() {
  if (progress_open_ && console_ != nullptr) *console_ << "\n" << std::flush;
  progress_open_ = false;
}

void TrainingLog::train_period(const TrainPosition& position, const TrainWindow& window,
                               bool has_grad_norm) {
  const double n = static_cast<double>(std::max<std::int64_t>(1, window.steps));
  const double images_per_second =
      window.step_seconds > 0 ? static_cast<double>(window.images) / window.step_seconds : 0;
  std::string line;
  json::Writer w(line);
  w.begin_object();
  w.key("type").value("train");
  w.key("iter").value(position.iteration);
  w.key("epoch").value(position.epoch);
  w.key("lr").value(position.lr);
  const LossTerms loss = window.loss_sum / n;
  w.key("loss").value(loss.total);
  for (const auto& [name, value] : loss.terms) w.key(name).value(value);
  if (has_grad_norm && window.grad_norm_steps > 0)
    w.key("grad_norm").value(window.grad_norm / static_cast<double>(window.grad_norm_steps));
  if (position.loss_scale > 0) {
    w.key("loss_scale").value(position.loss_scale);
    w.key("skipped_steps").value(window.skipped_steps);
  }
  w.key("images_per_s").value(images_per_second);
  w.key("world_size").value(static_cast<std::int64_t>(position.world_size));
  w.key("data_wait_s").value(window.data_wait_seconds);
  w.key("train_seconds").value(position.train_seconds);
  w.key("time").value(now_seconds());
  w.end_object();
  write_line(line);

  if (console_ == nullptr) return;
  const double seconds_per_iter = window.step_seconds / n;
  double eta =
      seconds_per_iter * static_cast<double>(position.total_iterations - position.iteration);
  if (position.time_limit_seconds > 0)
    eta = std::min(eta, std::max(0.0, position.time_limit_seconds - position.train_seconds));
  std::string terms;
  for (const auto& [name, value] : loss.terms)
    terms += fmt::format("{}{} {:.3f}", terms.empty() ? "" : " ", name, value);
  // total_epochs 0: no epoch cap (the time limit ends the run), so no totals to show.
  const bool capped = position.total_epochs > 0;
  const std::string text =
      fmt::format("epoch {:.2f}{}  iter {}{}  loss {:.3f} ({})  lr {:.2e}  {:.1f} img/s  ETA {}",
                  position.epoch, capped ? fmt::format("/{:g}", position.total_epochs) : "",
                  position.iteration, capped ? fmt::format("/{}", position.total_iterations) : "",
                  loss.total, terms, position.lr, images_per_second, format_duration(eta));
  if (interactive_) {
    *console_ << "\r" << text << "\x1b[K" << std::flush;
    progress_open_ = true;
  } else {
    *console_ << text << "\n" << std::flush;
  }
}

void TrainingLog::evaluation(std::int64_t iteration, const CocoEvalResult& segm,
                             const CocoEvalResult& bbox, std::int64_t images, double seconds) {
  std::string line;
  json::Writer w(line);
  w.begin_object();
  w.key("type").value("eval");
  w.key("iter").value(iteration);
  w.key("images").value(images);
  w.key("seconds").value(seconds);
  for (const CocoEvalResult* result : {&segm, &bbox}) {
    w.key(iou_type_name(result->iou_type)).begin_object();
    for (std::size_t i = 0; i < 12; ++i) w.key(kStatNames[i]).value(result->stats[i]);
    w.end_object();
  }
  w.key("time").value(now_seconds());
  w.end_object();
  write_line(line);
  event(fmt::format(
      "evaluation at iteration {}: mask AP {:.4f} (AP50 {:.4f}, AP75 {:.4f}), "
      "box AP {:.4f}, {} images in {:.1f} s",
      iteration, segm.stats[0], segm.stats[1], segm.stats[2], bbox.stats[0], images, seconds));
}

void TrainingLog::event(const std::string& message) {
  std::string line;
  json::Writer w(line);
  w.begin_object().key("type").value("event").key("message").value(message);
  w.key("time").value(now_seconds()).end_object();
  write_line(line);
  if (console_ == nullptr) return;
  end_progress_line();
  *console_ << message << "\n" << std::flush;
}

}  // namespace centermask
