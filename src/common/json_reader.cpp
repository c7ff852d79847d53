#include "centermask/common/json_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <limits>

#include "centermask/common/error.h"

namespace centermask::json {
namespace {

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Powers of ten that are exact in a double (10^22 is the largest).
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kObject:
      return "an object";
    case ValueType::kArray:
      return "an array";
    case ValueType::kString:
      return "a string";
    case ValueType::kNumber:
      return "a number";
    case ValueType::kBool:
      return "a boolean";
    case ValueType::kNull:
      return "null";
  }
  return "a value";
}

bool parse_double(std::string_view token, double& out) {
  // Fast path (Clinger): a decimal with at most 15 significant digits and no exponent is an
  // integer mantissa below 2^53 divided by an exact power of ten; IEEE division then rounds
  // correctly, so the result equals strtod's. COCO coordinates almost always take this path.
  const char* p = token.data();
  const char* end = p + token.size();
  bool negative = false;
  if (p != end && *p == '-') {
    negative = true;
    ++p;
  }
  std::uint64_t mantissa = 0;
  int digits = 0;
  int fraction_digits = 0;
  bool seen_point = false;
  bool fast = p != end;
  for (const char* q = p; q != end; ++q) {
    char c = *q;
    if (c >= '0' && c <= '9') {
      mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
      if (mantissa != 0) ++digits;
      if (seen_point) ++fraction_digits;
    } else if (c == '.' && !seen_point) {
      seen_point = true;
    } else {
      fast = false;
      break;
    }
  }
  if (fast && digits <= 15 && fraction_digits <= 22 && token.back() != '.' &&
      !(seen_point && p != end && *p == '.')) {
    double value = static_cast<double>(mantissa) / kExactPowersOfTen[fraction_digits];
    out = negative ? -value : value;
    return true;
  }
  auto result = std::from_chars(token.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
}

Reader::Reader(std::string_view text, std::string source_name)
    : text_(text), source_name_(std::move(source_name)) {}

void Reader::fail(std::string_view message) const { fail_at(pos_, message); }

void Reader::fail_at(std::size_t offset, std::string_view message) const {
  offset = std::min(offset, text_.size());
  std::size_t line =
      1 + static_cast<std::size_t>(std::count(text_.begin(), text_.begin() + offset, '\n'));
  throw InputError(source_name_ + ": byte " + std::to_string(offset) + " (line " +
                   std::to_string(line) + "): " + std::string(message));
}

void Reader::fail_type(std::string_view expected) {
  std::string message = "expected " + std::string(expected) + ", found ";
  message += value_type_name(peek());
  fail(message);
}

void Reader::fail_end_of_input(std::string_view expecting) const {
  fail("unexpected end of file, expected " + std::string(expecting) + " (is the file truncated?)");
}

bool Reader::try_read_simple_double(double& out) {
  const char* const begin = text_.data() + pos_;
  const char* const end = text_.data() + text_.size();
  const char* p = begin;
  const bool negative = p < end && *p == '-';
  if (negative) ++p;
  std::uint64_t mantissa = 0;
  const char* digits_begin = p;
  while (p < end && static_cast<unsigned>(*p - '0') < 10u)
    mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
  const std::ptrdiff_t int_digits = p - digits_begin;
  std::ptrdiff_t fraction_digits = 0;
  if (p < end && *p == '.') {
    const char* fraction_begin = ++p;
    while (p < end && static_cast<unsigned>(*p - '0') < 10u)
      mantissa = mantissa * 10 + static_cast<unsigned>(*p++ - '0');
    fraction_digits = p - fraction_begin;
    if (fraction_digits == 0) return false;
  }
  // Exponents, long mantissas and anything unusual take the general path.
  if (int_digits == 0 || int_digits + fraction_digits > 15 ||
      (p < end && (*p == 'e' || *p == 'E' || *p == '.'))) {
    return false;
  }
  const double value = static_cast<double>(mantissa) / kExactPowersOfTen[fraction_digits];
  out = negative ? -value : value;
  pos_ += static_cast<std::size_t>(p - begin);
  return true;
}

ValueType Reader::peek() {
  char c = current_or_fail("a value");
  switch (c) {
    case '{':
      return ValueType::kObject;
    case '[':
      return ValueType::kArray;
    case '"':
      return ValueType::kString;
    case 't':
    case 'f':
      return ValueType::kBool;
    case 'n':
      return ValueType::kNull;
    default:
      if (is_number_char(c) || c == 'N' || c == 'I') return ValueType::kNumber;
      fail(std::string("unexpected character '") + c + "', expected a JSON value");
  }
}

void Reader::begin_object() {
  if (current_or_fail("an object") != '{') fail_type("an object");
  ++pos_;
  at_container_start_ = true;
}

bool Reader::next_key(std::string_view& key) {
  char c = current_or_fail("'}' or a key");
  if (c == '}') {
    ++pos_;
    at_container_start_ = false;
    return false;
  }
  if (!at_container_start_) {
    if (c != ',') fail("expected ',' or '}' in object");
    ++pos_;
    c = current_or_fail("a key");
  }
  at_container_start_ = false;
  if (c != '"') fail("expected a string key in object");
  key = read_string();
  if (current_or_fail("':'") != ':') fail("expected ':' after object key");
  ++pos_;
  return true;
}

void Reader::begin_array() {
  if (current_or_fail("an array") != '[') fail_type("an array");
  ++pos_;
  at_container_start_ = true;
}

bool Reader::next_element() {
  char c = current_or_fail("']' or a value");
  if (c == ']') {
    ++pos_;
    at_container_start_ = false;
    return false;
  }
  if (!at_container_start_) {
    if (c != ',') fail("expected ',' or ']' in array");
    ++pos_;
    current_or_fail("a value");
  }
  at_container_start_ = false;
  return true;
}

std::size_t Reader::find_quote_backslash_or_control(std::size_t i) const {
#if defined(__SSE2__)
  // Sixteen bytes at a time where SSE2 is (every x86-64): long strings, such as compressed
  // masks, are most of a results file's bytes.
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
  const __m128i highest_control = _mm_set1_epi8(0x1F);
  while (i + 16 <= text_.size()) {
    const __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text_.data() + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(chunk, highest_control), chunk);
    const __m128i found = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(chunk, quote), _mm_cmpeq_epi8(chunk, backslash)), control);
    const int mask = _mm_movemask_epi8(found);
    if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    i += 16;
  }
#endif
  // Eight bytes at a time (the lowest flagged byte of each test is exact; borrows can only
  // flag bytes above it), then byte by byte from there.
  constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  while (i + 8 <= text_.size()) {
    std::uint64_t w;
    std::memcpy(&w, text_.data() + i, 8);
    const std::uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
    const std::uint64_t flagged =
        ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | ((w - kOnes * 0x20) & ~w);
    if (flagged & kHighs)
      return i + static_cast<std::size_t>(__builtin_ctzll(flagged & kHighs) >> 3);
    i += 8;
  }
  while (i < text_.size()) {
    const char c = text_[i];
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return i;
    ++i;
  }
  return i;
}

std::string_view Reader::read_string_raw(bool* has_escapes) {
  if (current_or_fail("a string") != '"') fail_type("a string");
  const std::size_t start = ++pos_;
  bool escaped = false;
  std::size_t i = start;
  while (true) {
    i = find_quote_backslash_or_control(i);
    if (i >= text_.size()) fail_at(start - 1, "unterminated string");
    const char c = text_[i];
    if (c == '"') break;
    if (static_cast<unsigned char>(c) < 0x20) fail_at(i, "control character inside a string");
    // A backslash: the escape is checked here, so that unescape() can trust it.
    escaped = true;
    if (i + 1 >= text_.size()) fail_at(i, "unterminated escape in string");
    const char e = text_[i + 1];
    if (e == 'u') {
      if (i + 6 > text_.size()) fail_at(i + 2, "truncated \\u escape");
      for (std::size_t k = i + 2; k < i + 6; ++k) {
        if (hex_value(text_[k]) < 0) fail_at(k, "invalid hex digit in \\u escape");
      }
      i += 6;
    } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
               e == 't') {
      i += 2;
    } else {
      fail_at(i + 1, std::string("invalid escape '\\") + e + "' in string");
    }
  }
  pos_ = i + 1;
  if (has_escapes) *has_escapes = escaped;
  return text_.substr(start, i - start);
}

std::string_view Reader::read_string() {
  bool escaped = false;
  const std::string_view raw = read_string_raw(&escaped);
  if (!escaped) return raw;
  unescape(raw, scratch_);
  return scratch_;
}

void Reader::unescape(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  const auto hex4 = [&raw](std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t k = at; k < at + 4; ++k)
      v = v * 16 + static_cast<std::uint32_t>(hex_value(raw[k]));
    return v;
  };
  std::size_t i = 0;
  while (true) {
    const std::size_t slash = raw.find('\\', i);
    out.append(raw.data() + i, (slash == std::string_view::npos ? raw.size() : slash) - i);
    if (slash == std::string_view::npos) return;
    const char e = raw[slash + 1];
    i = slash + 2;
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        std::uint32_t cp = hex4(i);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 <= raw.size() && raw[i] == '\\' &&
            raw[i + 1] == 'u') {
          const std::uint32_t low = hex4(i + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, cp);
        break;
      }
      default:  // '"', '\\' and '/' stand for themselves
        out += e;
    }
  }
}

void Reader::skip_string() {
  if (current_or_fail("a string") != '"') fail_type("a string");
  const std::size_t start = pos_++;
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      return;
    }
    pos_ += (c == '\\') ? 2 : 1;
  }
  fail_at(start, "unterminated string");
}

std::string_view Reader::number_token() {
  char c = current_or_fail("a number");
  const std::size_t start = pos_;
  if (c == 'N' || c == 'I' || (c == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] == 'I')) {
    for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return word;
      }
    }
  }
  while (pos_ < text_.size() && is_number_char(text_[pos_])) ++pos_;
  if (pos_ == start) fail_type("a number");
  return text_.substr(start, pos_ - start);
}

double Reader::read_double() {
  skip_whitespace();
  double fast;
  if (try_read_simple_double(fast)) return fast;
  const std::size_t start = pos_;
  std::string_view token = number_token();
  if (token == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (token == "Infinity") return std::numeric_limits<double>::infinity();
  if (token == "-Infinity") return -std::numeric_limits<double>::infinity();
  double value = 0;
  if (!parse_double(token, value)) fail_at(start, "malformed number '" + std::string(token) + "'");
  return value;
}

std::int64_t Reader::read_int64() {
  const std::size_t start = (skip_whitespace(), pos_);
  std::string_view token = number_token();
  std::int64_t value = 0;
  auto result = std::from_chars(token.data(), token.data() + token.size(), value);
  if (result.ec == std::errc() && result.ptr == token.data() + token.size()) return value;
  // Accept integral values written as floats (1.0, 1e3), as Python's json may produce them.
  double d = 0;
  if (parse_double(token, d) && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
    return static_cast<std::int64_t>(d);
  }
  fail_at(start, "expected an integer, found '" + std::string(token) + "'");
}

bool Reader::read_bool() {
  char c = current_or_fail("a boolean");
  if (c == 't' && text_.substr(pos_, 4) == "true") {
    pos_ += 4;
    return true;
  }
  if (c == 'f' && text_.substr(pos_, 5) == "false") {
    pos_ += 5;
    return false;
  }
  fail_type("a boolean");
}

void Reader::read_null() {
  if (current_or_fail("null") == 'n' && text_.substr(pos_, 4) == "null") {
    pos_ += 4;
    return;
  }
  fail_type("null");
}

void Reader::skip_value() { skip_value_at_depth(0); }

void Reader::skip_value_at_depth(int depth) {
  if (depth > kMaxSkipDepth) fail("JSON nested too deeply");
  switch (peek()) {
    case ValueType::kObject: {
      begin_object();
      std::string_view key;
      while (next_key(key)) skip_value_at_depth(depth + 1);
      return;
    }
    case ValueType::kArray:
      begin_array();
      while (next_element()) skip_value_at_depth(depth + 1);
      return;
    case ValueType::kString:
      skip_string();
      return;
    case ValueType::kNumber:
      read_double();
      return;
    case ValueType::kBool:
      read_bool();
      return;
    case ValueType::kNull:
      read_null();
      return;
  }
}

void Reader::expect_end() {
  skip_whitespace();
  if (pos_ != text_.size()) fail("unexpected data after the end of the JSON document");
}

}  // namespace centermask::json
