#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/structures/rle.h"
#include "support/test_paths.h"

namespace centermask {
namespace {

Rle polygon(std::vector<double> xy, int h, int w) {
  return rle_from_polygon(Span<double>(xy.data(), xy.size()), h, w);
}

TEST(RlePolygon, MatchesPycocotoolsStringsByteForByte) {
  // In the "perfect" case every result is pycocotools' encoding of a ground-truth mask
  // (polygons, uncompressed and compressed RLE): our rasterisation must give the same bytes.
  const std::filesystem::path dir = testing::test_data_dir() / "coco_eval" / "perfect";
  const CocoDataset gt = CocoDataset::load(dir / "gt.json");
  const CocoResults results = CocoResults::load(dir / "results.json", gt);
  int compared = 0, polygons = 0;
  for (std::size_t a = 0; a < gt.annotations().size(); ++a) {
    const CocoAnnotation& ann = gt.annotations()[a];
    for (std::size_t d = 0; d < results.size(); ++d) {
      const CocoDetection& det = results.detections()[d];
      if (det.image_id != ann.image_id || det.category_id != ann.category_id) continue;
      EXPECT_EQ(rle_to_string(gt.mask(a)), results.compressed_mask(d)) << "annotation " << ann.id;
      ++compared;
      polygons += ann.segmentation_format == SegmentationFormat::kPolygons;
    }
  }
  EXPECT_EQ(compared, 6);
  EXPECT_EQ(polygons, 2);
}

TEST(RlePolygon, IntegerRectangleCoversExactlyItsPixels) {
  for (auto [x, y, w, h] :
       std::vector<std::array<int, 4>>{{5, 5, 20, 20}, {0, 0, 7, 3}, {3, 1, 1, 9}}) {
    const Rle r = polygon({double(x), double(y), double(x + w), double(y), double(x + w),
                           double(y + h), double(x), double(y + h)},
                          40, 30);
    EXPECT_EQ(rle_area(r), static_cast<std::uint64_t>(w * h));
    EXPECT_EQ(rle_bbox(r), (BoxXYWH{double(x), double(y), double(w), double(h)}));
    EXPECT_EQ(rle_from_box({double(x), double(y), double(w), double(h)}, 40, 30), r);
  }
}

TEST(RlePolygon, AreaOfLargeShapesApproachesShoelaceArea) {
  // A non-convex "L" and a triangle, counter- and clockwise.
  const std::vector<std::vector<double>> shapes = {
      {10, 10, 90, 10, 90, 30, 30, 30, 30, 90, 10, 90},
      {20.3, 15.7, 180.2, 60.1, 70.9, 170.4},
      {70.9, 170.4, 180.2, 60.1, 20.3, 15.7},
  };
  for (const auto& xy : shapes) {
    double shoelace = 0;
    const std::size_t n = xy.size() / 2;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t j = (i + 1) % n;
      shoelace += xy[2 * i] * xy[2 * j + 1] - xy[2 * j] * xy[2 * i + 1];
    }
    shoelace = std::fabs(shoelace) / 2;
    const double area = static_cast<double>(rle_area(polygon(xy, 200, 200)));
    EXPECT_NEAR(area, shoelace, 0.03 * shoelace);
  }
}

TEST(RlePolygon, ClipsToTheImage) {
  const Rle r = polygon({-10, -10, 50, -10, 50, 50, -10, 50}, 20, 30);
  EXPECT_EQ(rle_area(r), 20u * 30u);
  const Rle outside = polygon({100, 100, 120, 100, 120, 120}, 20, 30);
  EXPECT_EQ(rle_area(outside), 0u);
}

TEST(RlePolygon, UnionOfPartsAndHoles) {
  const std::vector<double> a = {0, 0, 10, 0, 10, 10, 0, 10}, b = {5, 0, 15, 0, 15, 10, 5, 10};
  const Rle u = rle_from_polygons({Span<double>(a), Span<double>(b)}, 20, 20);
  EXPECT_EQ(rle_area(u), 150u);
  EXPECT_EQ(rle_area(rle_from_polygons({}, 20, 20)), 0u);
}

TEST(RlePolygon, RejectsDegenerateInput) {
  EXPECT_THROW(polygon({1, 1, 5, 5}, 10, 10), std::invalid_argument);
  EXPECT_THROW(polygon({1, 1, 5, 5, 3}, 10, 10), std::invalid_argument);
  EXPECT_THROW(polygon({1, 1, 5, NAN, 3, 3}, 10, 10), std::invalid_argument);
  EXPECT_THROW(polygon({1, 1, 5e9, 5, 3, 3}, 10, 10), std::invalid_argument);
  EXPECT_EQ(rle_area(polygon({1, 1, 5, 1, 5, 5}, 0, 0)), 0u);
}

// The walk that computes only the pairs of points that can cross a column's center against
// the walk over every point: the same mask on random polygons with fractional, integer,
// negative and out-of-image coordinates, repeated vertices (zero-length edges), long and
// steep edges, on odd image sizes.
TEST(RlePolygon, SkippingWalkAgreesWithEveryPointWalk) {
  std::mt19937 rng(11);
  int nonempty = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const int h = 1 + static_cast<int>(rng() % 97), w = 1 + static_cast<int>(rng() % 89);
    const std::size_t k = 3 + rng() % 12;
    std::vector<double> xy;
    for (std::size_t j = 0; j < k; ++j) {
      for (int axis = 0; axis < 2; ++axis) {
        const int extent = axis == 0 ? w : h;
        std::uniform_real_distribution<double> coordinate(-0.3 * extent - 3, 1.3 * extent + 3);
        double v = coordinate(rng);
        if (trial % 4 == 1) v = std::round(v);                // integer vertices
        if (trial % 4 == 2) v = std::round(v * 5) / 5 + 0.1;  // on the upsampled grid
        xy.push_back(v);
      }
      if (trial % 7 == 3 && j > 0 && rng() % 3 == 0) {  // a repeated vertex
        xy.push_back(xy[xy.size() - 2]);
        xy.push_back(xy[xy.size() - 2]);
      }
    }
    const Span<double> polygon_xy(xy.data(), xy.size());
    const Rle fast = rle_from_polygon(polygon_xy, h, w);
    const Rle reference = rle_from_polygon_reference(polygon_xy, h, w);
    ASSERT_EQ(fast, reference) << "trial " << trial;
    nonempty += rle_area(fast) > 0 ? 1 : 0;
  }
  EXPECT_GT(nonempty, 2000);
}

}  // namespace
}  // namespace centermask
