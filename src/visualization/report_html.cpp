#include "centermask/visualization/report_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace centermask {
namespace {

// "Nice" tick positions (1, 2 or 5 × 10^k apart) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * magnitude;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) {
  if (v != 0 && (std::abs(v) >= 1e5 || std::abs(v) < 1e-3)) return fmt::format("{:.0e}", v);
  return fmt::format("{:g}", v);
}

}  // namespace

const std::vector<std::string>& chart_palette() {
  static const std::vector<std::string> palette = {"#d62728", "#1f77b4", "#2ca02c", "#ff7f0e",
                                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  return palette;
}

std::string svg_line_chart(const std::vector<ChartSeries>& series, const ChartOptions& options) {
  const double left = 62, right = 150, top = 28, bottom = 44;
  const double plot_w = options.width - left - right, plot_h = options.height - top - bottom;
  const auto usable = [&](double y) { return std::isfinite(y) && (!options.log_y || y > 0); };
  const auto to_axis = [&](double y) { return options.log_y ? std::log10(y) : y; };

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const ChartSeries& s : series)
    for (const auto& [x, y] : s.points) {
      if (!usable(y) || !std::isfinite(x)) continue;
      x_lo = std::min(x_lo, x);
      x_hi = std::max(x_hi, x);
      y_lo = std::min(y_lo, to_axis(y));
      y_hi = std::max(y_hi, to_axis(y));
    }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{3}</text>\n",
      options.width, options.height, left, html_escape(options.title));
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", left,
      top, plot_w, plot_h);
  if (!(x_hi >= x_lo)) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#666\">no data</text>\n</svg>\n", left + 10,
                       top + plot_h / 2);
    return svg;
  }
  if (x_hi == x_lo) x_hi = x_lo + 1;
  if (y_hi == y_lo) {
    y_lo -= 0.5;
    y_hi += 0.5;
  }
  const double pad = 0.04 * (y_hi - y_lo);
  y_lo -= pad;
  y_hi += pad;
  const auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  const auto py = [&](double y) {
    return top + (1 - (to_axis(y) - y_lo) / (y_hi - y_lo)) * plot_h;
  };

  for (double t : nice_ticks(x_lo, x_hi, 6)) {
    const double x = left + (t - x_lo) / (x_hi - x_lo) * plot_w;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        x, top, top + plot_h, top + plot_h + 14, tick_label(t));
  }
  if (options.log_y) {
    for (double e = std::floor(y_lo); e <= std::ceil(y_hi); e += 1) {
      if (e < y_lo || e > y_hi) continue;
      const double y = top + (1 - (e - y_lo) / (y_hi - y_lo)) * plot_h;
      svg += fmt::format(
          "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
          left, y, left + plot_w, left - 4, y + 4, tick_label(std::pow(10.0, e)));
    }
  } else {
    for (double t : nice_ticks(y_lo, y_hi, 5)) {
      const double y = top + (1 - (t - y_lo) / (y_hi - y_lo)) * plot_h;
      svg += fmt::format(
          "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
          left, y, left + plot_w, left - 4, y + 4, tick_label(t));
    }
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                     left + plot_w / 2, options.height - 8, html_escape(options.x_label));
  svg += fmt::format(
      "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
      "{0})\">{1}</text>\n",
      top + plot_h / 2, html_escape(options.y_label));

  std::size_t next_colour = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    const ChartSeries& s = series[i];
    const std::string colour =
        !s.colour.empty() ? s.colour : chart_palette()[next_colour++ % chart_palette().size()];
    std::string points;
    std::size_t count = 0;
    double last_x = 0, last_y = 0;
    for (const auto& [x, y] : s.points) {
      if (!usable(y) || !std::isfinite(x)) continue;
      last_x = px(x);
      last_y = py(y);
      points += fmt::format("{:.1f},{:.1f} ", last_x, last_y);
      ++count;
    }
    if (count == 1) {
      svg += fmt::format(
          "<circle class=\"series\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", last_x,
          last_y, colour);
    } else if (count > 1) {
      svg += fmt::format(
          "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
          "points=\"{}\"/>\n",
          colour, points);
    }
    const double ly = top + 10 + 16 * static_cast<double>(i);
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"{3}\" "
        "stroke-width=\"3\"/>"
        "<text x=\"{4}\" y=\"{5:.1f}\">{6}</text>\n",
        left + plot_w + 10, ly, left + plot_w + 28, colour, left + plot_w + 32, ly + 4,
        html_escape(s.name));
  }
  svg += "</svg>\n";
  return svg;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string base64_encode(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const std::uint32_t v =
        (std::uint32_t{bytes[i]} << 16) | (std::uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const std::uint32_t v =
        (std::uint32_t{bytes[i]} << 16) | (two ? std::uint32_t{bytes[i + 1]} << 8 : 0);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace centermask
