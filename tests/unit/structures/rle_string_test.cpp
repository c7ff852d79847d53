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

}  // namespace
}  // namespace centermask
