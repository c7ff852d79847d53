#include <gtest/gtest.h>

#include <random>

#include "centermask/structures/rle.h"
#include "support/bitmap.h"

namespace centermask {
namespace {

Rle encode(const testing::Bitmap& b) {
  return rle_encode(b.pixels.data(), b.height, b.width, static_cast<std::size_t>(b.width));
}

TEST(RleString, RoundTripsRandomMasks) {
  std::mt19937 rng(11);
  for (auto [h, w] :
       std::vector<std::pair<int, int>>{{1, 1}, {13, 7}, {200, 3}, {64, 64}, {480, 640}}) {
    for (double fill : {0.0, 0.02, 0.5, 1.0}) {
      const Rle r = encode(testing::random_bitmap(h, w, rng, fill, 0.95));
      const std::string s = rle_to_string(r);
      for (char c : s) {
        ASSERT_GE(c, 48);
        ASSERT_LE(c, 111);
      }
      EXPECT_EQ(rle_from_string(s, h, w), r);
      EXPECT_EQ(rle_string_problem(s, h, w), "");
    }
  }
}

TEST(RleString, DecodesPycocotoolsStringsAndReencodesByteForByte) {
  // Strings written by pycocotools (tests/data/coco_eval/empty/gt.json) with the box and area
  // pycocotools reports for them.
  struct Case {
    const char* text;
    BoxXYWH box;
    std::uint64_t area;
  };
  const Case cases[] = {
      {"jn1b1f40000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "000000000000000fZk0",
       {10, 10, 50, 50},
       2500},
      {"hag0d0d50000000000000000000000000000000000000Xc;", {120, 120, 20, 20}, 400},
  };
  for (const Case& c : cases) {
    const Rle r = rle_from_string(c.text, 200, 200);
    EXPECT_EQ(rle_area(r), c.area);
    EXPECT_EQ(rle_bbox(r), c.box);
    EXPECT_EQ(rle_to_string(r), c.text);
  }
}

TEST(RleString, EncodesNegativeDeltas) {
  // Deltas against the count two back go negative when runs shrink.
  Rle r;
  r.height = 100;
  r.width = 10;
  r.counts = {500, 300, 100, 50, 40, 10};
  EXPECT_EQ(rle_from_string(rle_to_string(r), 100, 10), r);
}

TEST(RleString, RejectsCorruptStrings) {
  const std::string good = rle_to_string(rle_empty(10, 10));
  EXPECT_EQ(rle_string_problem(good, 10, 10), "");
  // Out of the 48..111 alphabet.
  EXPECT_NE(rle_string_problem("!", 10, 10).find("invalid character"), std::string::npos);
  EXPECT_NE(rle_string_problem("~", 10, 10).find("invalid character"), std::string::npos);
  // 'P' (80 - 48 = 32) has the continuation bit and then the string ends.
  EXPECT_NE(rle_string_problem("P", 10, 10).find("ends inside"), std::string::npos);
  // Valid encoding, wrong size.
  EXPECT_NE(rle_string_problem(good, 10, 11).find("cover"), std::string::npos);
  // A negative first count: '?' is 15 with the sign bit (0x10) not set... use 0x1f = 'O'.
  EXPECT_NE(rle_string_problem("O", 10, 10).find("out of range"), std::string::npos);
  // Too many continuation characters.
  EXPECT_FALSE(rle_string_problem(std::string(40, 'o') + "0", 10, 10).empty());
  EXPECT_THROW(rle_from_string("!", 10, 10), std::invalid_argument);
  // Empty string is valid only for an empty mask.
  EXPECT_EQ(rle_string_problem("", 0, 0), "");
  EXPECT_FALSE(rle_string_problem("", 3, 3).empty());
}

// The word-at-a-time decoder against the character-at-a-time reference: the same counts for
// every valid string and the same message for every corrupt one, on strings of every length
// around the 8-character word (so each tail case is hit), random masks, long counts (7
// characters), counts written with needless extra characters, and random corruptions.
TEST(RleString, WordDecoderAgreesWithTheReferenceOnValidAndCorruptStrings) {
  std::mt19937 rng(5);
  auto decode_both = [](const std::string& text, int h, int w) {
    const std::size_t room = rle_string_num_counts(text);
    std::vector<std::uint32_t> fast(room + 1, 7), reference(room + 1, 7);
    std::size_t n_fast = 99, n_reference = 99;
    const std::string problem_fast = rle_decode_string_into(text, h, w, fast.data(), &n_fast);
    const std::string problem_reference =
        rle_decode_string_reference(text, h, w, reference.data(), &n_reference);
    EXPECT_EQ(problem_fast, problem_reference) << text;
    if (problem_reference.empty()) {
      EXPECT_EQ(n_fast, n_reference) << text;
      EXPECT_EQ(n_reference, room) << text;
      fast.resize(n_fast);
      reference.resize(n_reference);
      EXPECT_EQ(fast, reference) << text;
    }
    // The check without a decode passes every valid string, and where it fails it gives the
    // reference's message.
    const std::string syntax = rle_string_syntax_problem(text, h, w);
    if (problem_reference.empty()) EXPECT_EQ(syntax, "") << text;
    if (!syntax.empty()) EXPECT_EQ(syntax, problem_reference) << text;
    return problem_reference.empty();
  };
  int valid = 0, corrupt = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 40), w = 1 + static_cast<int>(rng() % 40);
    Rle r = encode(testing::random_bitmap(h, w, rng, (rng() % 100) / 100.0, 0.9));
    std::string text = rle_to_string(r);
    switch (trial % 6) {
      case 0:
        break;   // as written
      case 1: {  // a huge mask: long counts and negative deltas
        Rle big;
        big.height = 65535;
        big.width = 65535;
        std::uint64_t left = big.num_pixels();
        while (left > 0) {
          const std::uint64_t run =
              std::min<std::uint64_t>(left, rng() % 4 == 0 ? rng() : rng() % 50);
          big.counts.push_back(static_cast<std::uint32_t>(run));
          left -= run;
        }
        text = rle_to_string(big);
        valid += decode_both(text, big.height, big.width);
        continue;
      }
      case 2:  // one character changed
        if (!text.empty()) text[rng() % text.size()] = static_cast<char>(40 + rng() % 80);
        break;
      case 3:  // cut short
        text.resize(text.size() - rng() % (text.size() + 1));
        break;
      case 4:  // a character inserted
        text.insert(text.begin() + static_cast<std::ptrdiff_t>(rng() % (text.size() + 1)),
                    static_cast<char>(48 + rng() % 64));
        break;
      case 5:  // a zero count written with extra continuation characters ('P' is 0, more)
        text = std::string(rng() % 12, 'P') + "0" + text;
        break;
    }
    (decode_both(text, h, w) ? valid : corrupt) += 1;
  }
  EXPECT_GT(valid, 1000);
  EXPECT_GT(corrupt, 500);
}

TEST(RleString, SyntaxCheckFindsBadCharactersAndCutCountsWithoutDecoding) {
  EXPECT_EQ(rle_string_syntax_problem("", 0, 0), "");
  EXPECT_EQ(rle_string_syntax_problem("0`1", 10, 10), "");  // covers 48 of 100: for the decode
  EXPECT_NE(rle_string_syntax_problem("0`1", 10, 10), rle_string_problem("0`1", 10, 10));
  EXPECT_NE(rle_string_syntax_problem("0`1!", 10, 10).find("invalid character at position 3"),
            std::string::npos);
  EXPECT_NE(rle_string_syntax_problem("0`1a", 10, 10).find("ends inside a count"),
            std::string::npos);
  EXPECT_NE(rle_string_syntax_problem(std::string(40, '0') + "\x80", 10, 10).find("position 40"),
            std::string::npos);
}

}  // namespace
}  // namespace centermask
