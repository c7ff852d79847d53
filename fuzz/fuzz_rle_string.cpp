// libFuzzer target: the compressed-RLE decoder must reject or accept any byte string without
// crashing, and whatever it accepts must re-encode to a string that decodes to the same mask.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "centermask/structures/rle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first two bytes pick a small mask size so that valid strings are reachable.
  const int height = data[0] % 64, width = data[1] % 64;
  const std::string text(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string problem = centermask::rle_string_problem(text, height, width);
  centermask::Rle rle;
  try {
    rle = centermask::rle_from_string(text, height, width);
  } catch (const std::invalid_argument&) {
    if (problem.empty()) std::abort();  // the two entry points must agree
    return 0;
  }
  if (!problem.empty()) std::abort();
  const centermask::Rle again =
      centermask::rle_from_string(centermask::rle_to_string(rle), height, width);
  if (!(again == rle)) std::abort();
  (void)centermask::rle_area(rle);
  (void)centermask::rle_bbox(rle);
  return 0;
}
