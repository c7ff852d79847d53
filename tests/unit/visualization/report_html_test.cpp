// The report page's pieces: base64 against RFC 4648's test vectors, escaping, and charts that
// draw what they are given (one line per series, a dot for one point, nothing unusable).

#include "centermask/visualization/report_html.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace centermask {
namespace {

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ReportHtml, Base64MatchesRfc4648) {
  EXPECT_EQ(base64_encode(bytes_of("")), "");
  EXPECT_EQ(base64_encode(bytes_of("f")), "Zg==");
  EXPECT_EQ(base64_encode(bytes_of("fo")), "Zm8=");
  EXPECT_EQ(base64_encode(bytes_of("foo")), "Zm9v");
  EXPECT_EQ(base64_encode(bytes_of("foob")), "Zm9vYg==");
  EXPECT_EQ(base64_encode(bytes_of("fooba")), "Zm9vYmE=");
  EXPECT_EQ(base64_encode(bytes_of("foobar")), "Zm9vYmFy");
  EXPECT_EQ(base64_encode({0xff, 0xfe, 0x00}), "//4A");
}

TEST(ReportHtml, EscapesMarkup) {
  EXPECT_EQ(html_escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
}

TEST(ReportHtml, ChartsDrawEachSeriesAndSkipWhatCannotBePlotted) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::string two = svg_line_chart(
      {{"loss", {{0, 3}, {10, 2}, {20, nan}, {30, 1}}, ""}, {"one", {{5, 2.5}}, "#123456"}},
      {"Losses <total>", "iteration", "loss", 560, 300, false});
  EXPECT_EQ(count_of(two, "<polyline class=\"series\""), 1u);
  EXPECT_EQ(count_of(two, "<circle class=\"series\""), 1u);
  EXPECT_NE(two.find("fill=\"#123456\""), std::string::npos);
  EXPECT_NE(two.find("stroke=\"" + chart_palette()[0] + "\""), std::string::npos);
  EXPECT_NE(two.find("Losses &lt;total&gt;"), std::string::npos);
  // The polyline has the three finite points.
  const std::size_t at = two.find("points=\"");
  const std::string points = two.substr(at, two.find('"', at + 8) - at);
  EXPECT_EQ(count_of(points, ","), 3u);

  // A log axis drops non-positive values; a chart with nothing usable says so.
  const std::string log_chart =
      svg_line_chart({{"loss", {{0, 0}, {1, -1}}, ""}}, {"t", "x", "y", 560, 300, true});
  EXPECT_NE(log_chart.find("no data"), std::string::npos);
  EXPECT_EQ(count_of(log_chart, "class=\"series\""), 0u);
  EXPECT_NE(svg_line_chart({}, {}).find("no data"), std::string::npos);
}

}  // namespace
}  // namespace centermask
