#include "centermask/common/json_writer.h"

#include <fmt/format.h>

#include <cmath>

namespace centermask::json {

void append_quoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void Writer::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_element_.empty()) {
    if (has_element_.back()) out_ += ',';
    has_element_.back() = true;
  }
}

Writer& Writer::begin_object() {
  separate();
  out_ += '{';
  has_element_.push_back(false);
  return *this;
}

Writer& Writer::end_object() {
  out_ += '}';
  has_element_.pop_back();
  return *this;
}

Writer& Writer::begin_array() {
  separate();
  out_ += '[';
  has_element_.push_back(false);
  return *this;
}

Writer& Writer::end_array() {
  out_ += ']';
  has_element_.pop_back();
  return *this;
}

Writer& Writer::key(std::string_view name) {
  separate();
  append_quoted(out_, name);
  out_ += ':';
  after_key_ = true;
  return *this;
}

Writer& Writer::value(std::string_view s) {
  separate();
  append_quoted(out_, s);
  return *this;
}

Writer& Writer::value(double d) {
  separate();
  // JSON has no NaN or infinity; null is what a reader can at least parse.
  if (!std::isfinite(d)) {
    out_ += "null";
  } else {
    fmt::format_to(std::back_inserter(out_), "{}", d);
  }
  return *this;
}

Writer& Writer::value(std::int64_t i) {
  separate();
  fmt::format_to(std::back_inserter(out_), "{}", i);
  return *this;
}

Writer& Writer::value(bool b) {
  separate();
  out_ += b ? "true" : "false";
  return *this;
}

Writer& Writer::null() {
  separate();
  out_ += "null";
  return *this;
}

}  // namespace centermask::json
