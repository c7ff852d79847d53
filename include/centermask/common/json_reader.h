#pragma once
// A pull parser for JSON held in memory. It reads one value at a time, so that a 450 MB COCO
// file becomes our compact structures in one pass without a document tree beside it. Every
// error names the source, the byte offset and the line.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace centermask::json {

enum class ValueType { kObject, kArray, kString, kNumber, kBool, kNull };

const char* value_type_name(ValueType type);

class Reader {
 public:
  /// `text` must outlive the reader; `source_name` (usually the file path) prefixes errors.
  Reader(std::string_view text, std::string source_name);

  /// Type of the next value, without consuming it.
  ValueType peek();

  /// Consumes '{'. Then call next_key() until it returns false (it consumes the '}').
  void begin_object();
  bool next_key(std::string_view& key);

  /// Consumes '['. Then call next_element() before each element until it returns false.
  void begin_array();
  bool next_element();

  /// The string's contents, unescaped. The view is valid until the next read.
  std::string_view read_string();
  /// The string's contents as written between its quotes (a view into the text), checked as
  /// read_string() checks it but not unescaped; *has_escapes says whether unescape() is
  /// needed. For large strings kept for later, such as compressed masks.
  std::string_view read_string_raw(bool* has_escapes);
  /// Unescapes a string that read_string_raw() returned (its escapes are trusted) into `out`.
  static void unescape(std::string_view raw, std::string& out);
  /// Reads a JSON array of numbers, appending to `out`. `name()` names the field in errors.
  template <typename NameFn>
  void read_double_array(std::vector<double>& out, const NameFn& name);

  /// Numbers, including the NaN / Infinity / -Infinity tokens that Python's json writes
  /// (callers decide whether non-finite values are acceptable).
  double read_double();
  /// An integer; a number with a fraction or out of int64 range is an error.
  std::int64_t read_int64();
  bool read_bool();
  void read_null();
  /// Skips one value of any type; nesting deeper than kMaxSkipDepth is an error.
  void skip_value();
  static constexpr int kMaxSkipDepth = 256;

  /// Fails unless only whitespace is left.
  void expect_end();

  /// Throws InputError "SOURCE: byte B (line L): MESSAGE" at the current position.
  [[noreturn]] void fail(std::string_view message) const;
  [[noreturn]] void fail_at(std::size_t offset, std::string_view message) const;
  /// Throws a type error "expected TYPE, found OTHER" at the current position.
  [[noreturn]] void fail_type(std::string_view expected);

  std::size_t offset() const { return pos_; }
  const std::string& source_name() const { return source_name_; }

 private:
  void skip_whitespace() {
    while (pos_ < text_.size() && is_whitespace(text_[pos_])) ++pos_;
  }
  char current_or_fail(std::string_view expecting) {
    skip_whitespace();
    if (pos_ >= text_.size()) fail_end_of_input(expecting);
    return text_[pos_];
  }
  static bool is_whitespace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  [[noreturn]] void fail_end_of_input(std::string_view expecting) const;
  // Parses a plain decimal (no exponent, <= 15 digits) in one pass; false leaves pos_ as is.
  bool try_read_simple_double(double& out);
  std::string_view number_token();
  // The first '"', '\\' or control character at or after `i`, or the end of the text.
  std::size_t find_quote_backslash_or_control(std::size_t i) const;
  void skip_string();
  void skip_value_at_depth(int depth);

  std::string_view text_;
  std::string source_name_;
  std::size_t pos_ = 0;
  // True right after '{' or '[': the next key/element needs no separating comma.
  bool at_container_start_ = false;
  std::string scratch_;
};

/// Parses a decimal number token exactly as a correctly rounded strtod would.
bool parse_double(std::string_view token, double& out);

template <typename NameFn>
void Reader::read_double_array(std::vector<double>& out, const NameFn& name) {
  if (current_or_fail("an array") != '[') fail(name() + ": expected an array of numbers");
  ++pos_;
  if (current_or_fail("']'") == ']') {
    ++pos_;
    return;
  }
  while (true) {
    double v;
    skip_whitespace();
    if (!try_read_simple_double(v)) {
      if (peek() != ValueType::kNumber)
        fail(name() + ": expected a number, found " + value_type_name(peek()));
      v = read_double();
    }
    out.push_back(v);
    const char c = current_or_fail("',' or ']'");
    ++pos_;
    if (c == ']') return;
    if (c != ',') {
      --pos_;
      fail(name() + ": expected ',' or ']' in array");
    }
  }
}

}  // namespace centermask::json
