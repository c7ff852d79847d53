#include "centermask/modeling/method_registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <stdexcept>

#include "modeling/methods/registry.h"

namespace centermask {
namespace {

// The registered methods: the built-in ones, then those of register_method(). Registrations
// are kept for the program's life (references to them stay valid: a deque-like vector of
// unique pointers).
struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<MethodRegistration>> methods;
  Registry() {
    for (MethodRegistration& method : builtin_methods())
      methods.push_back(std::make_unique<MethodRegistration>(std::move(method)));
  }
};

Registry& registry() {
  static Registry instance;
  return instance;
}

bool is_identifier(const std::string& name) {
  if (name.empty() || !std::islower(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

void register_method(MethodRegistration method) {
  if (!is_identifier(method.name))
    throw std::invalid_argument(
        fmt::format("register_method: '{}' is not a method name (lower-case letters, digits and _)",
                    method.name));
  if (!method.default_options || !method.validate || !method.build || !method.describe)
    throw std::invalid_argument(fmt::format(
        "register_method: {} needs default_options, validate, build and describe", method.name));
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto& known : r.methods)
    if (known->name == method.name)
      throw std::invalid_argument(
          fmt::format("register_method: a method named '{}' is registered already", method.name));
  r.methods.push_back(std::make_unique<MethodRegistration>(std::move(method)));
}

const MethodRegistration& find_method(const std::string& name) {
  Registry& r = registry();
  {
    const std::lock_guard<std::mutex> lock(r.mutex);
    for (const auto& method : r.methods)
      if (method->name == name) return *method;
  }
  throw std::invalid_argument(fmt::format("model.meta_arch: unknown method '{}' (known: {})", name,
                                          describe_known_meta_architectures()));
}

bool is_registered_method(const std::string& name) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  return std::any_of(r.methods.begin(), r.methods.end(),
                     [&](const auto& method) { return method->name == name; });
}

std::vector<std::string> registered_method_names() {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& method : r.methods) names.push_back(method->name);
  return names;
}

std::string describe_known_meta_architectures() {
  std::string out;
  for (const std::string& name : registered_method_names()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config) {
  return find_method(config.meta_arch).build(config);
}

std::vector<AblationVariant> ablation_variants(const std::string& meta_arch) {
  const MethodRegistration& method = find_method(meta_arch);
  return method.ablation_variants ? method.ablation_variants() : std::vector<AblationVariant>{};
}

std::string describe_model(const ModelConfig& config) {
  return find_method(config.meta_arch).describe(config);
}

// ModelConfig's method options live here: they come from the registry.

ModelConfig::ModelConfig() {
  for (const std::string& name : registered_method_names())
    methods_.emplace(name, find_method(name).default_options());
}

ModelConfig::ModelConfig(const ModelConfig& other)
    : meta_arch(other.meta_arch),
      num_classes(other.num_classes),
      backbone(other.backbone),
      backbone_width(other.backbone_width),
      backbone_weights(other.backbone_weights) {
  for (const auto& [name, options] : other.methods_) methods_.emplace(name, options->clone());
}

ModelConfig& ModelConfig::operator=(const ModelConfig& other) {
  if (this != &other) *this = ModelConfig(other);
  return *this;
}

MethodOptions& ModelConfig::options_of(const std::string& name) {
  return const_cast<MethodOptions&>(static_cast<const ModelConfig&>(*this).options_of(name));
}

const MethodOptions& ModelConfig::options_of(const std::string& name) const {
  auto it = methods_.find(name);
  if (it == methods_.end()) it = methods_.emplace(name, find_method(name).default_options()).first;
  return *it->second;
}

}  // namespace centermask
