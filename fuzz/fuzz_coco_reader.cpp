// libFuzzer target: the COCO ground-truth and results readers on arbitrary bytes. Any input
// must either load or raise InputError; a loaded dataset's masks must rasterise.

#include <cstddef>
#include <cstdint>
#include <string>

#include "centermask/common/error.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"

namespace {

// A small valid dataset for the results reader to check results against.
const centermask::CocoDataset& reference_ground_truth() {
  static const centermask::CocoDataset gt = centermask::CocoDataset::parse(
      R"({"images": [{"id": 1, "height": 20, "width": 30}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25,
                           "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]]}]})",
      "reference");
  return gt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const centermask::CocoDataset d = centermask::CocoDataset::parse(text, "fuzz.json");
    for (std::size_t a = 0; a < d.annotations().size() && a < 16; ++a) {
      const centermask::CocoImage& image =
          d.images()[static_cast<std::size_t>(d.annotations()[a].image_index)];
      if (static_cast<std::uint64_t>(image.height) * static_cast<std::uint64_t>(image.width) <=
          (1u << 20))
        (void)d.mask(a);
    }
    (void)d.to_json();
  } catch (const centermask::InputError&) {
  } catch (const std::invalid_argument&) {
    // Polygons with absurd coordinates are rejected by the rasteriser when masks are made.
  }
  try {
    // Compressed masks of results with boxes are decoded where used: decode them too.
    const centermask::CocoResults results =
        centermask::CocoResults::parse(text, "fuzz.json", reference_ground_truth());
    for (std::size_t i = 0; i < results.size() && i < 16; ++i) (void)results.mask(i);
  } catch (const centermask::InputError&) {
  }
  return 0;
}
