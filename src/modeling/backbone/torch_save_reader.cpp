#include "modeling/backbone/torch_save_reader.h"

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include <cstring>
#include <stdexcept>

namespace centermask::torch_save {

namespace {

// Pickle opcodes that torch.save (protocol 2) and LibTorch's pickler write.
enum Op : unsigned char {
  kMark = '(',
  kStop = '.',
  kBinFloat = 'G',
  kBinInt = 'J',
  kBinInt1 = 'K',
  kBinInt2 = 'M',
  kNone = 'N',
  kBinPersId = 'Q',
  kReduce = 'R',
  kBinUnicode = 'X',
  kAppend = 'a',
  kBuild = 'b',
  kGlobal = 'c',
  kAppends = 'e',
  kBinGet = 'h',
  kLongBinGet = 'j',
  kEmptyList = ']',
  kBinPut = 'q',
  kLongBinPut = 'r',
  kSetItem = 's',
  kTuple = 't',
  kSetItems = 'u',
  kEmptyDict = '}',
  kEmptyTuple = ')',
  kShortBinUnicode = 0x8c,
  kBinUnicode8 = 0x8d,
  kProto = 0x80,
  kNewObj = 0x81,
  kTuple1 = 0x85,
  kTuple2 = 0x86,
  kTuple3 = 0x87,
  kNewTrue = 0x88,
  kNewFalse = 0x89,
  kLong1 = 0x8a,
  kMemoize = 0x94,
  kFrame = 0x95,
  kShortBinBytes = 'C',
  kBinBytes = 'B',
};

ValuePtr make(decltype(Value::data) data) {
  auto value = std::make_shared<Value>();
  value->data = std::move(data);
  return value;
}

torch::ScalarType dtype_of_storage(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"FloatStorage", torch::kFloat32}, {"DoubleStorage", torch::kFloat64},
      {"HalfStorage", torch::kFloat16},  {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},    {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},    {"BoolStorage", torch::kBool}};
  const auto it = types.find(name);
  if (it == types.end()) throw std::runtime_error("a storage of unsupported type " + name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& archive, const char* data, size_t size)
      : archive_(archive), data_(data), size_(size) {}

  ValuePtr run() {
    while (true) {
      const unsigned char op = byte();
      switch (op) {
        case kProto:
          byte();
          break;
        case kFrame:
          bytes(8);
          break;
        case kStop:
          if (stack_.empty()) throw std::runtime_error("an empty pickle");
          return stack_.back();
        case kMark:
          marks_.push_back(stack_.size());
          break;
        case kNone:
          push(make(Value::None{}));
          break;
        case kNewTrue:
          push(make(true));
          break;
        case kNewFalse:
          push(make(false));
          break;
        case kBinInt:
          push(make(static_cast<std::int64_t>(little<std::int32_t>())));
          break;
        case kBinInt1:
          push(make(static_cast<std::int64_t>(byte())));
          break;
        case kBinInt2:
          push(make(static_cast<std::int64_t>(little<std::uint16_t>())));
          break;
        case kLong1: {
          const unsigned n = byte();
          if (n > 8) throw std::runtime_error("an integer wider than 64 bits");
          std::int64_t v = 0;
          const char* p = bytes(n);
          for (unsigned i = 0; i < n; ++i)
            v |= static_cast<std::int64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
          if (n > 0 && n < 8 && (static_cast<unsigned char>(p[n - 1]) & 0x80))
            v -= std::int64_t{1} << (8 * n);  // two's complement of n bytes
          push(make(v));
          break;
        }
        case kBinFloat: {  // big-endian IEEE double
          const char* p = bytes(8);
          unsigned char reversed[8];
          for (int i = 0; i < 8; ++i) reversed[i] = static_cast<unsigned char>(p[7 - i]);
          double v;
          std::memcpy(&v, reversed, 8);
          push(make(v));
          break;
        }
        case kBinUnicode:
          push(make(text(little<std::uint32_t>())));
          break;
        case kShortBinUnicode:
          push(make(text(byte())));
          break;
        case kBinUnicode8:
          push(make(text(little<std::uint64_t>())));
          break;
        case kShortBinBytes:
          push(make(text(byte())));
          break;
        case kBinBytes:
          push(make(text(little<std::uint32_t>())));
          break;
        case kEmptyTuple:
          push(make(Value::Tuple{}));
          break;
        case kEmptyList:
          push(make(Value::List{}));
          break;
        case kEmptyDict:
          push(make(Value::Dict{}));
          break;
        case kTuple:
          push(make(Value::Tuple{pop_to_mark()}));
          break;
        case kTuple1:
        case kTuple2:
        case kTuple3: {
          const std::size_t n = op - kTuple1 + 1;
          if (stack_.size() < n) throw std::runtime_error("a tuple of missing items");
          std::vector<ValuePtr> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(make(Value::Tuple{std::move(items)}));
          break;
        }
        case kBinPut:
          memo_[byte()] = top();
          break;
        case kLongBinPut:
          memo_[little<std::uint32_t>()] = top();
          break;
        case kMemoize:
          memo_[memo_.size()] = top();
          break;
        case kBinGet:
          push(memo(byte()));
          break;
        case kLongBinGet:
          push(memo(little<std::uint32_t>()));
          break;
        case kGlobal: {
          std::string module = line(), name = line();
          push(make(Value::Global{std::move(module), std::move(name)}));
          break;
        }
        case kBinPersId: {
          const ValuePtr id = pop();
          push(persistent_load(*id));
          break;
        }
        case kReduce: {
          const ValuePtr args = pop(), callable = pop();
          push(reduce(*callable, *args));
          break;
        }
        case kNewObj: {
          pop();  // args
          const ValuePtr cls = pop();
          push(make(Value::Opaque{global_name(*cls)}));
          break;
        }
        case kBuild:
          // An object's state (a state_dict's _metadata, an opaque object's fields): the value
          // itself is what we keep.
          pop();
          break;
        case kAppend: {
          const ValuePtr item = pop();
          list_at(top()).items.push_back(item);
          break;
        }
        case kAppends: {
          std::vector<ValuePtr> items = pop_to_mark();
          auto& list = list_at(top());
          list.items.insert(list.items.end(), items.begin(), items.end());
          break;
        }
        case kSetItem: {
          const ValuePtr value = pop(), key = pop();
          // Items set on an object of an unknown class (a dict subclass) are dropped with it.
          if (auto* dict = std::get_if<Value::Dict>(&top()->data))
            dict->items.emplace_back(key, value);
          break;
        }
        case kSetItems: {
          std::vector<ValuePtr> items = pop_to_mark();
          if (items.size() % 2) throw std::runtime_error("SETITEMS with an odd item count");
          if (auto* dict = std::get_if<Value::Dict>(&top()->data))
            for (std::size_t i = 0; i < items.size(); i += 2)
              dict->items.emplace_back(items[i], items[i + 1]);
          break;
        }
        default:
          throw std::runtime_error(
              fmt::format("pickle opcode 0x{:02x} at byte {} (not used by torch.save for "
                          "state_dicts)",
                          op, position_ - 1));
      }
    }
  }

 private:
  caffe2::serialize::PyTorchStreamReader& archive_;
  const char* data_;
  size_t size_, position_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<std::size_t> marks_;
  std::map<std::uint64_t, ValuePtr> memo_;
  std::map<std::string, torch::Tensor> storages_;  // by record key: views share storage

  const char* bytes(std::uint64_t n) {
    if (n > size_ - position_) throw std::runtime_error("the pickle ends early (truncated)");
    const char* p = data_ + position_;
    position_ += n;
    return p;
  }
  std::string text(std::uint64_t n) {
    const char* p = bytes(n);
    return std::string(p, n);
  }
  unsigned char byte() { return static_cast<unsigned char>(*bytes(1)); }
  template <typename T>
  T little() {  // pickle's binary integers are little-endian, as this machine's
    T v;
    std::memcpy(&v, bytes(sizeof(T)), sizeof(T));
    return v;
  }
  std::string line() {
    std::string text;
    for (char c; (c = static_cast<char>(byte())) != '\n';) text += c;
    return text;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.empty()) throw std::runtime_error("the pickle's stack underflows");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    if (stack_.empty()) throw std::runtime_error("the pickle's stack underflows");
    return stack_.back();
  }
  ValuePtr memo(std::uint64_t key) const {
    const auto it = memo_.find(key);
    if (it == memo_.end()) throw std::runtime_error("a memo entry that was never stored");
    return it->second;
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) throw std::runtime_error("no MARK on the pickle's stack");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  static Value::List& list_at(const ValuePtr& v) {
    if (auto* list = std::get_if<Value::List>(&v->data)) return *list;
    throw std::runtime_error("APPEND to something that is not a list");
  }
  static std::string global_name(const Value& v) {
    if (const auto* g = std::get_if<Value::Global>(&v.data)) return g->module + "." + g->name;
    return kind_of(v);
  }
  static const std::vector<ValuePtr>& tuple_items(const Value& v, const char* what) {
    if (const auto* t = std::get_if<Value::Tuple>(&v.data)) return t->items;
    throw std::runtime_error(std::string(what) + ": arguments are not a tuple");
  }
  static std::int64_t integer(const ValuePtr& v, const char* what) {
    if (const auto* i = std::get_if<std::int64_t>(&v->data)) return *i;
    throw std::runtime_error(std::string(what) + ": expected an integer");
  }
  static std::vector<std::int64_t> integers(const ValuePtr& v, const char* what) {
    std::vector<std::int64_t> out;
    for (const ValuePtr& item : tuple_items(*v, what)) out.push_back(integer(item, what));
    return out;
  }

  // ('storage', torch.FloatStorage, key, location, numel): the record data/<key> as a flat
  // tensor of the storage's type.
  ValuePtr persistent_load(const Value& id) {
    const auto& items = tuple_items(id, "a persistent id");
    const auto* kind = items.empty() ? nullptr : std::get_if<std::string>(&items[0]->data);
    if (!kind || *kind != "storage" || items.size() < 5)
      throw std::runtime_error("a persistent id that is not a storage");
    const auto* type = std::get_if<Value::Global>(&items[1]->data);
    const auto* key = std::get_if<std::string>(&items[2]->data);
    if (!type || !key) throw std::runtime_error("a malformed storage id");
    const torch::ScalarType dtype = dtype_of_storage(type->name);
    const std::int64_t numel = integer(items[4], "a storage's size");
    auto found = storages_.find(*key);
    if (found == storages_.end()) {
      const std::string record = "data/" + *key;
      if (!archive_.hasRecord(record))
        throw std::runtime_error("the archive lacks the record " + record + " (truncated?)");
      auto [data, bytes] = archive_.getRecord(record);
      const std::size_t expected = static_cast<std::size_t>(numel) * c10::elementSize(dtype);
      if (bytes < expected)
        throw std::runtime_error(
            fmt::format("record {} holds {} bytes, its storage needs {}", record, bytes, expected));
      torch::Tensor flat = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      std::memcpy(flat.data_ptr(), data.get(), expected);
      found = storages_.emplace(*key, flat).first;
    }
    return make(found->second);
  }

  ValuePtr reduce(const Value& callable, const Value& args) {
    const auto* g = std::get_if<Value::Global>(&callable.data);
    if (!g) return make(Value::Opaque{"a call of " + kind_of(callable)});
    const std::string name = g->module + "." + g->name;
    if (name == "collections.OrderedDict") return make(Value::Dict{});
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const auto& a = tuple_items(args, name.c_str());
      if (a.size() < 4) throw std::runtime_error(name + " with too few arguments");
      const auto* storage = std::get_if<torch::Tensor>(&a[0]->data);
      if (!storage) throw std::runtime_error(name + " without a storage");
      const std::int64_t offset = integer(a[1], "a tensor's offset");
      const std::vector<std::int64_t> sizes = integers(a[2], "a tensor's size");
      const std::vector<std::int64_t> strides = integers(a[3], "a tensor's stride");
      // The elements the view reaches: none when a side is 0, else up to the last one.
      bool empty = false;
      std::int64_t reach = offset + 1;
      for (std::size_t d = 0; d < sizes.size() && d < strides.size(); ++d) {
        if (sizes[d] < 0 || strides[d] < 0) throw std::runtime_error("a negative size or stride");
        empty = empty || sizes[d] == 0;
        reach += (sizes[d] - 1) * strides[d];
      }
      if (sizes.size() != strides.size() || offset < 0 || (!empty && reach > storage->numel()))
        throw std::runtime_error("a tensor that reaches past its storage");
      return make(storage->as_strided(sizes, strides, offset).clone());
    }
    if (name == "torch.jit._pickle.restore_type_tag") {  // LibTorch's typed dicts and lists
      const auto& a = tuple_items(args, name.c_str());
      if (!a.empty()) return a[0];
    }
    if (name == "torch._utils._rebuild_parameter") {
      const auto& a = tuple_items(args, name.c_str());
      if (!a.empty() && std::holds_alternative<torch::Tensor>(a[0]->data)) return a[0];
      throw std::runtime_error(name + " without a tensor");
    }
    return make(Value::Opaque{name});
  }
};

}  // namespace

std::string kind_of(const Value& value) {
  struct Visitor {
    std::string operator()(const Value::None&) const { return "None"; }
    std::string operator()(bool) const { return "bool"; }
    std::string operator()(std::int64_t) const { return "int"; }
    std::string operator()(double) const { return "float"; }
    std::string operator()(const std::string&) const { return "string"; }
    std::string operator()(const Value::Global& g) const { return g.module + "." + g.name; }
    std::string operator()(const Value::Opaque& o) const { return "object of " + o.class_name; }
    std::string operator()(const Value::Tuple&) const { return "tuple"; }
    std::string operator()(const Value::List&) const { return "list"; }
    std::string operator()(const Value::Dict&) const { return "dict"; }
    std::string operator()(const torch::Tensor&) const { return "tensor"; }
  };
  return std::visit(Visitor{}, value.data);
}

ValuePtr load(const std::filesystem::path& file) {
  try {
    caffe2::serialize::PyTorchStreamReader archive(file.string());
    if (!archive.hasRecord("data.pkl"))
      throw std::runtime_error(
          "no data.pkl in the archive (a TorchScript module, not torch.save?)");
    auto [pickle, size] = archive.getRecord("data.pkl");
    Unpickler unpickler(archive, static_cast<const char*>(pickle.get()), size);
    return unpickler.run();
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

}  // namespace centermask::torch_save
