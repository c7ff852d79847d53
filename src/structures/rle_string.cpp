// COCO's compressed RLE strings (pycocotools rleToString / rleFrString): each count, delta-coded
// against the count two places back from the third on, is written 5 bits per character,
// least significant first, with bit 0x20 marking "more follows" and 48 added to land in
// printable ASCII. Decoding here also validates, because these strings come from files.

#include <stdexcept>

#include "centermask/structures/rle.h"

namespace centermask {
namespace {

// A uint32 delta needs at most 7 characters; beyond 12 the 64-bit accumulator would overflow.
constexpr int kMaxCharsPerCount = 12;

// Decodes into `counts` (when non-null). Returns "" when valid, else what is wrong. This is the
// evaluator's hottest loop (every detection mask passes through it), hence the raw pointers.
std::string decode_counts(std::string_view text, int height, int width,
                          std::vector<std::uint32_t>* counts) {
  if (height < 0 || width < 0) return "negative mask size";
  const std::uint64_t expected_total =
      static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width);
  if (expected_total > kMaxMaskPixels) return "mask size exceeds COCO's 32-bit run lengths";
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = begin + text.size();
  const auto* s = begin;
  std::int64_t before_last = 0, last = 0;  // the deltas need only the previous two counts
  std::size_t m = 0;
  std::uint64_t total = 0;
  while (s < end) {
    std::int64_t x = 0;
    int shift = 0;
    unsigned c;
    do {
      if (s == end)
        return "string ends inside a count (character " + std::to_string(s - begin) + ")";
      c = static_cast<unsigned>(*s) - 48u;
      if (c > 63u) {
        return "invalid character at position " + std::to_string(s - begin) +
               " (COCO RLE strings use ASCII 48-111)";
      }
      ++s;
      x |= static_cast<std::int64_t>(c & 0x1f) << shift;
      shift += 5;
    } while ((c & 0x20) && shift < 5 * kMaxCharsPerCount);
    if (c & 0x20) return "count too long at position " + std::to_string(s - begin);
    if (c & 0x10) x |= -(std::int64_t{1} << shift);  // sign-extend a negative delta
    if (m > 2) x += before_last;
    if (x < 0 || x > static_cast<std::int64_t>(kMaxMaskPixels)) {
      return "run length " + std::to_string(x) + " out of range (count " + std::to_string(m) + ")";
    }
    total += static_cast<std::uint64_t>(x);
    if (total > expected_total) break;
    if (counts) counts->push_back(static_cast<std::uint32_t>(x));
    before_last = last;
    last = x;
    ++m;
  }
  if (total != expected_total) {
    return "run lengths cover " + std::to_string(total) + " pixels, the mask size " +
           std::to_string(height) + "x" + std::to_string(width) + " has " +
           std::to_string(expected_total);
  }
  return {};
}

}  // namespace

std::string rle_to_string(const Rle& rle) {
  std::string out;
  out.reserve(rle.counts.size() * 2);
  for (std::size_t i = 0; i < rle.counts.size(); ++i) {
    std::int64_t x = rle.counts[i];
    if (i > 2) x -= static_cast<std::int64_t>(rle.counts[i - 2]);
    bool more = true;
    while (more) {
      char c = static_cast<char>(x & 0x1f);
      x >>= 5;  // arithmetic shift: negative deltas sign-extend
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      out += static_cast<char>(c + 48);
    }
  }
  return out;
}

Rle rle_from_string(std::string_view text, int height, int width) {
  Rle rle;
  rle.height = height;
  rle.width = width;
  rle.counts.reserve(text.size());
  std::string problem = decode_counts(text, height, width, &rle.counts);
  if (!problem.empty()) throw std::invalid_argument("corrupt compressed RLE: " + problem);
  return rle;
}

std::string rle_string_problem(std::string_view text, int height, int width) {
  return decode_counts(text, height, width, nullptr);
}

}  // namespace centermask
