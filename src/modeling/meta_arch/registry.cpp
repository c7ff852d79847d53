#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "centermask/modeling/meta_arch_registry.h"

namespace centermask {

const std::vector<std::string>& known_meta_architectures() {
  static const std::vector<std::string> known = {"centermask"};
  return known;
}

std::string describe_known_meta_architectures() {
  std::string out;
  for (const std::string& name : known_meta_architectures())
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config) {
  if (config.meta_arch == "centermask")
    return std::make_shared<CenterMaskImpl>(static_cast<const CenterMaskOptions&>(config));
  throw std::invalid_argument(fmt::format("model.meta_arch: unknown method '{}' (known: {})",
                                          config.meta_arch, describe_known_meta_architectures()));
}

}  // namespace centermask
