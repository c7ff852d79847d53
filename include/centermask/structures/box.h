#pragma once

namespace centermask {

/// An axis-aligned box in COCO's convention: top-left corner and size, in pixels.
struct BoxXYWH {
  double x = 0;
  double y = 0;
  double width = 0;
  double height = 0;

  double area() const { return width * height; }
  bool operator==(const BoxXYWH& o) const {
    return x == o.x && y == o.y && width == o.width && height == o.height;
  }
};

/// COCO's box IoU; with `gt_is_crowd` the union is the detection's area alone.
double box_iou(const BoxXYWH& dt, const BoxXYWH& gt, bool gt_is_crowd);

}  // namespace centermask
