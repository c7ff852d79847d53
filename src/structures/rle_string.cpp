// COCO's compressed RLE strings (pycocotools rleToString / rleFrString): each count, delta-coded
// against the count two places back from the third on, is written 5 bits per character,
// least significant first, with bit 0x20 marking "more follows" and 48 added to land in
// printable ASCII. Decoding here also validates, because these strings come from files.

#include <cstring>
#include <stdexcept>

#include "centermask/structures/rle.h"

namespace centermask {
namespace {

// A uint32 delta needs at most 7 characters; beyond 12 the 64-bit accumulator would overflow.
constexpr int kMaxCharsPerCount = 12;

// The reference decoder, a character at a time: decodes into `counts` (when non-null; room for
// rle_string_num_counts(text) values: every count written ends at one of the characters
// counted there). Returns "" when valid, else what is wrong. decode_counts_words below is the
// fast path; this one also writes every error message.
std::string decode_counts(std::string_view text, int height, int width, std::uint32_t* counts,
                          std::size_t* num_written) {
  if (num_written) *num_written = 0;
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
    if (counts) counts[m] = static_cast<std::uint32_t>(x);
    before_last = last;
    last = x;
    ++m;
  }
  if (total != expected_total) {
    return "run lengths cover " + std::to_string(total) + " pixels, the mask size " +
           std::to_string(height) + "x" + std::to_string(width) + " has " +
           std::to_string(expected_total);
  }
  if (num_written) *num_written = m;
  return {};
}

// The fast path for valid strings, eight characters at a time: the characters of one count
// are found from the "more follows" bits of a 64-bit word, and their 5-bit groups packed in
// three shift-and-mask steps, with no branch per character (the reference's per-character
// branch mispredicts about once per count). Returns false, with nothing promised about
// `counts`, at anything unusual (a bad character, a count longer than 8 characters, a run
// out of range, a wrong total): the caller then runs the reference for the decode or the
// message. Same values as the reference wherever it returns true (tested on random strings).
bool decode_counts_words(std::string_view text, std::uint64_t expected_total, std::uint32_t* counts,
                         std::size_t* num_written) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  // Every character in 48..111, checked in one vectorisable pass.
  unsigned bad = 0;
  for (std::size_t i = 0; i < size; ++i) bad |= static_cast<unsigned char>(begin[i] - 48u) & 0xC0u;
  if (bad) return false;
  // The last words are read from a copy padded with '0' (a count of 0 that ends at once), so
  // that no read passes the string's end; a count running into the padding is caught below.
  unsigned char tail[16];
  std::memset(tail, '0', sizeof(tail));
  const std::size_t tail_start = size >= 8 ? size - 8 : 0;
  std::memcpy(tail, begin + tail_start, size - tail_start);
  std::size_t pos = 0, m = 0;
  std::int64_t before_last = 0, last = 0;
  std::uint64_t total = 0;
  while (pos < size) {
    std::uint64_t w;
    if (pos + 8 <= size) {
      std::memcpy(&w, begin + pos, 8);
    } else {
      std::memcpy(&w, tail + (pos - tail_start), 8);
    }
    w -= 0x3030303030303030ull;  // every byte >= 48: no borrows
    const std::uint64_t ends = ~w & 0x2020202020202020ull;
    if (ends == 0) return false;
    const int length = (__builtin_ctzll(ends) >> 3) + 1;
    if (pos + static_cast<std::size_t>(length) > size) return false;  // ends inside a count
    std::uint64_t g = w & 0x1F1F1F1F1F1F1F1Full;
    g = (g & 0x00FF00FF00FF00FFull) | ((g & 0xFF00FF00FF00FF00ull) >> 3);
    g = (g & 0x0000FFFF0000FFFFull) | ((g & 0xFFFF0000FFFF0000ull) >> 6);
    g = (g & 0x00000000FFFFFFFFull) | ((g & 0xFFFFFFFF00000000ull) >> 12);
    const int bits = 5 * length;
    std::int64_t x = static_cast<std::int64_t>(g & ((std::uint64_t{1} << bits) - 1));
    if ((w >> (8 * (length - 1))) & 0x10) x |= -(std::int64_t{1} << bits);
    if (m > 2) x += before_last;
    if (x < 0 || x > static_cast<std::int64_t>(kMaxMaskPixels)) return false;
    total += static_cast<std::uint64_t>(x);
    if (total > expected_total) return false;
    counts[m] = static_cast<std::uint32_t>(x);
    before_last = last;
    last = x;
    ++m;
    pos += static_cast<std::size_t>(length);
  }
  if (total != expected_total) return false;
  *num_written = m;
  return true;
}

// The fast path, and the reference wherever the fast path declines.
std::string decode_counts_fast(std::string_view text, int height, int width, std::uint32_t* counts,
                               std::size_t* num_written) {
  if (height >= 0 && width >= 0) {
    const std::uint64_t expected_total =
        static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width);
    if (expected_total <= kMaxMaskPixels &&
        decode_counts_words(text, expected_total, counts, num_written)) {
      return {};
    }
  }
  return decode_counts(text, height, width, counts, num_written);
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

std::size_t rle_string_num_counts(std::string_view text) {
  // A count ends at the character without the "more follows" bit. A plain loop over bytes,
  // which the compiler vectorises: this sizes every decode, so it must cost next to nothing.
  std::size_t n = 0;
  for (char c : text) n += ((static_cast<unsigned char>(c) - 48u) & 0x20u) == 0 ? 1 : 0;
  return n;
}

std::string rle_string_syntax_problem(std::string_view text, int height, int width) {
  // One vectorisable pass: a character outside 48..111 sets a high bit.
  unsigned bad = 0;
  for (char c : text)
    bad |= static_cast<unsigned char>(static_cast<unsigned char>(c) - 48u) & 0xC0u;
  const bool ends_a_count =
      text.empty() || ((static_cast<unsigned char>(text.back()) - 48u) & 0x20u) == 0;
  if (bad == 0 && ends_a_count) return {};
  return decode_counts(text, height, width, nullptr, nullptr);
}

std::string rle_decode_string_into(std::string_view text, int height, int width,
                                   std::uint32_t* counts, std::size_t* num_written) {
  return decode_counts_fast(text, height, width, counts, num_written);
}

std::string rle_decode_string_reference(std::string_view text, int height, int width,
                                        std::uint32_t* counts, std::size_t* num_written) {
  return decode_counts(text, height, width, counts, num_written);
}

Rle rle_from_string(std::string_view text, int height, int width) {
  Rle rle;
  rle.height = height;
  rle.width = width;
  rle.counts.resize(rle_string_num_counts(text));
  std::size_t n = 0;
  std::string problem = decode_counts_fast(text, height, width, rle.counts.data(), &n);
  if (!problem.empty()) throw std::invalid_argument("corrupt compressed RLE: " + problem);
  rle.counts.resize(n);
  return rle;
}

std::string rle_string_problem(std::string_view text, int height, int width) {
  return decode_counts(text, height, width, nullptr, nullptr);
}

}  // namespace centermask
