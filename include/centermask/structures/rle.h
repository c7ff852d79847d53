#pragma once
// Binary masks in COCO's run-length encoding (RLE). Semantics follow pycocotools exactly:
// pixels are visited column by column (Fortran order) and the runs alternate 0, 1, 0, ...,
// starting with a (possibly empty) run of zeros. Results here are bit-identical to
// pycocotools' maskApi, which is what makes our evaluator agree with the reference.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "centermask/common/span.h"
#include "centermask/structures/box.h"

namespace centermask {

struct Rle {
  std::int32_t height = 0;
  std::int32_t width = 0;
  /// Run lengths; they sum to height * width.
  std::vector<std::uint32_t> counts;

  std::uint64_t num_pixels() const {
    return static_cast<std::uint64_t>(height) * static_cast<std::uint64_t>(width);
  }
  bool operator==(const Rle& o) const {
    return height == o.height && width == o.width && counts == o.counts;
  }
};

/// Largest height * width we accept: counts are 32-bit in COCO's format.
constexpr std::uint64_t kMaxMaskPixels = 0xFFFFFFFFull;

/// Encodes a row-major bitmap (nonzero = foreground) with `row_stride` bytes between rows.
Rle rle_encode(const std::uint8_t* bitmap, int height, int width, std::size_t row_stride);
/// Encodes a column-major bitmap (as pycocotools' encode takes a Fortran-order array).
Rle rle_encode_column_major(const std::uint8_t* bitmap, int height, int width);
/// Decodes into a row-major bitmap of 0/1 bytes with `row_stride` bytes between rows.
void rle_decode(const Rle& rle, std::uint8_t* bitmap, std::size_t row_stride);
/// An all-zero mask.
Rle rle_empty(int height, int width);

/// Foreground pixel count.
std::uint64_t rle_area(const Rle& rle);
/// Tight box of the foreground as pycocotools' toBbox computes it; all zeros when empty.
BoxXYWH rle_bbox(const Rle& rle);

/// Union (or intersection) of masks of equal size. Throws std::invalid_argument on size mismatch.
Rle rle_merge(Span<Rle> masks, bool intersect);

/// IoU of two masks of equal size; with `gt_is_crowd` the union is the detection's area
/// (COCO's crowd rule). Throws std::invalid_argument on size mismatch.
double rle_iou(const Rle& dt, const Rle& gt, bool gt_is_crowd);
/// IoU matrix, row-major (dts.size(), gts.size()). `gt_is_crowd` has one flag per gt.
std::vector<double> rle_iou_matrix(Span<Rle> dts, Span<Rle> gts, Span<std::uint8_t> gt_is_crowd);

/// Rasterises one closed polygon (x0, y0, x1, y1, ...) as pycocotools' rleFrPoly does.
/// Needs at least 3 points and finite coordinates; throws std::invalid_argument otherwise.
Rle rle_from_polygon(Span<double> xy, int height, int width);
/// The same, walking every point of the upsampled outline as pycocotools does: the reference
/// rle_from_polygon is tested against (it computes only the pairs of points that can cross a
/// pixel column's center).
Rle rle_from_polygon_reference(Span<double> xy, int height, int width);
/// Union of several polygons (one COCO "segmentation" list).
Rle rle_from_polygons(const std::vector<Span<double>>& polygons, int height, int width);
/// The box as a mask, as pycocotools' frBbox does (via its 4-corner polygon).
Rle rle_from_box(const BoxXYWH& box, int height, int width);

/// COCO's compressed string form (pycocotools rleToString), byte-identical.
std::string rle_to_string(const Rle& rle);
/// Parses COCO's compressed string form. Throws std::invalid_argument describing the problem
/// if a character is out of range, the string ends inside a number, a count is negative or
/// the counts do not sum to height * width.
Rle rle_from_string(std::string_view text, int height, int width);
/// The same validation without building the mask: returns "" when valid, else the problem.
std::string rle_string_problem(std::string_view text, int height, int width);
/// A check of the string alone, without decoding, cheap enough to run on every mask at load:
/// every character in COCO's alphabet and the last one ending a count. Returns "" when it
/// passes (the counts may still not cover the mask: only a decode finds that), else the
/// reference decoder's description of the problem at this size.
std::string rle_string_syntax_problem(std::string_view text, int height, int width);
/// The number of run lengths `text` holds when valid (its characters that end a count): room
/// enough for rle_decode_string_into, found without decoding.
std::size_t rle_string_num_counts(std::string_view text);
/// Decodes and validates into `counts`, which has room for rle_string_num_counts(text) values,
/// so that many masks can be decoded in place into one array. Returns "" and sets
/// *num_written, or returns the problem (the values written are then meaningless).
std::string rle_decode_string_into(std::string_view text, int height, int width,
                                   std::uint32_t* counts, std::size_t* num_written);
/// The character-at-a-time decoder that rle_decode_string_into's word-at-a-time path is tested
/// against (and falls back to for every error message).
std::string rle_decode_string_reference(std::string_view text, int height, int width,
                                        std::uint32_t* counts, std::size_t* num_written);

}  // namespace centermask
