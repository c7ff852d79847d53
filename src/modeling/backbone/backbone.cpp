#include "centermask/modeling/backbone.h"

#include <fmt/format.h>

#include <stdexcept>

#include "modeling/backbone/backbones.h"

namespace centermask {

const std::vector<std::string>& backbone_names() {
  static const std::vector<std::string> names{"resnet18", "resnet34",    "resnet50",    "resnet101",
                                              "dla34",    "dla34_plain", "hourglass104"};
  return names;
}

bool has_fixed_widths(const std::string& backbone_name) {
  return backbone_name == "dla34" || backbone_name == "dla34_plain" ||
         backbone_name == "hourglass104";
}

std::shared_ptr<BackboneImpl> build_backbone(const BackboneOptions& options) {
  if (options.width < 8 || options.width % 8 != 0)
    throw std::invalid_argument(
        fmt::format("backbone width must be a positive multiple of 8, got {}", options.width));
  if (has_fixed_widths(options.name)) {
    if (options.width != 64)
      throw std::invalid_argument(
          fmt::format("backbone width applies to ResNets; {} has its own widths", options.name));
    if (options.skip_connections)
      throw std::invalid_argument(
          fmt::format("backbone skip connections apply to ResNets; {} aggregates its stages itself",
                      options.name));
    if (options.output_channels != 0)
      throw std::invalid_argument(
          fmt::format("backbone output channels apply to ResNets; {} keeps its own", options.name));
    if (options.name == "hourglass104") return make_hourglass104();
    return make_dla34(/*deformable=*/options.name == "dla34");
  }
  if (options.output_channels < 0)
    throw std::invalid_argument(fmt::format(
        "backbone output channels must be ≥ 0 (0 = the width), got {}", options.output_channels));
  const int depth = options.name == "resnet18"    ? 18
                    : options.name == "resnet34"  ? 34
                    : options.name == "resnet50"  ? 50
                    : options.name == "resnet101" ? 101
                                                  : 0;
  if (depth > 0)
    return make_resnet(depth, options.width, options.skip_connections, options.output_channels);
  throw std::invalid_argument(fmt::format("unknown backbone \"{}\" (expected one of: {})",
                                          options.name, fmt::join(backbone_names(), ", ")));
}

void check_input_size(int height, int width, int divisor) {
  if (height <= 0 || width <= 0 || height % divisor != 0 || width % divisor != 0)
    throw std::invalid_argument(fmt::format(
        "input size {}x{} (height x width) is not a positive multiple of {} on both sides, "
        "which the backbone needs (pad the input, e.g. the test transform's size_divisor)",
        height, width, divisor));
}

}  // namespace centermask
