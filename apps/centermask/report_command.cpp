// `centermask report RUN`: one self-contained HTML page about a training run — loss terms and
// learning rate against iterations, mask and box AP against iterations, the final model's AP
// per class, ground truth beside predictions on validation pictures, and the config — written
// to RUN/report.html (temp file + rename). Everything is inline (SVG charts, base64 PNGs).

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/trainer.h"
#include "centermask/visualization/draw_instances.h"
#include "centermask/visualization/report_html.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct ReportOptions {
  std::string run_dir;
  std::string weights;  ///< default: RUN/model_final.pt, else RUN/last.pt
  std::string out;      ///< default: RUN/report.html
  int pictures = 6;
  double score_threshold = 0.3;  ///< predictions drawn (as predict's default)
  bool per_class = true;
  std::string device = "cpu";
  int threads = 0;
};

/// What the run's log.jsonl says, by iteration.
struct RunLog {
  std::map<std::string, std::vector<std::pair<double, double>>> loss_terms;  // "loss" = total
  std::vector<std::pair<double, double>> lr, images_per_s;
  std::map<std::string, std::vector<std::pair<double, double>>> ap;  // "mask AP", "box AP", ...
  std::vector<std::string> events;
};

// Keys of a train line that are not loss terms.
const std::set<std::string> kTrainMetadata = {
    "type",          "iter",         "epoch",      "lr",          "grad_norm",     "loss_scale",
    "skipped_steps", "images_per_s", "world_size", "data_wait_s", "train_seconds", "time"};

RunLog read_run_log(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path.string() + ": cannot read the run's log (is this a run folder?)");
  RunLog log;
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json::Reader reader(line, fmt::format("{} line {}", path.string(), line_number));
    std::string type;
    double iteration = -1;
    std::map<std::string, double> numbers;
    std::map<std::string, double> segm, bbox;
    std::string message;
    reader.begin_object();
    std::string_view key;
    while (reader.next_key(key)) {
      const std::string name(key);
      const json::ValueType value_type = reader.peek();
      if (name == "type" && value_type == json::ValueType::kString) {
        type = std::string(reader.read_string());
      } else if (name == "message" && value_type == json::ValueType::kString) {
        message = std::string(reader.read_string());
      } else if ((name == "segm" || name == "bbox") && value_type == json::ValueType::kObject) {
        std::map<std::string, double>& stats = name == "segm" ? segm : bbox;
        reader.begin_object();
        std::string_view stat;
        while (reader.next_key(stat)) {
          const std::string stat_name(stat);
          if (reader.peek() == json::ValueType::kNumber) {
            stats[stat_name] = reader.read_double();
          } else {
            reader.skip_value();
          }
        }
      } else if (value_type == json::ValueType::kNumber) {
        const double v = reader.read_double();
        if (name == "iter") iteration = v;
        numbers[name] = v;
      } else {
        reader.skip_value();
      }
    }
    if (type == "train" && iteration >= 0) {
      for (const auto& [name, v] : numbers)
        if (kTrainMetadata.count(name) == 0) log.loss_terms[name].emplace_back(iteration, v);
      if (numbers.count("lr")) log.lr.emplace_back(iteration, numbers["lr"]);
      if (numbers.count("images_per_s"))
        log.images_per_s.emplace_back(iteration, numbers["images_per_s"]);
    } else if (type == "eval" && iteration >= 0) {
      for (const auto& [label, stats] : {std::pair{"mask", &segm}, std::pair{"box", &bbox}}) {
        for (const char* stat : {"AP", "AP50", "AP75"})
          if (stats->count(stat))
            log.ap[fmt::format("{} {}", label, stat)].emplace_back(iteration, stats->at(stat));
      }
    } else if (type == "event" && !message.empty()) {
      log.events.push_back(message);
    }
  }
  return log;
}

std::string png_data_url(const cv::Mat& picture) {
  std::vector<std::uint8_t> png;
  cv::imencode(".png", picture, png);
  return "data:image/png;base64," + base64_encode(png);
}

/// Ground truth | predictions for the first `count` validation pictures, each an <img>.
std::string pictures_section(Predictor& predictor, const TrainingSet& set,
                             const std::vector<std::string>& class_names, int count) {
  std::string html;
  DrawOptions truth_draw;
  truth_draw.min_display_side = 320;
  DrawOptions predicted_draw = truth_draw;
  predicted_draw.draw_scores = true;
  const std::size_t n = std::min(set.size(), static_cast<std::size_t>(std::max(0, count)));
  for (std::size_t i = 0; i < n; ++i) {
    const LoadedImage loaded = set.load(i);
    std::vector<Instance> predicted = predictor.predict(loaded.image);
    // Drawn lowest score first, so the most confident masks end on top.
    std::reverse(predicted.begin(), predicted.end());
    const cv::Mat truth = draw_instances(loaded.image, loaded.instances, class_names, truth_draw);
    const cv::Mat prediction = draw_instances(loaded.image, predicted, class_names, predicted_draw);
    cv::Mat picture;
    const cv::Mat gap(truth.rows, 8, CV_8UC3, cv::Scalar(255, 255, 255));
    cv::hconcat(std::vector<cv::Mat>{truth, gap, prediction}, picture);
    html += fmt::format(
        "<figure><img class=\"picture\" alt=\"{0}\" src=\"{1}\"><figcaption>{0}: ground truth "
        "({2} objects) | predictions with score &ge; {3:g} ({4})</figcaption></figure>\n",
        html_escape(loaded.path.filename().string()), png_data_url(picture),
        loaded.instances.size(), predictor.config().test.score_threshold, predicted.size());
  }
  return html;
}

std::string metrics_table(const EvaluationReport& report,
                          const std::vector<CocoCategory>& categories) {
  std::string html = "<table><tr><th>class</th><th>mask AP</th><th>box AP</th></tr>\n";
  const auto mask = report.segm.per_category_ap(), box = report.bbox.per_category_ap();
  const auto name_of = [&](std::int64_t id) {
    for (const CocoCategory& c : categories)
      if (c.id == id) return c.name;
    return std::to_string(id);
  };
  const auto cell = [](double v) { return v < 0 ? std::string("–") : fmt::format("{:.3f}", v); };
  for (std::size_t k = 0; k < mask.size() && k < box.size(); ++k)
    html +=
        fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    html_escape(name_of(mask[k].first)), cell(mask[k].second), cell(box[k].second));
  html += fmt::format(
      "<tr class=\"total\"><td>all ({} images)</td><td>{}</td><td>{}</td></tr>\n</table>\n",
      report.run.images, cell(report.segm.stats[0]), cell(report.bbox.stats[0]));
  return html;
}

int run_report(const ReportOptions& o) {
  const std::filesystem::path run = o.run_dir;
  if (!std::filesystem::is_directory(run))
    throw InputError(o.run_dir + ": not a folder (give a run folder written by centermask train)");
  const RunLog log = read_run_log(run / "log.jsonl");
  const std::string config_text = read_file(run / "config.yaml");
  std::filesystem::path weights = o.weights;
  if (weights.empty())
    weights =
        std::filesystem::exists(run / "model_final.pt") ? run / "model_final.pt" : run / "last.pt";
  const std::filesystem::path out =
      o.out.empty() ? run / "report.html" : std::filesystem::path(o.out);

  std::string body;
  body += fmt::format("<h1>Training report: {}</h1>\n", html_escape(run.string()));
  body += "<h2>Training</h2>\n<div class=\"charts\">\n";
  std::vector<ChartSeries> losses;
  for (const auto& [name, points] : log.loss_terms) losses.push_back({name, points, ""});
  // The total first, in the palette's first colour.
  std::stable_partition(losses.begin(), losses.end(),
                        [](const ChartSeries& s) { return s.name == "loss"; });
  body += svg_line_chart(losses, {"Loss terms (log scale)", "iteration", "loss", 560, 300, true});
  body +=
      svg_line_chart({{"lr", log.lr, ""}}, {"Learning rate", "iteration", "lr", 560, 300, false});
  body += svg_line_chart({{"images/s", log.images_per_s, ""}},
                         {"Training speed", "iteration", "images/s", 560, 300, false});
  std::vector<ChartSeries> ap;
  for (const auto& [name, points] : log.ap) ap.push_back({name, points, ""});
  body += svg_line_chart(ap, {"Validation AP", "iteration", "AP", 560, 300, false});
  body += "</div>\n";

  if (std::filesystem::exists(weights)) {
    configure_runtime(o.threads);
    PredictorOptions predictor_options;
    predictor_options.device = o.device;
    Predictor predictor(weights, predictor_options);
    const DataConfig data = predictor.config().data;
    if (data.val_json.empty() || data.val_images.empty()) {
      body +=
          "<p>The run's config has no validation set (data.val_json): no per-class AP and "
          "no pictures.</p>\n";
    } else {
      const auto set = open_evaluation_set(data.val_json, data.val_images, false);
      const auto class_names = set->class_names();
      if (o.per_class) {
        const EvaluationReport report = predictor.evaluate(set);
        body += fmt::format("<h2>AP per class ({}, {})</h2>\n", html_escape(weights.string()),
                            html_escape(data.val_json));
        body += metrics_table(report, set->dataset().categories());
      }
      if (o.pictures > 0) {
        // The evaluation keeps every detection (AP needs them); a picture shows the confident.
        PredictorOptions drawn;
        drawn.score_threshold = o.score_threshold;
        predictor.set_test_settings(drawn);
        body += "<h2>Validation pictures: ground truth | predictions</h2>\n";
        body += pictures_section(predictor, *set, class_names, o.pictures);
      }
    }
  } else {
    body += fmt::format("<p>No weights ({}): no per-class AP and no pictures.</p>\n",
                        html_escape(weights.string()));
  }
  body += "<h2>Config</h2>\n<pre>" + html_escape(config_text) + "</pre>\n";
  if (!log.events.empty()) {
    body += "<h2>Events</h2>\n<ul>\n";
    for (const std::string& e : log.events) body += "<li>" + html_escape(e) + "</li>\n";
    body += "</ul>\n";
  }
  const std::string page =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" +
      html_escape(run.filename().string()) +
      " — CenterMask training report</title>\n<style>body{font-family:sans-serif;margin:24px;"
      "max-width:1240px}.charts{display:flex;flex-wrap:wrap;gap:12px}table{border-collapse:"
      "collapse}td,th{border:1px solid #ccc;padding:3px 10px;text-align:right}td:first-child{"
      "text-align:left}tr.total{font-weight:bold}figure{margin:12px 0}img.picture{max-width:"
      "100%}pre{background:#f6f6f6;padding:8px;overflow:auto}</style></head>\n<body>\n" +
      body + "</body></html>\n";
  write_file_atomically(out, page);
  std::printf("report: %s\n", out.c_str());
  return 0;
}

}  // namespace

CommandRunner add_report_command(CLI::App& app) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "write RUN/report.html: loss, lr and AP curves, AP per class, ground truth | predictions "
      "pictures and the config, in one self-contained page");
  cmd->add_option("run", options->run_dir, "run folder (written by centermask train)")->required();
  cmd->add_option("--weights", options->weights,
                  "checkpoint for the table and pictures (default: RUN/model_final.pt, else "
                  "RUN/last.pt)");
  cmd->add_option("--out", options->out, "the page (default: RUN/report.html)");
  cmd->add_option("--pictures", options->pictures, "validation pictures drawn (0 = none)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--score-thr", options->score_threshold, "predictions drawn: score at or above")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("!--no-per-class", options->per_class,
                "skip evaluating the model on the validation set for the per-class table");
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N");
  cmd->add_option("--threads", options->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  return [options]() { return run_report(*options); };
}

}  // namespace centermask::cli
