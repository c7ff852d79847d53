#pragma once
// Reads the tensors of a file written by Python's `torch.save` (the zip format of PyTorch ≥ 1.6)
// without Python. LibTorch's own `torch::pickle_load` cannot: its unpickler turns every
// `collections.OrderedDict` into None (it expects them only as a tensor's backward hooks), and
// a state_dict *is* an OrderedDict. This is a restricted unpickler for what state_dicts and
// checkpoints hold — dicts, lists, tuples, strings, numbers, tensors and their storages — that
// calls nothing: any other class becomes an opaque value (never constructed), so a file cannot
// run code as Python's pickle would let it.
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace centermask::torch_save {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

/// A pickled value. Objects of classes outside the restricted set are `Opaque` (their class
/// name kept for messages).
struct Value {
  struct None {};
  struct Global {
    std::string module, name;
  };
  struct Opaque {
    std::string class_name;
  };
  struct Tuple {
    std::vector<ValuePtr> items;
  };
  struct List {
    std::vector<ValuePtr> items;
  };
  struct Dict {
    std::vector<std::pair<ValuePtr, ValuePtr>> items;  ///< insertion order
  };
  std::variant<None, bool, std::int64_t, double, std::string, Global, Opaque, Tuple, List, Dict,
               torch::Tensor>
      data;
};

/// The value pickled in `file`'s data.pkl, its tensors read from the archive's data/ records
/// (CPU, the file's dtypes). Throws std::runtime_error describing what it could not read (the
/// caller names the file).
ValuePtr load(const std::filesystem::path& file);

/// "dict", "list", "tensor", "OrderedDict-less object <class>"...: for messages.
std::string kind_of(const Value& value);

}  // namespace centermask::torch_save
