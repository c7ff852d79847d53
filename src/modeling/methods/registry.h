#pragma once
// The built-in methods (src/modeling/methods/registry.cpp); method_registry.cpp starts the
// registry with them.

#include <vector>

#include "centermask/modeling/method_registry.h"

namespace centermask {

std::vector<MethodRegistration> builtin_methods();

}  // namespace centermask
