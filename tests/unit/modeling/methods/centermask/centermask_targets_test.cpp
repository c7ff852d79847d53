#include "centermask/modeling/methods/centermask/centermask_targets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "centermask/common/random.h"

namespace centermask {
namespace {

Instance box_instance(float x0, float y0, float x1, float y1, int cls) {
  Instance inst;
  inst.box = {x0, y0, x1, y1};
  inst.class_index = cls;
  return inst;
}

// A filled rectangle mask over [x0, x1) × [y0, y1) pixels.
Instance rect_instance(int x0, int y0, int x1, int y1, int cls) {
  Instance inst = box_instance(static_cast<float>(x0), static_cast<float>(y0),
                               static_cast<float>(x1), static_cast<float>(y1), cls);
  inst.has_mask = true;
  inst.mask = {x0, y0, x1 - x0, y1 - y0,
               std::vector<std::uint8_t>(static_cast<std::size_t>((x1 - x0) * (y1 - y0)), 1)};
  return inst;
}

CenterMaskTargetOptions options(int classes) {
  CenterMaskTargetOptions o;
  o.num_classes = classes;
  o.stride = 4;
  o.max_objects = 32;
  return o;
}

TEST(GaussianRadius, MatchesCenterNetsFormula) {
  // Reference values from CenterNet's gaussian_radius (Python), min_overlap 0.7.
  EXPECT_NEAR(gaussian_radius(10, 10), 2.7332005306815113, 1e-12);
  EXPECT_NEAR(gaussian_radius(3, 17), 1.4544491975611997, 1e-12);
  EXPECT_NEAR(gaussian_radius(1, 1), 0.2733200530681512, 1e-12);
  EXPECT_NEAR(gaussian_radius(40, 25), 8.446732987271808, 1e-12);
}

TEST(DrawGaussian, PeakIsOneSigmaIsDiameterOverSixAndBordersClip) {
  std::vector<float> map(5 * 6, 0.0f);
  draw_gaussian_max(map.data(), 5, 6, 0, 0, 2);  // corner: only a quarter lands
  const double sigma = 5.0 / 6.0;
  EXPECT_FLOAT_EQ(map[0], 1.0f);
  EXPECT_FLOAT_EQ(map[1], static_cast<float>(std::exp(-1 / (2 * sigma * sigma))));
  EXPECT_FLOAT_EQ(map[2 * 6 + 2], static_cast<float>(std::exp(-8 / (2 * sigma * sigma))));
  EXPECT_EQ(map[3], 0.0f);  // beyond the radius
  EXPECT_EQ(map[3 * 6], 0.0f);
  // Element-wise max: a second, weaker overlap never lowers a value.
  const float before = map[1];
  draw_gaussian_max(map.data(), 5, 6, 3, 0, 0);
  EXPECT_EQ(map[1], before);
  EXPECT_EQ(map[3], 1.0f);
}

TEST(BoxCellRegion, CellsWhoseCentersAreInside) {
  const CellRegion r = box_cell_region(5.5f, 2.0f, 3.0f, 2.0f);  // x [4, 7), y [1, 3)
  EXPECT_EQ(r.x0, 4);
  EXPECT_EQ(r.x1, 7);
  EXPECT_EQ(r.y0, 1);
  EXPECT_EQ(r.y1, 3);
  const CellRegion thin = box_cell_region(5.2f, 5.2f, 0.3f, 0.3f);  // thinner than a cell
  EXPECT_EQ(thin.x0, 5);
  EXPECT_EQ(thin.width(), 1);
  EXPECT_EQ(thin.height(), 1);
}

// Decodes targets the way inference decodes network outputs: dense offset/size maps, peaks
// of the heatmap by 3×3 local maximum, box = center + offset ± size / 2.
std::vector<Instance> decode_like_inference(const CenterMaskTargets& t, int stride) {
  const int h = t.height, w = t.width;
  std::vector<float> offset_map(2 * static_cast<std::size_t>(h * w), 0),
      size_map(2 * static_cast<std::size_t>(h * w), 0);
  for (int k = 0; k < t.num_objects; ++k) {
    const auto i = static_cast<std::size_t>(t.center_index[static_cast<std::size_t>(k)]);
    offset_map[i] = t.offset[2 * static_cast<std::size_t>(k)];
    offset_map[static_cast<std::size_t>(h * w) + i] = t.offset[2 * static_cast<std::size_t>(k) + 1];
    size_map[i] = t.size[2 * static_cast<std::size_t>(k)];
    size_map[static_cast<std::size_t>(h * w) + i] = t.size[2 * static_cast<std::size_t>(k) + 1];
  }
  std::vector<Instance> out;
  for (int c = 0; c < t.num_classes; ++c) {
    const float* heat = t.heatmap.data() + static_cast<std::size_t>(c * h * w);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const float v = heat[y * w + x];
        if (v < 0.999f) continue;
        bool is_max = true;
        for (int dy = -1; dy <= 1; ++dy)
          for (int dx = -1; dx <= 1; ++dx) {
            const int yy = y + dy, xx = x + dx;
            if (yy >= 0 && xx >= 0 && yy < h && xx < w && heat[yy * w + xx] > v) is_max = false;
          }
        if (!is_max) continue;
        const std::size_t i = static_cast<std::size_t>(y * w + x);
        const float cx = static_cast<float>(x) + offset_map[i],
                    cy = static_cast<float>(y) + offset_map[static_cast<std::size_t>(h * w) + i];
        const float bw = size_map[i], bh = size_map[static_cast<std::size_t>(h * w) + i];
        out.push_back(box_instance((cx - bw / 2) * static_cast<float>(stride),
                                   (cy - bh / 2) * static_cast<float>(stride),
                                   (cx + bw / 2) * static_cast<float>(stride),
                                   (cy + bh / 2) * static_cast<float>(stride), c));
      }
  }
  return out;
}

TEST(CenterMaskTargets, RoundTripRecoversTheBoxes) {
  // Random boxes on an odd-sized input (not a multiple of the stride), at most one center per
  // cell and class, including boxes cut by the border.
  const int in_h = 101, in_w = 133, stride = 4;
  const int out_h = in_h / stride, out_w = in_w / stride;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    std::vector<Instance> gt;
    std::vector<std::pair<int, std::int64_t>> used;
    for (int i = 0; i < 12; ++i) {
      const float w = static_cast<float>(rng.uniform(2, 60)),
                  h = static_cast<float>(rng.uniform(2, 60));
      const float x0 = static_cast<float>(rng.uniform(-10, out_w * stride - 2.0)),
                  y0 = static_cast<float>(rng.uniform(-10, out_h * stride - 2.0));
      Instance inst = box_instance(x0, y0, x0 + w, y0 + h, static_cast<int>(rng.uniform_int(0, 2)));
      // Boxes are clipped to the map before encoding, so compare with the clipped box.
      inst.box = {std::max(0.0f, inst.box.x0), std::max(0.0f, inst.box.y0),
                  std::min(static_cast<float>(out_w * stride), inst.box.x1),
                  std::min(static_cast<float>(out_h * stride), inst.box.y1)};
      if (inst.box.width() <= 0 || inst.box.height() <= 0) continue;  // nothing left on the map
      const std::int64_t cell = static_cast<std::int64_t>(inst.box.center_y() / stride) * out_w +
                                static_cast<std::int64_t>(inst.box.center_x() / stride);
      // Keep centers of the same class at least 2 cells apart, so each has its own peak.
      bool clash = false;
      for (const auto& [cls, other] : used)
        clash |= cls == inst.class_index && std::abs(other % out_w - cell % out_w) <= 1 &&
                 std::abs(other / out_w - cell / out_w) <= 1;
      if (clash) continue;
      used.emplace_back(inst.class_index, cell);
      gt.push_back(inst);
    }
    const CenterMaskTargets t = encode_centermask_targets(gt, in_h, in_w, options(3));
    ASSERT_EQ(t.height, out_h);
    ASSERT_EQ(t.width, out_w);
    ASSERT_EQ(t.num_objects, static_cast<int>(gt.size()));
    const std::vector<Instance> decoded = decode_like_inference(t, stride);
    ASSERT_EQ(decoded.size(), gt.size()) << "seed " << seed;
    for (const Instance& g : gt) {
      const auto match = std::find_if(decoded.begin(), decoded.end(), [&](const Instance& d) {
        return d.class_index == g.class_index && std::abs(d.box.x0 - g.box.x0) < 1e-3f &&
               std::abs(d.box.y0 - g.box.y0) < 1e-3f && std::abs(d.box.x1 - g.box.x1) < 1e-3f &&
               std::abs(d.box.y1 - g.box.y1) < 1e-3f;
      });
      EXPECT_NE(match, decoded.end()) << "seed " << seed << " box " << g.box.x0 << "," << g.box.y0;
    }
  }
}

TEST(CenterMaskTargets, NoObjectsGivesZeroTargets) {
  const CenterMaskTargets t = encode_centermask_targets({}, 64, 48, options(2));
  EXPECT_EQ(t.num_objects, 0);
  EXPECT_EQ(t.heatmap.size(), 2u * 16 * 12);
  EXPECT_TRUE(std::all_of(t.heatmap.begin(), t.heatmap.end(), [](float v) { return v == 0; }));
  EXPECT_TRUE(std::all_of(t.valid.begin(), t.valid.end(), [](std::uint8_t v) { return v == 0; }));
  EXPECT_TRUE(t.mask_pixels.empty());
  EXPECT_EQ(t.mask_start.size(), 33u);
  EXPECT_EQ(t.mask_start.back(), 0);
}

TEST(CenterMaskTargets, TinyObjectIsOnePeakCell) {
  const CenterMaskTargets t =
      encode_centermask_targets({rect_instance(9, 13, 10, 14, 0)}, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 1);
  EXPECT_EQ(t.center_index[0], 3 * 8 + 2);
  EXPECT_FLOAT_EQ(t.offset[0], 9.5f / 4 - 2);
  EXPECT_FLOAT_EQ(t.size[0], 0.25f);
  EXPECT_EQ(std::count_if(t.heatmap.begin(), t.heatmap.end(), [](float v) { return v > 0; }), 1);
  const CellRegion r = t.clipped_region(0);
  EXPECT_EQ(r.width() * r.height(), 1);
  EXPECT_FLOAT_EQ(t.mask_pixels[0], 1.0f / 16);  // one of the cell's 16 pixels
}

TEST(CenterMaskTargets, BorderObjectCentersStayOnTheMap) {
  // A box reaching past the right and bottom edges: clipped, center cell inside.
  const CenterMaskTargets t =
      encode_centermask_targets({rect_instance(20, 24, 40, 40, 0)}, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 1);
  EXPECT_FLOAT_EQ(t.size[0], 3.0f);  // [5, 8) cells after clipping
  EXPECT_FLOAT_EQ(t.size[1], 2.0f);
  EXPECT_EQ(t.center_index[0], 7 * 8 + 6);
  const CellRegion r = t.clipped_region(0);
  EXPECT_LE(r.x1, 8);
  EXPECT_LE(r.y1, 8);
}

TEST(CenterMaskTargets, TwoCentersInOneCellKeepBothSlots) {
  // Same class, same center cell, different sizes: one heatmap peak, two regression slots
  // at the same index (CenterNet's behaviour: both are supervised there).
  const std::vector<Instance> gt = {rect_instance(8, 8, 24, 24, 0),
                                    rect_instance(14, 14, 18, 18, 0)};
  const CenterMaskTargets t = encode_centermask_targets(gt, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 2);
  EXPECT_EQ(t.center_index[0], t.center_index[1]);
  EXPECT_EQ(std::count_if(t.heatmap.begin(), t.heatmap.end(), [](float v) { return v == 1.0f; }),
            1);
  EXPECT_FLOAT_EQ(t.size[0], 4.0f);
  EXPECT_FLOAT_EQ(t.size[2], 1.0f);
}

TEST(CenterMaskTargets, MaskCropIsCoverageOfEachCell) {
  // A mask covering pixels x [4, 14), y [8, 16): cells x 1..3, y 2..3; the last column of cells
  // is half covered (pixels 12, 13 of 12..15).
  const CenterMaskTargets t =
      encode_centermask_targets({rect_instance(4, 8, 14, 16, 0)}, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 1);
  EXPECT_EQ(t.has_mask[0], 1);
  const CellRegion r = t.clipped_region(0);
  // Box [1, 3.5) × [2, 4) in cells: cell centers 1.5, 2.5 inside x; 3.5 is not (half-open).
  EXPECT_EQ(r.x0, 1);
  EXPECT_EQ(r.x1, 3);
  EXPECT_EQ(r.y0, 2);
  EXPECT_EQ(r.y1, 4);
  ASSERT_EQ(t.mask_start[1] - t.mask_start[0], 4);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(t.mask_pixels[static_cast<std::size_t>(i)], 1.0f);
  // A wider box with the same mask shows the half-covered column.
  Instance wide = rect_instance(4, 8, 14, 16, 0);
  wide.box.x1 = 16;
  const CenterMaskTargets w = encode_centermask_targets({wide}, 32, 32, options(1));
  const CellRegion rw = w.clipped_region(0);
  ASSERT_EQ(rw.width(), 3);
  EXPECT_FLOAT_EQ(w.mask_pixels[2], 0.5f);
}

TEST(CenterMaskTargets, BoxOnlyInstancesHaveNoMaskTarget) {
  const CenterMaskTargets t =
      encode_centermask_targets({box_instance(4, 4, 20, 20, 0)}, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 1);
  EXPECT_EQ(t.has_mask[0], 0);
  EXPECT_TRUE(
      std::all_of(t.mask_pixels.begin(), t.mask_pixels.end(), [](float v) { return v == 0; }));
}

TEST(CenterMaskTargets, ClassUnionMasksCountOverlapsOnce) {
  CenterMaskTargetOptions o = options(2);
  o.class_union_masks = true;
  const std::vector<Instance> gt = {rect_instance(0, 0, 8, 8, 1), rect_instance(4, 4, 12, 12, 1),
                                    rect_instance(20, 20, 24, 24, 0)};
  const CenterMaskTargets t = encode_centermask_targets(gt, 32, 32, o);
  ASSERT_EQ(t.class_masks.size(), 2u * 64);
  const float* c1 = t.class_masks.data() + 64;
  EXPECT_FLOAT_EQ(c1[1 * 8 + 1], 1.0f);  // covered by both: still 1
  EXPECT_FLOAT_EQ(c1[2 * 8 + 2], 1.0f);
  EXPECT_FLOAT_EQ(c1[0 * 8 + 2], 0.0f);
  EXPECT_FLOAT_EQ(t.class_masks[5 * 8 + 5], 1.0f);  // class 0
  EXPECT_FLOAT_EQ(t.class_masks[1 * 8 + 1], 0.0f);
}

TEST(CenterMaskTargets, FinerMaskStrideCropsAtThatResolution) {
  // The same mask as above at mask stride 2: box [2, 7) × [4, 8) in mask cells, fully covered
  // but for the last column (pixels 12, 13 of 12..13 → full; the box ends at 14 = cell 7).
  CenterMaskTargetOptions o = options(1);
  o.mask_stride = 2;
  o.class_union_masks = true;
  const CenterMaskTargets t =
      encode_centermask_targets({rect_instance(4, 8, 14, 16, 0)}, 32, 32, o);
  EXPECT_EQ(t.height, 8);
  EXPECT_EQ(t.mask_height, 16);
  EXPECT_EQ(t.mask_width, 16);
  const CellRegion r = t.clipped_region(0);
  EXPECT_EQ(r.x0, 2);
  EXPECT_EQ(r.x1, 7);
  EXPECT_EQ(r.y0, 4);
  EXPECT_EQ(r.y1, 8);
  ASSERT_EQ(t.mask_start[1] - t.mask_start[0], 20);
  for (int i = 0; i < 20; ++i) EXPECT_FLOAT_EQ(t.mask_pixels[static_cast<std::size_t>(i)], 1.0f);
  // The union mask is at the mask resolution too: 10 × 8 pixels = 5 × 4 cells of 2 × 2.
  ASSERT_EQ(t.class_masks.size(), 256u);
  float covered = 0;
  for (float v : t.class_masks) covered += v;
  EXPECT_FLOAT_EQ(covered, 20.0f);
  // Mask stride 1: crops are the pixels themselves.
  o.mask_stride = 1;
  const CenterMaskTargets p =
      encode_centermask_targets({rect_instance(4, 8, 14, 16, 0)}, 32, 32, o);
  EXPECT_EQ(p.mask_start[1] - p.mask_start[0], 80);
  o.mask_stride = 3;  // not a divisor of 4
  EXPECT_THROW(encode_centermask_targets({}, 32, 32, o), std::invalid_argument);
}

TEST(CenterMaskTargets, DenseBoxWeightsSumToOnePerObjectAndTheSmallerWins) {
  CenterMaskTargetOptions o = options(1);
  o.dense_box = true;
  // A large box and a small one inside it; centers at different cells.
  const std::vector<Instance> gt = {rect_instance(0, 0, 64, 48, 0),
                                    rect_instance(36, 20, 52, 36, 0)};
  const CenterMaskTargets t = encode_centermask_targets(gt, 64, 64, o);
  ASSERT_EQ(t.box_weight.size(), 256u);
  const std::size_t cells = 256;
  // The small box (cells [9, 13) × [5, 9), center (11, 7)) owns its cells: there the targets
  // are its size and the offsets to its center.
  const std::size_t at_small = 7 * 16 + 11;
  EXPECT_FLOAT_EQ(t.box_target[2 * cells + at_small], 4.0f);
  EXPECT_FLOAT_EQ(t.box_target[3 * cells + at_small], 4.0f);
  EXPECT_FLOAT_EQ(t.box_target[at_small], 0.0f);
  const std::size_t beside = 7 * 16 + 10;  // one cell left of the small center
  EXPECT_FLOAT_EQ(t.box_target[beside], 1.0f);
  EXPECT_FLOAT_EQ(t.box_target[2 * cells + beside], 4.0f);
  // The large box's center cell (8, 6) is its own, with its full size.
  const std::size_t at_large = 6 * 16 + 8;
  EXPECT_FLOAT_EQ(t.box_target[2 * cells + at_large], 16.0f);
  EXPECT_FLOAT_EQ(t.box_target[3 * cells + at_large], 12.0f);
  // Alone, each object's weights sum to 1; the peak weight is at its center.
  for (const Instance& one : gt) {
    const CenterMaskTargets single = encode_centermask_targets({one}, 64, 64, o);
    double sum = 0;
    for (float v : single.box_weight) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
    const auto peak = std::max_element(single.box_weight.begin(), single.box_weight.end());
    EXPECT_EQ(peak - single.box_weight.begin(), single.center_index[0]);
  }
  // Off by default.
  EXPECT_TRUE(encode_centermask_targets(gt, 64, 64, options(1)).box_weight.empty());
}

TEST(CenterMaskTargets, SlotsRememberTheirSourceInstance) {
  const std::vector<Instance> gt = {box_instance(5, 5, 5, 9, 0), rect_instance(8, 8, 12, 12, 0)};
  const CenterMaskTargets t = encode_centermask_targets(gt, 32, 32, options(1));
  ASSERT_EQ(t.num_objects, 1);
  EXPECT_EQ(t.source_index[0], 1);  // the zero-area box was skipped
}

TEST(CenterMaskTargets, ObjectsBeyondTheSlotsAreCounted) {
  CenterMaskTargetOptions o = options(1);
  o.max_objects = 2;
  const std::vector<Instance> gt = {rect_instance(0, 0, 4, 4, 0), rect_instance(8, 8, 12, 12, 0),
                                    rect_instance(16, 16, 20, 20, 0)};
  const CenterMaskTargets t = encode_centermask_targets(gt, 32, 32, o);
  EXPECT_EQ(t.num_objects, 2);
  EXPECT_EQ(t.dropped_over_max, 1);
  // Zero-area boxes never become objects.
  const CenterMaskTargets z =
      encode_centermask_targets({box_instance(5, 5, 5, 9, 0)}, 32, 32, options(1));
  EXPECT_EQ(z.num_objects, 0);
  EXPECT_EQ(z.dropped_too_small, 1);
}

}  // namespace
}  // namespace centermask
