#pragma once
// The methods the engine can train, by name: each method registers itself with one
// MethodRegistration (its name, options and their keys, validation, network, ablation
// variants, description), and everything else — the config parser, the trainer, inference and
// every command — learns of it from that entry alone. The built-in methods' entries are the
// rows of src/modeling/methods/registry.cpp; a program (or a test) adds its own with
// register_method().
//
//   const MethodRegistration& method = find_method(config.model.meta_arch);
//   std::shared_ptr<MetaArchitectureImpl> model = method.build(config.model);

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "centermask/modeling/meta_arch.h"
#include "centermask/modeling/model_config.h"

namespace centermask {

/// A method's ablation variant for `centermask ablate`: a name, what it is, and the config
/// overrides that make it.
struct AblationVariant {
  std::string name;
  std::string description;
  std::vector<std::string> overrides;
};

struct MethodRegistration {
  /// model.meta_arch's value; the method's keys are model.<name>.*.
  std::string name;
  /// Its options at their defaults (MethodOptionsOf<TheMethodsOptions>).
  std::function<std::unique_ptr<MethodOptions>()> default_options;
  /// Checks the method's options together with the shared ones; std::invalid_argument naming
  /// the key (model.<name>.key, or a shared key) otherwise. num_classes is at least 1 here.
  std::function<void(const ModelConfig&)> validate;
  /// The network, initialised from torch's current seed.
  std::function<std::shared_ptr<MetaArchitectureImpl>(const ModelConfig&)> build;
  /// What `centermask ablate` trains (the paper's ablation tables); may be empty.
  std::function<std::vector<AblationVariant>()> ablation_variants;
  /// One line for logs and reports: "CenterMask (resnet18, S = 32, ...)".
  std::function<std::string(const ModelConfig&)> describe;
};

/// Adds a method; std::invalid_argument if the name is taken or not a plain identifier.
void register_method(MethodRegistration method);
/// The method named `name`; std::invalid_argument naming model.meta_arch and the known
/// methods otherwise.
const MethodRegistration& find_method(const std::string& name);
bool is_registered_method(const std::string& name);
/// Every registered method's name, the built-in ones first, in registration order.
std::vector<std::string> registered_method_names();
/// "centermask, polarmask, centermask_fcos": for messages.
std::string describe_known_meta_architectures();

/// build, ablation variants and describe of config.meta_arch's method.
std::shared_ptr<MetaArchitectureImpl> build_meta_architecture(const ModelConfig& config);
std::vector<AblationVariant> ablation_variants(const std::string& meta_arch);
std::string describe_model(const ModelConfig& config);

}  // namespace centermask
