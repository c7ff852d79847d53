#pragma once
// The pieces of a self-contained HTML page (`centermask report`): line charts as inline SVG,
// pictures as base64 data URLs, text escaped. No scripts and no files beside the page, so it
// opens anywhere and can be mailed or archived as one file.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace centermask {

/// One line of a chart: (x, y) points in x order; points with a non-finite y are skipped.
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
  std::string colour;  ///< CSS colour; empty = the next of the chart palette
};

struct ChartOptions {
  std::string title;
  std::string x_label;
  std::string y_label;
  int width = 560;
  int height = 300;
  bool log_y = false;  ///< a logarithmic y axis (positive values only; others are skipped)
};

/// The chart's palette, in the order series without a colour take it.
const std::vector<std::string>& chart_palette();

/// An <svg> element: axes with rounded ticks, one polyline per series (a circle for a
/// one-point series), a legend. A chart without any point says so in its frame.
std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options);

/// `text` with &, <, >, " and ' escaped for HTML text and attribute values.
std::string html_escape(std::string_view text);

/// Standard base64 (RFC 4648, with padding), as data URLs want it.
std::string base64_encode(const std::vector<std::uint8_t>& bytes);

}  // namespace centermask
