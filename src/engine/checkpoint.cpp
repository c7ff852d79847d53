// LibTorch's IValue accessors, inlined here from its headers, trip GCC's -Wnull-dereference
// analysis (in c10::IValue::toComplexDouble, which we never call); the warning is not ours.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include "centermask/engine/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"

namespace centermask {
namespace {

// Identifies our files and their layout; a reader refuses other versions by name.
constexpr const char* kFormat = "centermask-checkpoint-1";

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

c10::Dict<std::string, at::Tensor> tensor_dict(
    const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : named) dict.insert(name, tensor.detach().to(torch::kCPU));
  return dict;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const std::string& config_yaml,
                     const std::vector<CocoCategory>& categories, const TrainProgress& progress,
                     const WeightAverage* average) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("config_yaml", c10::IValue(config_yaml));
  c10::List<int64_t> ids;
  c10::List<std::string> names, supercategories;
  for (const CocoCategory& c : categories) {
    ids.push_back(c.id);
    names.push_back(c.name);
    supercategories.push_back(c.supercategory);
  }
  archive.write("category_ids", c10::IValue(ids));
  archive.write("category_names", c10::IValue(names));
  archive.write("category_supercategories", c10::IValue(supercategories));
  c10::List<int64_t> position{progress.iteration, progress.epoch, progress.batch_in_epoch};
  archive.write("progress", c10::IValue(position));
  archive.write("train_seconds", c10::IValue(progress.train_seconds));
  if (progress.loss_scale > 0) {
    archive.write("loss_scale", c10::IValue(progress.loss_scale));
    archive.write("loss_scale_finite_steps", c10::IValue(progress.loss_scale_finite_steps));
  }

  // Parameters and buffers by their dotted names (stable: see the model's named_parameters).
  archive.write("model", c10::IValue(tensor_dict(named_weights(model))));
  if (average != nullptr) {
    archive.write("weight_average", c10::IValue(tensor_dict(average->state())));
    archive.write("weight_average_updates", c10::IValue(average->updates()));
  }
  archive.write("rng_state", at::detail::getDefaultCPUGenerator().get_state(), true);
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  // Serialised into memory first, then written: LibTorch's zip writer must never see a failing
  // write (it retries from its destructor and would terminate the program), and our writer
  // reports a full disk with the path and keeps the previous file.
  std::string bytes;
  archive.save_to([&bytes](const void* data, std::size_t size) {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  write_file_atomically(path, bytes);
}

CheckpointReader::CheckpointReader(const std::filesystem::path& path) : path_(path) {
  const std::string where = path.string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw InputError(where + ": no such checkpoint file");
  try {
    archive_.load_from(path.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    throw InputError(fmt::format(
        "{}: not a readable checkpoint (truncated, or not written by centermask train): {}", where,
        first_line(e.what_without_backtrace())));
  }
  auto read = [&](const char* key) {
    c10::IValue value;
    if (!archive_.try_read(key, value))
      throw InputError(fmt::format("{}: not a CenterMask checkpoint: no '{}' record", where, key));
    return value;
  };
  try {
    const c10::IValue format = read("format");
    if (!format.isString() || format.toStringRef() != kFormat)
      throw InputError(fmt::format("{}: format: expected '{}', got '{}'", where, kFormat,
                                   format.isString() ? format.toStringRef() : "?"));
    contents_.config_yaml = read("config_yaml").toStringRef();
    const auto ids = read("category_ids").toIntList();
    const auto names = read("category_names").toList();
    const auto supers = read("category_supercategories").toList();
    if (names.size() != ids.size() || supers.size() != ids.size())
      throw InputError(where + ": categories: ids and names differ in length");
    for (std::size_t i = 0; i < ids.size(); ++i)
      contents_.categories.push_back(
          {ids.get(i), names.get(i).toStringRef(), supers.get(i).toStringRef()});
    const auto position = read("progress").toIntList();
    if (position.size() != 3) throw InputError(where + ": progress: expected 3 numbers");
    contents_.progress.iteration = position.get(0);
    contents_.progress.epoch = position.get(1);
    contents_.progress.batch_in_epoch = position.get(2);
    contents_.progress.train_seconds = read("train_seconds").toDouble();
    // Written only by runs that scale their loss (fp16); absent in every other checkpoint.
    c10::IValue loss_scale, finite_steps;
    if (archive_.try_read("loss_scale", loss_scale) &&
        archive_.try_read("loss_scale_finite_steps", finite_steps)) {
      contents_.progress.loss_scale = loss_scale.toDouble();
      contents_.progress.loss_scale_finite_steps = finite_steps.toInt();
    }
    torch::serialize::InputArchive optimizer_archive;
    contents_.has_optimizer = archive_.try_read("optimizer", optimizer_archive);
  } catch (const c10::Error& e) {
    throw InputError(
        fmt::format("{}: damaged checkpoint: {}", where, first_line(e.what_without_backtrace())));
  }
}

void CheckpointReader::load_model(torch::nn::Module& model) const {
  const std::string where = path_.string();
  c10::IValue value;
  if (!archive_.try_read("model", value) || !value.isGenericDict())
    throw InputError(where + ": no model weights");
  const c10::Dict<c10::IValue, c10::IValue> weights = value.toGenericDict();
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  for (auto& [name, tensor] : named_weights(model)) {
    const auto found = weights.find(name);
    if (found == weights.end())
      throw InputError(fmt::format(
          "{}: model: no weight '{}': the checkpoint is of another architecture", where, name));
    const at::Tensor stored = found->value().toTensor();
    if (stored.sizes() != tensor.sizes())
      throw InputError(fmt::format(
          "{}: model: '{}' has shape {} in the checkpoint but {} in the model: the checkpoint is "
          "of another architecture or class count",
          where, name, fmt::join(stored.sizes(), "x"), fmt::join(tensor.sizes(), "x")));
    tensor.copy_(stored);
    ++used;
  }
  if (used != weights.size())
    throw InputError(
        fmt::format("{}: model: {} weights the model does not have (another "
                    "architecture)",
                    where, weights.size() - used));
}

void CheckpointReader::load_optimizer(torch::optim::Optimizer& optimizer) const {
  torch::serialize::InputArchive optimizer_archive;
  if (!archive_.try_read("optimizer", optimizer_archive))
    throw InputError(path_.string() +
                     ": has no optimizer state (a weights-only file); resume from last.pt");
  try {
    optimizer.load(optimizer_archive);
  } catch (const c10::Error& e) {
    throw InputError(fmt::format("{}: optimizer: does not match the configured optimizer: {}",
                                 path_.string(), first_line(e.what_without_backtrace())));
  }
}

bool CheckpointReader::load_weight_average(WeightAverage& average) const {
  c10::IValue value, updates;
  if (!archive_.try_read("weight_average", value)) return false;
  if (!value.isGenericDict() || !archive_.try_read("weight_average_updates", updates) ||
      !updates.isInt())
    throw InputError(path_.string() + ": weight_average: damaged record");
  std::vector<std::pair<std::string, torch::Tensor>> state;
  for (const auto& item : value.toGenericDict())
    state.emplace_back(item.key().toStringRef(), item.value().toTensor());
  try {
    average.restore(state, updates.toInt());
  } catch (const std::invalid_argument& e) {
    throw InputError(
        fmt::format("{}: {} (a checkpoint of another architecture)", path_.string(), e.what()));
  }
  return true;
}

void CheckpointReader::restore_rng_state() const {
  torch::Tensor state;
  if (archive_.try_read("rng_state", state, true))
    const_cast<at::Generator&>(at::detail::getDefaultCPUGenerator()).set_state(state);
}

}  // namespace centermask
