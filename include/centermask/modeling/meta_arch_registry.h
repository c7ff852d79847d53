#pragma once
// The one place that maps model.meta_arch to a method. The engine builds models here and
// otherwise sees only MetaArchitectureImpl (meta_arch.h).
#include <memory>
#include <string>
#include <vector>

#include "centermask/modeling/centermask.h"
#include "centermask/modeling/meta_arch.h"

namespace centermask {

/// The config's `model` section: the method (model.meta_arch) and its options. CenterMask's
/// options are the section's top-level keys (as before methods were pluggable, so earlier
/// configs and checkpoints load unchanged).
struct ModelConfig : CenterMaskOptions {
  std::string meta_arch = "centermask";
};

/// The values model.meta_arch accepts.
const std::vector<std::string>& known_meta_architectures();
/// "centermask" or "centermask, polarmask": for messages.
std::string describe_known_meta_architectures();

/// The method of `config`, initialised from torch's current seed. std::invalid_argument naming
/// model.meta_arch and the known methods for an unknown one, or the method's own option errors.
std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config);

}  // namespace centermask
