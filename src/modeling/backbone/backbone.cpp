#include "centermask/modeling/backbone.h"

#include <fmt/format.h>

#include <stdexcept>

#include "modeling/backbone/backbones.h"

namespace centermask {

const std::vector<std::string>& backbone_names() {
  static const std::vector<std::string> names{"resnet18", "resnet34", "resnet50", "resnet101",
                                              "dla34"};
  return names;
}

std::shared_ptr<BackboneImpl> build_backbone(const BackboneOptions& options) {
  if (options.width < 8 || options.width % 8 != 0)
    throw std::invalid_argument(
        fmt::format("backbone width must be a positive multiple of 8, got {}", options.width));
  if (options.name == "dla34") {
    if (options.width != 64)
      throw std::invalid_argument("backbone width applies to ResNets; dla34 has its own widths");
    if (options.skip_connections)
      throw std::invalid_argument(
          "backbone skip connections apply to ResNets; dla34 aggregates its stages itself");
    return make_dla34();
  }
  if (options.name == "resnet18") return make_resnet(18, options.width, options.skip_connections);
  if (options.name == "resnet34") return make_resnet(34, options.width, options.skip_connections);
  if (options.name == "resnet50") return make_resnet(50, options.width, options.skip_connections);
  if (options.name == "resnet101") return make_resnet(101, options.width, options.skip_connections);
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
