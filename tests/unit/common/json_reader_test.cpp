#include "centermask/common/json_reader.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <random>

#include "centermask/common/error.h"
#include "centermask/common/json_writer.h"

namespace centermask::json {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(JsonReader, ReadsNestedValues) {
  const std::string text =
      R"( {"a": [1, -2.5, 3e2], "b": {"c": "x", "d": true, "e": null}, "f": []} )";
  Reader r(text, "t.json");
  r.begin_object();
  std::string_view key;
  ASSERT_TRUE(r.next_key(key));
  EXPECT_EQ(key, "a");
  r.begin_array();
  std::vector<double> v;
  while (r.next_element()) v.push_back(r.read_double());
  EXPECT_EQ(v, (std::vector<double>{1, -2.5, 300}));
  ASSERT_TRUE(r.next_key(key));
  EXPECT_EQ(key, "b");
  EXPECT_EQ(r.peek(), ValueType::kObject);
  r.skip_value();
  ASSERT_TRUE(r.next_key(key));
  r.begin_array();
  EXPECT_FALSE(r.next_element());
  EXPECT_FALSE(r.next_key(key));
  r.expect_end();
}

TEST(JsonReader, UnescapesStrings) {
  const std::string text = R"(["a\"b\\c\/", "caf\u00e9", "\ud83d\ude00", "tab\t"])";
  Reader r(text, "t.json");
  r.begin_array();
  std::vector<std::string> s;
  while (r.next_element()) s.emplace_back(r.read_string());
  EXPECT_EQ(s, (std::vector<std::string>{"a\"b\\c/", "caf\xC3\xA9", "\xF0\x9F\x98\x80", "tab\t"}));
}

// read_string_raw gives the text between the quotes and whether it holds escapes;
// unescape() of it equals read_string(); a bad escape fails at the same byte either way.
TEST(JsonReader, RawStringsUnescapeToWhatReadStringReturns) {
  const std::vector<std::string> strings = {
      R"("plain")",         R"("a\"b\\c\/")", R"("caf\u00e9")", R"("\ud83d\ude00 x")",
      R"("tab\t\n\r\b\f")", R"("")",          R"("\\")",        R"("ab\ud83dcd")"};
  for (const std::string& text : strings) {
    Reader raw_reader(text, "t.json"), reader(text, "t.json");
    bool escaped = true;
    const std::string_view raw = raw_reader.read_string_raw(&escaped);
    EXPECT_EQ(raw, std::string_view(text).substr(1, text.size() - 2)) << text;
    EXPECT_EQ(escaped, raw.find('\\') != std::string_view::npos) << text;
    std::string unescaped;
    Reader::unescape(raw, unescaped);
    EXPECT_EQ(unescaped, reader.read_string()) << text;
    EXPECT_EQ(raw_reader.offset(), text.size()) << text;
  }
  for (const char* bad : {R"("a\x")", R"("a\u12g4")", R"("a\u12")", "\"a\\"}) {
    const std::string by_raw = error_of([&] {
      Reader r(bad, "t.json");
      r.read_string_raw(nullptr);
    });
    EXPECT_NE(by_raw, "") << bad;
    EXPECT_EQ(by_raw, error_of([&] {
                Reader r(bad, "t.json");
                r.read_string();
              }))
        << bad;
  }
}

// The string scan goes sixteen or eight bytes at a time: a quote, a backslash or a control
// character at every position of strings of every length around the word (and bytes >= 0x80, which
// must not be taken for control characters) against the expected contents or error.
TEST(JsonReader, StringScanFindsEveryEndEscapeAndControlCharacterPosition) {
  for (std::size_t length = 0; length < 40; ++length) {
    const std::string plain(length, 'o');
    {
      const std::string text = "[\"" + plain + "\", 1]";
      Reader r(text, "t.json");
      r.begin_array();
      ASSERT_TRUE(r.next_element());
      EXPECT_EQ(r.read_string(), plain);
      ASSERT_TRUE(r.next_element());
      EXPECT_EQ(r.read_int64(), 1);
    }
    for (std::size_t at = 0; at < length; ++at) {
      std::string with_escape = plain, expected = plain;
      with_escape.replace(at, 1, "\\\\");
      expected[at] = '\\';
      const std::string escaped_text = "\"" + with_escape + "\"";
      Reader r(escaped_text, "t.json");
      EXPECT_EQ(r.read_string(), expected) << length << " " << at;

      std::string high = plain;
      high[at] = '\xC3';
      const std::string high_text = "\"" + high + "\"";
      Reader h(high_text, "t.json");
      EXPECT_EQ(h.read_string(), high);

      std::string control = plain;
      control[at] = '\x01';
      const std::string text = "\"" + control + "\"";
      EXPECT_NE(error_of([&] {
                  Reader c(text, "t.json");
                  c.read_string();
                }).find("byte " + std::to_string(at + 1)),
                std::string::npos)
          << length << " " << at;
    }
  }
}

TEST(JsonReader, FastNumberPathIsCorrectlyRounded) {
  // Compare against from_chars on many short decimals, the common case in COCO files.
  std::mt19937 rng(7);
  std::uniform_int_distribution<long long> mantissa(0, 999999999);
  std::uniform_int_distribution<int> decimals(0, 9);
  for (int i = 0; i < 200000; ++i) {
    std::string s = std::to_string(mantissa(rng));
    int d = std::min<int>(decimals(rng), static_cast<int>(s.size()) - 1);
    if (d > 0) s.insert(s.size() - static_cast<std::size_t>(d), ".");
    if (i % 2) s = "-" + s;
    double fast = 0, reference = 0;
    ASSERT_TRUE(parse_double(s, fast)) << s;
    std::from_chars(s.data(), s.data() + s.size(), reference);
    ASSERT_EQ(fast, reference) << s;
  }
  double v = 0;
  EXPECT_TRUE(parse_double("0.1", v));
  EXPECT_EQ(v, 0.1);
  EXPECT_TRUE(parse_double("123456789012345678901234567890", v));
  EXPECT_EQ(v, 1.2345678901234568e29);
  EXPECT_FALSE(parse_double("1-2", v));
  EXPECT_FALSE(parse_double("-", v));
  EXPECT_FALSE(parse_double("+1", v));
}

TEST(JsonReader, IntegersAndPythonSpecialNumbers) {
  const std::string text = "[42, 1.0, 1e3, NaN, -Infinity, 2.5]";
  Reader r(text, "t.json");
  r.begin_array();
  r.next_element();
  EXPECT_EQ(r.read_int64(), 42);
  r.next_element();
  EXPECT_EQ(r.read_int64(), 1);
  r.next_element();
  EXPECT_EQ(r.read_int64(), 1000);
  r.next_element();
  EXPECT_TRUE(std::isnan(r.read_double()));
  r.next_element();
  EXPECT_EQ(r.read_double(), -INFINITY);
  r.next_element();
  EXPECT_NE(error_of([&] { r.read_int64(); }).find("expected an integer"), std::string::npos);
}

TEST(JsonReader, ErrorsNameFileByteAndLine) {
  const std::string text = "{\n  \"a\": [1, 2,\n  \"b\": 3}";
  std::string message = error_of([&] {
    Reader r(text, "bad.json");
    r.skip_value();
  });
  EXPECT_NE(message.find("bad.json: byte "), std::string::npos) << message;
  EXPECT_NE(message.find("(line 3)"), std::string::npos) << message;

  message = error_of([&] {
    Reader r("{\"a\": [1, 2", "cut.json");
    r.skip_value();
  });
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;

  message = error_of([&] {
    Reader r("[1] x", "tail.json");
    r.skip_value();
    r.expect_end();
  });
  EXPECT_NE(message.find("after the end"), std::string::npos) << message;

  message = error_of([&] {
    Reader r("\"abc", "s.json");
    r.read_string();
  });
  EXPECT_NE(message.find("unterminated"), std::string::npos) << message;
  EXPECT_NE(error_of([] {
              Reader r("tru", "b.json");
              r.read_bool();
            }),
            "");
  EXPECT_NE(error_of([] {
              Reader r("{\"a\" 1}", "o.json");
              r.skip_value();
            }).find("':'"),
            std::string::npos);
}

TEST(JsonReader, DeepNestingFailsCleanly) {
  const std::string deep(100000, '[');
  const std::string message = error_of([&] {
    Reader r(deep, "deep.json");
    r.skip_value();
  });
  EXPECT_NE(message.find("nested too deeply"), std::string::npos);
}

TEST(JsonWriter, RoundTripsThroughReader) {
  std::string out;
  Writer w(out);
  w.begin_object()
      .key("name")
      .value("a\"b\\\n")
      .key("values")
      .begin_array()
      .value(0.1)
      .value(std::int64_t{-3})
      .value(true)
      .null()
      .end_array()
      .end_object();
  EXPECT_EQ(out, R"({"name":"a\"b\\\n","values":[0.1,-3,true,null]})");
  Reader r(out, "w.json");
  r.begin_object();
  std::string_view key;
  r.next_key(key);
  EXPECT_EQ(r.read_string(), "a\"b\\\n");
}

}  // namespace
}  // namespace centermask::json
