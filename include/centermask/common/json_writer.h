#pragma once
// Appends compact JSON to a string. Doubles are written in the shortest form that reads back
// to the same value (as Python's repr does), so written results round-trip exactly.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace centermask::json {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  Writer& begin_object();
  Writer& end_object();
  Writer& begin_array();
  Writer& end_array();
  /// Writes `"name":` inside an object.
  Writer& key(std::string_view name);
  Writer& value(std::string_view s);
  Writer& value(const char* s) { return value(std::string_view(s)); }
  Writer& value(double d);
  Writer& value(std::int64_t i);
  Writer& value(int i) { return value(static_cast<std::int64_t>(i)); }
  Writer& value(bool b);
  Writer& null();

 private:
  void separate();

  std::string& out_;
  // Per open container: whether it already holds an element (so the next needs a comma).
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

/// Appends `s` as a quoted, escaped JSON string.
void append_quoted(std::string& out, std::string_view s);

}  // namespace centermask::json
