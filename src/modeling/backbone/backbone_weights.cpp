#include "centermask/modeling/backbone_weights.h"

#include <fmt/format.h>
#include <torch/serialize.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/data/transforms.h"
#include "modeling/backbone/torch_save_reader.h"

namespace centermask {

namespace {

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

/// A dict of name → tensor as a StateDict; false when `value` is not one.
bool collect_tensors(const torch_save::Value& value, StateDict* out) {
  const auto* dict = std::get_if<torch_save::Value::Dict>(&value.data);
  if (!dict) return false;
  StateDict tensors;
  for (const auto& [key, item] : dict->items) {
    const auto* name = std::get_if<std::string>(&key->data);
    const auto* tensor = std::get_if<torch::Tensor>(&item->data);
    if (!name || !tensor) return false;
    tensors.emplace_back(*name, *tensor);
  }
  *out = std::move(tensors);
  return true;
}

// ---- name mapping: the file's names → ours, candidates in order of preference ----

/// torchvision's ResNet: conv1/bn1 are our stem; a unit's convs are ours under "block."
/// (BasicBlock: conv1, bn1, conv2, bn2; Bottleneck: reduce, spatial, expand); downsample is
/// our shortcut; fc has no counterpart.
std::vector<std::string> torchvision_resnet_candidates(const std::string& name) {
  static const std::regex stem(R"(^(conv1|bn1)\.(.*)$)");
  static const std::regex unit(R"(^(layer\d+\.\d+)\.(conv|bn)(\d)\.(.*)$)");
  static const std::regex downsample(R"(^(layer\d+\.\d+)\.downsample\.(\d)\.(.*)$)");
  std::smatch m;
  if (std::regex_match(name, m, stem))
    return {std::string(m[1] == "conv1" ? "stem.0." : "stem.1.") + m[2].str()};
  if (std::regex_match(name, m, downsample))
    return {m[1].str() + ".shortcut." + m[2].str() + "." + m[3].str()};
  if (std::regex_match(name, m, unit)) {
    const std::string prefix = m[1].str() + ".block.";
    const std::string kind = m[2].str(), index = m[3].str(), rest = m[4].str();
    static const std::map<std::string, std::string> bottleneck = {
        {"1", "reduce"}, {"2", "spatial"}, {"3", "expand"}};
    std::vector<std::string> candidates = {prefix + kind + index + "." + rest};
    const auto it = bottleneck.find(index);
    if (it != bottleneck.end())
      candidates.push_back(prefix + it->second + (kind == "conv" ? ".0." : ".1.") + rest);
    return candidates;
  }
  return {};
}

/// DLA (CenterNet's base.* or the ImageNet model's top level): the same names as ours except
/// a Root's conv / bn, which are our conv_bn.0 / conv_bn.1.
std::vector<std::string> dla_candidates(std::string name) {
  static const std::regex root(R"(^(.*\.root)\.(conv|bn)\.(.*)$)");
  std::smatch m;
  if (std::regex_match(name, m, root))
    return {m[1].str() + (m[2] == "conv" ? ".conv_bn.0." : ".conv_bn.1.") + m[3].str()};
  return {name};
}

/// The tensor names of ours that stand for the file's `name` under `naming` (with the file's
/// "module." and backbone prefixes already removed).
std::vector<std::string> candidates_for(const std::string& name, WeightNaming naming) {
  switch (naming) {
    case WeightNaming::kTorchvisionResNet:
      return torchvision_resnet_candidates(name);
    case WeightNaming::kCenterNetDla:
    case WeightNaming::kImageNetDla:
      return dla_candidates(name);
    case WeightNaming::kCenterNetHourglass:
    case WeightNaming::kOurs:
      break;
  }
  return {name};
}

/// Whose names these are, from the names themselves.
WeightNaming detect_naming(const StateDict& weights) {
  bool ours = false, torchvision = false, centernet = false, dla = false, hourglass = false;
  for (const auto& [full_name, tensor] : weights) {
    const std::string name =
        starts_with(full_name, "module.") ? full_name.substr(7) : full_name;  // DataParallel's
    if (starts_with(name, "backbone.") || starts_with(name, "pyramid.")) ours = true;
    if (name == "conv1.weight" || starts_with(name, "layer1.0.conv1.")) torchvision = true;
    if (starts_with(name, "base.base_layer.")) centernet = true;
    if (starts_with(name, "base_layer.")) dla = true;
    if (starts_with(name, "pre.0.conv.") || starts_with(name, "kps.0.")) hourglass = true;
  }
  if (ours) return WeightNaming::kOurs;
  if (centernet) return WeightNaming::kCenterNetDla;
  if (hourglass) return WeightNaming::kCenterNetHourglass;
  if (dla) return WeightNaming::kImageNetDla;
  if (torchvision) return WeightNaming::kTorchvisionResNet;
  return WeightNaming::kOurs;
}

/// The file's name without what wraps the backbone: DataParallel's "module.", and our model's
/// "backbone." / "pyramid." or CenterNet's "base.". Empty when the tensor belongs to something
/// else in the file (a head).
std::string strip_wrapping(std::string name, WeightNaming naming) {
  if (starts_with(name, "module.")) name = name.substr(7);
  switch (naming) {
    case WeightNaming::kOurs:
      if (starts_with(name, "backbone.")) return name.substr(9);
      if (starts_with(name, "pyramid.")) return name.substr(8);
      return name;  // a backbone's own state_dict
    case WeightNaming::kCenterNetDla:
      // The trunk under base.*, the up path's DLAUp under dla_up.ida_N.* (ours: dla_up_ida_N)
      // and its IDAUp under ida_up.*; the heads are not the backbone's.
      if (starts_with(name, "base.")) return name.substr(5);
      if (starts_with(name, "dla_up.ida_")) return "dla_up_ida_" + name.substr(11);
      if (starts_with(name, "ida_up.")) return name;
      return "";
    case WeightNaming::kCenterNetHourglass:
      // Everything but the heads (hm, wh, reg, ...) keeps CenterNet's name.
      for (const char* part : {"pre.", "kps.", "cnvs.", "inters.", "inters_.", "cnvs_."})
        if (starts_with(name, part)) return name;
      return "";
    case WeightNaming::kTorchvisionResNet:
    case WeightNaming::kImageNetDla:
      break;
  }
  return name;
}

/// Converts a first convolution that expects RGB input normalised with ImageNet's statistics
/// into one that reads our input (BGR, CenterNet's normalisation), exactly in the interior:
/// their input is v = (x − m_t) / s_t per RGB channel, ours u = (x − m_o) / s_o per BGR
/// channel, so v = a·u + b with a = s_o / s_t and b = (m_o − m_t) / s_t; the convolution of v
/// is that of u with the weights × a (channels reordered) plus Σ W·b per output channel, a
/// constant the following BatchNorm's running mean absorbs. (At the zero-padded border the
/// constant is partly missing, as it would be for any change of normalisation.)
void convert_stem_from_rgb_imagenet(torch::Tensor& weight, torch::Tensor* running_mean) {
  static const double imagenet_mean_rgb[3] = {0.485, 0.456, 0.406};
  static const double imagenet_std_rgb[3] = {0.229, 0.224, 0.225};
  const PixelNormalization ours;
  torch::NoGradGuard no_grad;
  const torch::Tensor rgb = weight.clone();
  torch::Tensor constant = torch::zeros({weight.size(0)}, weight.options());
  for (int bgr = 0; bgr < 3; ++bgr) {
    const int channel = 2 - bgr;  // their RGB channel feeding our BGR channel
    const double a = ours.std_bgr[bgr] / imagenet_std_rgb[channel];
    const double b = (ours.mean_bgr[bgr] - imagenet_mean_rgb[channel]) / imagenet_std_rgb[channel];
    const torch::Tensor kernel = rgb.select(1, channel);
    weight.select(1, bgr).copy_(kernel * a);
    constant += kernel.sum({1, 2}) * b;
  }
  if (running_mean) running_mean->sub_(constant);
}

}  // namespace

const char* weight_naming_name(WeightNaming naming) {
  switch (naming) {
    case WeightNaming::kTorchvisionResNet:
      return "torchvision ResNet";
    case WeightNaming::kCenterNetDla:
      return "CenterNet DLA";
    case WeightNaming::kCenterNetHourglass:
      return "CenterNet Hourglass";
    case WeightNaming::kImageNetDla:
      return "ImageNet DLA";
    case WeightNaming::kOurs:
      break;
  }
  return "CenterMask-C++";
}

StateDict read_state_dict(const std::filesystem::path& file) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error))
    throw InputError(fmt::format("{}: cannot open the weights file (no such file)", file.string()));
  char magic[2] = {0, 0};
  std::ifstream(file, std::ios::binary).read(magic, 2);
  // A zip archive starts with "PK"; PyTorch's legacy format is a bare pickle stream.
  if (magic[0] != 'P' || magic[1] != 'K')
    throw InputError(
        fmt::format("{}: not a zip-format PyTorch file. Files of PyTorch before 1.6 (or saved with "
                    "_use_new_zipfile_serialization=False) must be re-saved once in Python: "
                    "torch.save(torch.load(\"old.pth\", map_location=\"cpu\"), \"new.pth\")",
                    file.string()));
  torch_save::ValuePtr value;
  try {
    value = torch_save::load(file);
  } catch (const std::exception& e) {
    throw InputError(
        fmt::format("{}: cannot read it as a torch.save file: {}", file.string(), e.what()));
  }
  StateDict weights;
  if (collect_tensors(*value, &weights)) return weights;
  // A training checkpoint: {"epoch": ..., "state_dict": {...}} (CenterNet) or {"model": ...}.
  if (const auto* dict = std::get_if<torch_save::Value::Dict>(&value->data))
    for (const char* key : {"state_dict", "model"})
      for (const auto& [name, item] : dict->items) {
        const auto* text = std::get_if<std::string>(&name->data);
        if (text && *text == key && collect_tensors(*item, &weights)) return weights;
      }
  throw InputError(fmt::format(
      "{}: holds a {} rather than a state_dict (a dict of name → tensor, or a checkpoint dict "
      "with one under \"state_dict\" or \"model\")",
      file.string(), torch_save::kind_of(*value)));
}

void write_state_dict(const std::filesystem::path& file, const StateDict& weights) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : weights) dict.insert(name, tensor.detach().cpu().contiguous());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  write_file_atomically(file, std::string_view(bytes.data(), bytes.size()));
}

StateDict state_dict_of(const torch::nn::Module& module) {
  StateDict weights;
  for (const auto& p : module.named_parameters()) weights.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) weights.emplace_back(b.key(), b.value());
  return weights;
}

BackboneWeightsReport load_backbone_weights(torch::nn::Module& backbone, const StateDict& weights,
                                            const std::string& file) {
  BackboneWeightsReport report;
  report.naming = detect_naming(weights);
  std::map<std::string, torch::Tensor> ours;
  for (auto& [name, tensor] : state_dict_of(backbone)) ours.emplace(name, tensor);

  std::set<std::string> set_names;
  std::string stem_conv;  // our name of the first convolution, when it was loaded
  torch::NoGradGuard no_grad;
  for (const auto& [their_name, tensor] : weights) {
    const std::string inner = strip_wrapping(their_name, report.naming);
    const std::vector<std::string> candidates =
        inner.empty() ? std::vector<std::string>{} : candidates_for(inner, report.naming);
    auto target = ours.end();
    for (const std::string& candidate : candidates)
      if ((target = ours.find(candidate)) != ours.end()) break;
    if (target == ours.end()) {
      report.unused.push_back(their_name);
      continue;
    }
    if (!tensor.sizes().equals(target->second.sizes()))
      throw InputError(fmt::format(
          "{} (model.backbone_weights): {} has shape [{}] but our {} has [{}]: the file is of "
          "another depth or width (check model.backbone and model.backbone_width: torchvision's "
          "ResNets have width 64)",
          file, their_name, fmt::join(tensor.sizes(), ", "), target->first,
          fmt::join(target->second.sizes(), ", ")));
    target->second.copy_(tensor.to(target->second.dtype()));
    set_names.insert(target->first);
    if (target->first == "stem.0.weight" || target->first == "base_layer.0.weight")
      stem_conv = target->first;
  }
  if (set_names.empty())
    throw InputError(fmt::format(
        "{} (model.backbone_weights): none of its {} tensors is a weight of this backbone "
        "(names read as {}; first: {}): is it a backbone of another family?",
        file, weights.size(), weight_naming_name(report.naming),
        weights.empty() ? std::string("none") : weights.front().first));

  const bool rgb_imagenet = report.naming == WeightNaming::kTorchvisionResNet ||
                            report.naming == WeightNaming::kImageNetDla;
  if (rgb_imagenet && !stem_conv.empty()) {
    const std::string bn_mean =
        stem_conv.substr(0, stem_conv.size() - std::string("0.weight").size()) + "1.running_mean";
    const auto mean = ours.find(bn_mean);
    convert_stem_from_rgb_imagenet(
        ours.at(stem_conv),
        mean != ours.end() && set_names.count(bn_mean) ? &mean->second : nullptr);
    report.stem_converted = true;
  }
  for (const auto& [name, tensor] : ours) {
    if (set_names.count(name))
      report.loaded.push_back(name);
    else
      report.left_initialised.push_back(name);
  }
  return report;
}

std::string describe(const BackboneWeightsReport& report) {
  const auto first_few = [](const std::vector<std::string>& names) {
    std::string text;
    for (std::size_t i = 0; i < names.size() && i < 4; ++i) text += (i ? ", " : "") + names[i];
    if (names.size() > 4) text += fmt::format(", … ({} more)", names.size() - 4);
    return names.empty() ? std::string() : " (" + text + ")";
  };
  return fmt::format(
      "{} tensors loaded ({} names){}; {} left at their initialisation{}; {} in the file "
      "unused{}",
      report.loaded.size(), weight_naming_name(report.naming),
      report.stem_converted
          ? ", the first convolution converted from RGB with ImageNet's normalisation to our BGR "
            "input"
          : "",
      report.left_initialised.size(), first_few(report.left_initialised), report.unused.size(),
      first_few(report.unused));
}

}  // namespace centermask
