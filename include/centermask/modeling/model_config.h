#pragma once
// The config's `model` section: what every method shares (model.meta_arch, num_classes,
// backbone, backbone_width, backbone_weights) and each registered method's own options
// (model.<method>.*), which the method declares itself (method_registry.h). The config layer
// reads and writes keys through OptionKeys without knowing any method; a method reads its
// options as its own struct.
//
//   ModelConfig model;                         // every registered method at its defaults
//   model.meta_arch = "polarmask";
//   model.method_options<PolarMaskOptions>().num_rays = 18;   // the method's typed options

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace centermask {

/// Where a method declares its config keys. Keys are relative to the method's section
/// (model.<method>.): "shape_size", "loss_weights.mask". Each binds a field of the method's
/// options, which the config layer sets from YAML and reads back for config.yaml.
class OptionKeys {
 public:
  virtual ~OptionKeys() = default;
  virtual void add_int(const std::string& key, const std::string& doc, int& value) = 0;
  virtual void add_double(const std::string& key, const std::string& doc, double& value) = 0;
  virtual void add_bool(const std::string& key, const std::string& doc, bool& value) = 0;
  virtual void add_string(const std::string& key, const std::string& doc, std::string& value) = 0;
  /// A value from a fixed list of names: `set` receives one of `names`, `get` returns the
  /// current one.
  virtual void add_choice(const std::string& key, const std::string& doc,
                          const std::vector<std::string>& names,
                          std::function<void(const std::string&)> set,
                          std::function<std::string()> get) = 0;

  /// An enum as one of its names.
  template <typename Enum>
  void add_enum(const std::string& key, const std::string& doc, Enum& value,
                const std::vector<std::pair<std::string, Enum>>& names) {
    std::vector<std::string> labels;
    for (const auto& entry : names) labels.push_back(entry.first);
    add_choice(
        key, doc, labels,
        [&value, names](const std::string& name) {
          for (const auto& [label, v] : names)
            if (label == name) value = v;
        },
        [&value, names] {
          for (const auto& [label, v] : names)
            if (v == value) return label;
          return std::string("?");
        });
  }
};

/// One method's options, type-erased: the config holds one per registered method.
class MethodOptions {
 public:
  virtual ~MethodOptions() = default;
  virtual std::unique_ptr<MethodOptions> clone() const = 0;
  /// Declares the options' keys, bound to this object's fields.
  virtual void declare_keys(OptionKeys& keys) = 0;
};

/// A method's options struct as MethodOptions. The struct's keys come from a free function
/// `void declare_option_keys(OptionKeys&, Options&)` beside the struct (found by argument-
/// dependent lookup).
template <typename Options>
class MethodOptionsOf final : public MethodOptions {
 public:
  Options value;
  std::unique_ptr<MethodOptions> clone() const override {
    return std::make_unique<MethodOptionsOf>(*this);
  }
  void declare_keys(OptionKeys& keys) override { declare_option_keys(keys, value); }
};

struct ModelConfig {
  /// Every registered method at its defaults; meta_arch "centermask".
  ModelConfig();
  ModelConfig(const ModelConfig& other);
  ModelConfig& operator=(const ModelConfig& other);
  ModelConfig(ModelConfig&&) noexcept = default;
  ModelConfig& operator=(ModelConfig&&) noexcept = default;

  std::string meta_arch = "centermask";  ///< the method (model.meta_arch)
  int num_classes = 80;                  ///< 0 in a training config = the dataset's count
  std::string backbone = "dla34";        ///< backbone_names() (modeling/backbone.h)
  int backbone_width = 64;               ///< ResNets' first-stage channels
  /// model.backbone_weights: a PyTorch state_dict file (torch.save) the backbone of a new run
  /// starts from (modeling/backbone_weights.h); empty = training from scratch (the paper's).
  std::string backbone_weights;

  /// The options of method `name` (model.<name>.*); methods registered after this config was
  /// made get their defaults on first use. std::invalid_argument for an unregistered name.
  MethodOptions& options_of(const std::string& name);
  const MethodOptions& options_of(const std::string& name) const;
  /// The chosen method's (meta_arch's) options as its struct. std::logic_error when the
  /// method's options are another type (a bug, not a user's mistake).
  template <typename Options>
  Options& method_options(const std::string& name);
  template <typename Options>
  const Options& method_options(const std::string& name) const;
  template <typename Options>
  Options& method_options() {
    return method_options<Options>(meta_arch);
  }
  template <typename Options>
  const Options& method_options() const {
    return method_options<Options>(meta_arch);
  }

 private:
  // Mutable: a method registered after construction is added on first (const) access.
  mutable std::map<std::string, std::unique_ptr<MethodOptions>> methods_;
};

template <typename Options>
Options& ModelConfig::method_options(const std::string& name) {
  auto* typed = dynamic_cast<MethodOptionsOf<Options>*>(&options_of(name));
  if (typed == nullptr)
    throw std::logic_error("model." + name + ": the method's options are of another type");
  return typed->value;
}

template <typename Options>
const Options& ModelConfig::method_options(const std::string& name) const {
  const auto* typed = dynamic_cast<const MethodOptionsOf<Options>*>(&options_of(name));
  if (typed == nullptr)
    throw std::logic_error("model." + name + ": the method's options are of another type");
  return typed->value;
}

}  // namespace centermask
