// `centermask report RUN`: a self-contained page with the run's curves, per-class AP, pictures
// and config; rendered by a real headless browser (Debian's chromium, when installed) whose
// screenshot must show the plots' lines.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <sstream>
#include <tuple>

#include "centermask/common/json_reader.h"
#include "centermask/visualization/report_html.h"
#include "support/cli_runner.h"
#include "support/train_fixtures.h"

namespace centermask {
namespace {

testing::CliRun run_cli(const std::string& args) {
  return testing::run_program(CENTERMASK_CLI, args);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class CliReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_ = new testing::TinyTrainingData();
    run_ = new testing::TempDir();
    testing::write_text(data_->root() / "tiny.yaml", data_->config_yaml());
    const auto trained =
        run_cli("train --config " + (data_->root() / "tiny.yaml").string() + " --out " +
                (run_->path() / "run").string() + " --set runtime.eval_every_iters=2");
    ASSERT_EQ(trained.exit_code, 0) << trained.output;
  }
  static void TearDownTestSuite() {
    delete run_;
    delete data_;
  }
  static std::filesystem::path run_dir() { return run_->path() / "run"; }
  static testing::TinyTrainingData* data_;
  static testing::TempDir* run_;
};
testing::TinyTrainingData* CliReportTest::data_ = nullptr;
testing::TempDir* CliReportTest::run_ = nullptr;

TEST_F(CliReportTest, WritesOneSelfContainedPageWithCurvesTablePicturesAndConfig) {
  const auto made = run_cli("report " + run_dir().string() + " --pictures 2");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const std::string page = testing::read_text(run_dir() / "report.html");
  EXPECT_EQ(count_of(page, "<svg"), 4u);  // losses, lr, speed, AP
  // Loss terms (total, heatmap, offset, size, mask), lr, speed, and mask/box AP curves.
  EXPECT_GE(count_of(page, "<polyline class=\"series\""), 9u);
  for (const char* term : {">heatmap<", ">mask<", ">mask AP<", ">box AP<"})
    EXPECT_NE(page.find(term), std::string::npos) << term;
  EXPECT_NE(page.find("<th>mask AP</th>"), std::string::npos);
  EXPECT_EQ(count_of(page, "<img class=\"picture\""), 2u);
  EXPECT_EQ(count_of(page, "src=\"data:image/png;base64,"), 2u);
  EXPECT_NE(page.find("backbone: resnet18"), std::string::npos);  // the config, escaped
  // Nothing is fetched from elsewhere.
  EXPECT_EQ(page.find("src=\"http"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);

  // Without pictures or table, from the log alone.
  const auto bare = run_cli("report " + run_dir().string() + " --pictures 0 --no-per-class --out " +
                            (run_dir() / "bare.html").string());
  ASSERT_EQ(bare.exit_code, 0) << bare.output;
  const std::string bare_page = testing::read_text(run_dir() / "bare.html");
  EXPECT_EQ(count_of(bare_page, "<img"), 0u);
  EXPECT_EQ(count_of(bare_page, "<svg"), 4u);
}

// The charts draw what the log says: every logged value is a point of its curve, and each
// chart's points are one affine image of (iteration, value) — log10(value) on the loss chart's
// log axis — to the 0.1 px that rounding two one-decimal coordinates allows. A value drawn at the
// wrong place, a missing or extra point, or a curve under another name breaks the fit.
struct Curve {
  std::string name;
  std::vector<std::pair<double, double>> pixels;  // (x, y) on the page
};

std::vector<std::pair<std::string, std::vector<Curve>>> charts_of(const std::string& page) {
  std::vector<std::pair<std::string, std::vector<Curve>>> charts;
  const std::regex title(R"(font-weight="bold">([^<]*)</text>)");
  const std::regex curve(
      R"re(<polyline class="series"[^>]*points="([^"]*)"/>\n<line[^>]*/><text[^>]*>([^<]*)</text>)re");
  for (std::size_t at = page.find("<svg"); at != std::string::npos;
       at = page.find("<svg", at + 1)) {
    const std::string svg = page.substr(at, page.find("</svg>", at) - at);
    std::smatch m;
    std::regex_search(svg, m, title);
    std::vector<Curve> curves;
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), curve);
         it != std::sregex_iterator(); ++it) {
      Curve c;
      c.name = (*it)[2];
      std::istringstream points((*it)[1]);
      for (std::string pair; points >> pair;) {
        const std::size_t comma = pair.find(',');
        c.pixels.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
      }
      curves.push_back(std::move(c));
    }
    charts.emplace_back(m.size() > 1 ? m[1].str() : "", std::move(curves));
  }
  return charts;
}

// The log's numbers by series name, as the test reads them (not through the report's code).
std::map<std::string, std::vector<std::pair<double, double>>> logged_series(
    const std::filesystem::path& log_path) {
  std::map<std::string, std::vector<std::pair<double, double>>> series;
  std::istringstream in(testing::read_text(log_path));
  for (std::string line; std::getline(in, line);) {
    json::Reader r(line, log_path.string());
    std::map<std::string, double> numbers;
    std::string type;
    r.begin_object();
    std::string_view key;
    while (r.next_key(key)) {
      const std::string name(key);
      if (name == "type") {
        type = std::string(r.read_string());
      } else if (name == "segm" && r.peek() == json::ValueType::kObject) {
        r.begin_object();
        std::string_view stat;
        while (r.next_key(stat)) {
          if (stat == "AP" || stat == "AP50" || stat == "AP75")
            numbers["mask " + std::string(stat)] = r.read_double();
          else
            r.skip_value();
        }
      } else if (r.peek() == json::ValueType::kNumber) {
        numbers[name] = r.read_double();
      } else {
        r.skip_value();
      }
    }
    const double iteration = numbers["iter"];
    if (type == "train") {
      for (const char* name : {"loss", "heatmap", "mask", "lr", "images_per_s"})
        if (numbers.count(name)) series[name].emplace_back(iteration, numbers[name]);
    } else if (type == "eval") {
      for (const char* name : {"mask AP", "mask AP50", "mask AP75"})
        if (numbers.count(name)) series[name].emplace_back(iteration, numbers[name]);
    }
  }
  return series;
}

// Largest distance of a pixel from the line through the pairs of smallest and largest value;
// `slope` receives that line's slope. The page rounds each coordinate to 0.1 px, so each pixel
// is within 0.05 of the exact affine image, the line's two ends are too, and therefore every
// pixel of a correct chart is within 0.05 + 0.05 of the line between them. (A least-squares
// line has no such bound: on one CI run it left a correct chart's point 0.0603 px off.)
double extreme_points_line_residual(const std::vector<std::pair<double, double>>& pairs,
                                    double* slope) {
  const auto [low, high] = std::minmax_element(
      pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  *slope = (high->second - low->second) / (high->first - low->first);
  double worst = 0;
  for (const auto& [x, y] : pairs)
    worst = std::max(worst, std::abs(low->second + *slope * (x - low->first) - y));
  return worst;
}

// Two coordinate roundings of at most 0.05 px each, and nothing more.
constexpr double kRoundingBound = 0.1 + 1e-9;

TEST_F(CliReportTest, EveryCurveIsTheLoggedValuesOnTheChartsAxes) {
  const auto made = run_cli("report " + run_dir().string() + " --pictures 0 --no-per-class --out " +
                            (run_dir() / "curves.html").string());
  ASSERT_EQ(made.exit_code, 0) << made.output;
  const auto charts = charts_of(testing::read_text(run_dir() / "curves.html"));
  const auto logged = logged_series(run_dir() / "log.jsonl");
  ASSERT_EQ(charts.size(), 4u);
  // (chart title, curves checked on it, whether its y axis is logarithmic)
  const std::vector<std::tuple<std::string, std::vector<std::string>, bool>> expected = {
      {"Loss terms (log scale)", {"loss", "heatmap", "mask"}, true},
      {"Learning rate", {"lr"}, false},
      {"Training speed", {"images/s"}, false},
      {"Validation AP", {"mask AP", "mask AP50", "mask AP75"}, false}};
  for (std::size_t k = 0; k < charts.size(); ++k) {
    const auto& [title, curves] = charts[k];
    const auto& [want_title, names, log_y] = expected[k];
    SCOPED_TRACE(title);
    EXPECT_EQ(title, want_title);
    std::vector<std::pair<double, double>> x_pairs, y_pairs;
    for (const std::string& name : names) {
      const auto curve = std::find_if(curves.begin(), curves.end(),
                                      [&](const Curve& c) { return c.name == name; });
      ASSERT_NE(curve, curves.end()) << "no curve " << name;
      const auto& values = logged.at(name == "images/s" ? "images_per_s" : name);
      ASSERT_EQ(curve->pixels.size(), values.size()) << name;
      ASSERT_GE(values.size(), 3u) << name;
      for (std::size_t i = 0; i < values.size(); ++i) {
        x_pairs.emplace_back(values[i].first, curve->pixels[i].first);
        y_pairs.emplace_back(log_y ? std::log10(values[i].second) : values[i].second,
                             curve->pixels[i].second);
      }
    }
    double x_slope = 0, y_slope = 0;
    EXPECT_LE(extreme_points_line_residual(x_pairs, &x_slope), kRoundingBound);
    EXPECT_GT(x_slope, 0);  // later iterations to the right
    // A flat series (a constant lr) is drawn at one height; the others must fit one line.
    bool varies = false;
    for (const auto& [v, p] : y_pairs) varies |= v != y_pairs.front().first;
    if (!varies) {
      for (const auto& [v, p] : y_pairs) EXPECT_EQ(p, y_pairs.front().second);
      continue;
    }
    EXPECT_LE(extreme_points_line_residual(y_pairs, &y_slope), kRoundingBound);
    EXPECT_LT(y_slope, 0);  // larger values higher up
  }
}

TEST_F(CliReportTest, AHeadlessBrowserRendersThePlots) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "Debian's chromium is not installed (scripts/install-deps.sh installs it)";
  const std::filesystem::path page = run_dir() / "browser.html";
  ASSERT_EQ(
      run_cli("report " + run_dir().string() + " --pictures 1 --out " + page.string()).exit_code,
      0);
  const std::filesystem::path shot = run_dir() / "screenshot.png";
  const std::string command =
      "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1240,900 "
      "--screenshot=" +
      shot.string() + " file://" + page.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const cv::Mat image = cv::imread(shot.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty()) << shot;
  EXPECT_EQ(image.cols, 1240);
  // The first two palette colours are the first curves of each chart (total loss, lr, ...):
  // drawn lines leave many pixels of exactly those colours on the page.
  const auto pixels_of = [&image](const std::string& css) {
    const int r = std::stoi(css.substr(1, 2), nullptr, 16),
              g = std::stoi(css.substr(3, 2), nullptr, 16),
              b = std::stoi(css.substr(5, 2), nullptr, 16);
    cv::Mat hit;
    cv::inRange(image, cv::Scalar(b - 8, g - 8, r - 8), cv::Scalar(b + 8, g + 8, r + 8), hit);
    return cv::countNonZero(hit);
  };
  EXPECT_GT(pixels_of(chart_palette()[0]), 300) << "no curve of the first colour on " << shot;
  EXPECT_GT(pixels_of(chart_palette()[1]), 100) << "no curve of the second colour on " << shot;
}

TEST_F(CliReportTest, AFolderThatIsNotARunIsNamed) {
  const auto missing = run_cli("report " + (run_->path() / "nothing").string());
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("nothing: not a folder"), std::string::npos) << missing.output;
  std::filesystem::create_directories(run_->path() / "empty");
  const auto empty = run_cli("report " + (run_->path() / "empty").string());
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.output.find("log.jsonl: cannot read the run's log"), std::string::npos)
      << empty.output;
}

}  // namespace
}  // namespace centermask
