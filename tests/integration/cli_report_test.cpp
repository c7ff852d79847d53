// `centermask report RUN`: a self-contained page with the run's curves, per-class AP, pictures
// and config; rendered by a real headless browser (Debian's chromium, when installed) whose
// screenshot must show the plots' lines.

#include <gtest/gtest.h>

#include <cstdlib>
#include <opencv2/imgcodecs.hpp>

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
