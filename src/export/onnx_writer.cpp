// ATen graph → ONNX; see onnx_writer.h.

#include "export/onnx_writer.h"

#include <ATen/PadNd.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "centermask/common/error.h"
#include "modeling/ops/graph_nms.h"

#ifdef CENTERMASK_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <fstream>
#endif

namespace centermask {

#ifndef CENTERMASK_HAVE_ONNX

bool onnx_writer_available() { return false; }

std::map<std::string, int> write_onnx(const TracedNetwork&, const std::filesystem::path& out,
                                      const OnnxWriteOptions&, const ExportMetadata&) {
  throw InputError(fmt::format(
      "{}: this build writes no ONNX (it was built without libonnx-dev; install it with "
      "scripts/install-deps.sh and rebuild), --format torchscript works",
      out.string()));
}

#else

bool onnx_writer_available() { return true; }

namespace {

using torch::jit::Node;
using torch::jit::Value;

onnx::TensorProto_DataType onnx_type_of(c10::ScalarType type) {
  switch (type) {
    case c10::kFloat:
      return onnx::TensorProto_DataType_FLOAT;
    case c10::kHalf:
      return onnx::TensorProto_DataType_FLOAT16;
    case c10::kBFloat16:
      return onnx::TensorProto_DataType_BFLOAT16;
    case c10::kDouble:
      return onnx::TensorProto_DataType_DOUBLE;
    case c10::kLong:
      return onnx::TensorProto_DataType_INT64;
    case c10::kInt:
      return onnx::TensorProto_DataType_INT32;
    case c10::kBool:
      return onnx::TensorProto_DataType_BOOL;
    case c10::kByte:
      return onnx::TensorProto_DataType_UINT8;
    default:
      throw InputError(
          fmt::format("ONNX export: tensors of {} have no ONNX type here", c10::toString(type)));
  }
}

class Translator {
 public:
  // `dynamic`: shapes written so that they hold at other input sizes where the model allows
  // (Reshape copying leading dimensions, Expand keeping the input's, Resize by scale); what
  // still depends on the traced size is found by write_onnx's second trace.
  Translator(onnx::GraphProto* graph, int opset, bool dynamic)
      : graph_(graph), opset_(opset), dynamic_(dynamic) {}

  void translate(const TracedNetwork& traced) {
    const Value* input = traced.graph->inputs().at(0);
    names_[input] = "images";
    add_value_info(graph_->add_input(), "images", input);
    for (const Node* node : traced.graph->nodes()) {
      try {
        translate(node);
      } catch (const std::logic_error& e) {
        std::ostringstream where;
        where << *node;
        throw InputError(fmt::format("ONNX export (opset {}): {} at {}", opset_, e.what(),
                                     where.str().substr(0, 300)));
      }
    }
    for (std::size_t i = 0; i < traced.graph->outputs().size(); ++i) {
      const Value* output = traced.graph->outputs()[i];
      const std::string& name = traced.output_names.at(i);
      add_node("Identity", {tensor(output)}, {name});
      add_value_info(graph_->add_output(), name, output);
    }
  }

  const std::map<std::string, int>& op_counts() const { return op_counts_; }

 private:
  // ---- Values ---------------------------------------------------------------------------

  bool known(const Value* v) const { return known_.count(v) != 0; }
  const c10::IValue& value(const Value* v) const {
    const auto found = known_.find(v);
    if (found == known_.end())
      throw std::logic_error("ONNX export: a value needed as a constant depends on the input");
    return found->second;
  }
  std::vector<std::int64_t> ints(const Value* v) const {
    const c10::IValue& iv = value(v);
    if (iv.isInt()) return {iv.toInt()};
    return iv.toIntVector();
  }
  std::int64_t integer(const Value* v) const { return value(v).toInt(); }
  // PyTorch writes (k) for (k, k).
  static std::vector<std::int64_t> two(std::vector<std::int64_t> v) {
    if (v.size() == 1) v.push_back(v[0]);
    return v;
  }

  // The ONNX name of a tensor value: a computed one, or an initializer for a known one.
  std::string tensor(const Value* v) {
    const auto found = names_.find(v);
    if (found != names_.end()) return found->second;
    if (!known(v)) throw std::logic_error("ONNX export: a value was used before it was made");
    const c10::IValue& iv = value(v);
    torch::Tensor t;
    if (iv.isTensor()) {
      t = iv.toTensor();
    } else if (iv.isDouble()) {
      t = torch::tensor(static_cast<float>(iv.toDouble()));
    } else if (iv.isInt()) {
      t = torch::tensor(iv.toInt());
    } else if (iv.isBool()) {
      t = torch::tensor(iv.toBool());
    } else {
      throw InputError(
          fmt::format("ONNX export: a constant of type {} used as a tensor", iv.tagKind()));
    }
    const std::string name = initializer(t);
    names_[v] = name;
    return name;
  }

  // An arithmetic operand: a known scalar (2 in `2 * x`) becomes a constant of the result's
  // element type (ONNX does not promote types); anything else as tensor().
  std::string operand(const Value* v, const Value* result) {
    if (known(v) && !value(v).isTensor()) {
      const auto type = result->type()->cast<c10::TensorType>();
      const c10::ScalarType scalar = type && type->scalarType() ? *type->scalarType() : c10::kFloat;
      return initializer(torch::tensor(value(v).toScalar().toDouble()).to(scalar));
    }
    if (known(v) && value(v).isTensor() && value(v).toTensor().dim() == 0) {
      const auto type = result->type()->cast<c10::TensorType>();
      if (type && type->scalarType() && *type->scalarType() != value(v).toTensor().scalar_type())
        return initializer(value(v).toTensor().to(*type->scalarType()));
    }
    return tensor(v);
  }

  std::string initializer(torch::Tensor t) {
    t = t.detach().to(torch::kCPU).contiguous();
    if (t.scalar_type() == torch::kDouble) t = t.to(torch::kFloat32);
    const std::string name = fmt::format("c{}", next_constant_++);
    onnx::TensorProto* proto = graph_->add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx_type_of(t.scalar_type()));
    for (std::int64_t d : t.sizes()) proto->add_dims(d);
    proto->set_raw_data(t.data_ptr(), static_cast<std::size_t>(t.nbytes()));
    return name;
  }
  std::string ints_initializer(const std::vector<std::int64_t>& values) {
    return initializer(torch::tensor(values, torch::kInt64));
  }

  std::string fresh() { return fmt::format("t{}", next_value_++); }

  onnx::NodeProto* add_node(const std::string& op, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs) {
    onnx::NodeProto* node = graph_->add_node();
    node->set_op_type(op);
    node->set_name(fmt::format("{}_{}", op, graph_->node_size()));
    for (const std::string& in : inputs) node->add_input(in);
    for (const std::string& out : outputs) node->add_output(out);
    op_counts_[op] += 1;
    return node;
  }
  // One-output node whose result is `v`.
  onnx::NodeProto* emit(const std::string& op, const std::vector<std::string>& inputs,
                        const Value* v) {
    const std::string name = fresh();
    names_[v] = name;
    return add_node(op, inputs, {name});
  }
  std::string emit_temp(const std::string& op, const std::vector<std::string>& inputs,
                        onnx::NodeProto** node = nullptr) {
    const std::string name = fresh();
    onnx::NodeProto* n = add_node(op, inputs, {name});
    if (node != nullptr) *node = n;
    return name;
  }

  static void attr(onnx::NodeProto* node, const char* name, std::int64_t v) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* node, const char* name, float v) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* node, const char* name, const std::string& v) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_STRING);
    a->set_s(v);
  }
  static void attr(onnx::NodeProto* node, const char* name, const std::vector<std::int64_t>& v) {
    onnx::AttributeProto* a = node->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto_AttributeType_INTS);
    for (std::int64_t x : v) a->add_ints(x);
  }

  // A Reshape's target that holds at other input sizes where it can: the leading dimensions
  // the output shares with the input copied (0), then the largest remaining one inferred (−1)
  // — (N, C, H, W) → (N, C, H·W) becomes (0, 0, −1). Whether that made it size-free is what
  // write_onnx's second trace checks.
  static std::vector<std::int64_t> size_free_shape(const std::vector<std::int64_t>& in,
                                                   std::vector<std::int64_t> out) {
    std::size_t copied = 0;
    while (copied < out.size() && copied < in.size() && out[copied] == in[copied])
      out[copied++] = 0;
    if (std::find(out.begin(), out.end(), -1) == out.end() && copied < out.size()) {
      const auto largest =
          std::max_element(out.begin() + static_cast<std::ptrdiff_t>(copied), out.end());
      *largest = -1;
    }
    return out;
  }

  static std::vector<std::int64_t> sizes_of(const Value* v) {
    const auto type = v->type()->cast<c10::TensorType>();
    if (!type) throw std::logic_error("ONNX export: a tensor without a traced type");
    const auto sizes = type->sizes().concrete_sizes();
    if (!sizes) throw std::logic_error("ONNX export: a tensor without traced sizes");
    return *sizes;
  }

  void add_value_info(onnx::ValueInfoProto* info, const std::string& name, const Value* v) {
    info->set_name(name);
    onnx::TypeProto_Tensor* type = info->mutable_type()->mutable_tensor_type();
    const auto tensor_type = v->type()->cast<c10::TensorType>();
    type->set_elem_type(onnx_type_of(
        tensor_type && tensor_type->scalarType() ? *tensor_type->scalarType() : c10::kFloat));
    for (std::int64_t d : sizes_of(v)) type->mutable_shape()->add_dim()->set_dim_value(d);
  }

  // ---- Operations -----------------------------------------------------------------------

  // Evaluates a node whose inputs are all known (sizes, shapes, weight arithmetic).
  bool evaluate_statically(const Node* node) {
    for (const Value* in : node->inputs())
      if (!known(in)) return false;
    if (node->kind() == c10::prim::ListConstruct) {
      // A list of known values is known: ints (sizes), doubles or tensors (weights to cat).
      bool all_int = true, all_double = true, all_tensor = true;
      for (const Value* in : node->inputs()) {
        all_int = all_int && value(in).isInt();
        all_double = all_double && value(in).isDouble();
        all_tensor = all_tensor && value(in).isTensor();
      }
      if (all_int) {
        std::vector<std::int64_t> v;
        for (const Value* in : node->inputs()) v.push_back(value(in).toInt());
        known_[node->output()] = c10::IValue(v);
      } else if (all_double) {
        std::vector<double> v;
        for (const Value* in : node->inputs()) v.push_back(value(in).toDouble());
        known_[node->output()] = c10::IValue(v);
      } else if (all_tensor) {
        c10::List<at::Tensor> v;
        for (const Value* in : node->inputs()) v.push_back(value(in).toTensor());
        known_[node->output()] = c10::IValue(v);
      } else {
        return false;
      }
      return true;
    }
    if (node->kind() == c10::prim::Constant) {
      known_[node->output()] = *torch::jit::toIValue(node->output());
      return true;
    }
    if (!node->maybeOperator()) return false;
    torch::jit::Stack stack;
    for (const Value* in : node->inputs()) stack.push_back(value(in));
    node->getOperation()(stack);
    for (std::size_t i = 0; i < node->outputs().size(); ++i)
      known_[node->outputs()[i]] = stack.at(i);
    return true;
  }

  [[noreturn]] void unsupported(const Node* node, const std::string& why = "") const {
    throw InputError(
        fmt::format("ONNX export (opset {}): the network's operation {} has no translation{}{}",
                    opset_, node->kind().toQualString(), why.empty() ? "" : ": ", why));
  }

  void translate(const Node* node) {
    const c10::Symbol kind = node->kind();
    if (kind == c10::aten::size) {
      // Sizes are the traced ones: the export has fixed sides.
      const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
      if (node->inputs().size() == 1) {
        known_[node->output()] = c10::IValue(sizes);
      } else {
        std::int64_t dim = integer(node->input(1));
        if (dim < 0) dim += static_cast<std::int64_t>(sizes.size());
        known_[node->output()] = c10::IValue(sizes.at(static_cast<std::size_t>(dim)));
      }
      return;
    }
    if (evaluate_statically(node)) return;
    const std::string op = kind.toUnqualString();
    const auto in = [&](std::size_t i) { return tensor(node->input(i)); };
    const auto arg = [&](std::size_t i) { return operand(node->input(i), node->output()); };

    if (kind == c10::prim::ListConstruct) {
      std::vector<std::string> items;
      for (const Value* v : node->inputs()) items.push_back(tensor(v));
      lists_[node->output()] = items;
      return;
    }
    if (kind == c10::prim::ListUnpack) {
      const std::vector<std::string>& items = lists_.at(node->input());
      for (std::size_t i = 0; i < node->outputs().size(); ++i)
        names_[node->outputs()[i]] = items.at(i);
      return;
    }
    if (kind == c10::prim::TupleConstruct) {
      std::vector<std::string> items;
      for (const Value* v : node->inputs()) items.push_back(tensor(v));
      lists_[node->output()] = items;
      return;
    }
    if (kind == c10::aten::conv2d || kind == c10::aten::_convolution ||
        kind == c10::aten::convolution) {
      translate_convolution(node);
      return;
    }
    if (op == "relu" || op == "relu_") {
      emit("Relu", {in(0)}, node->output());
      return;
    }
    if (op == "sigmoid" || op == "sigmoid_") {
      emit("Sigmoid", {in(0)}, node->output());
      return;
    }
    if (op == "exp" || op == "exp_") {
      emit("Exp", {in(0)}, node->output());
      return;
    }
    if (op == "add" || op == "add_" || op == "sub" || op == "sub_") {
      if (node->inputs().size() > 2 && known(node->input(2)) &&
          value(node->input(2)).toScalar().toDouble() != 1.0)
        unsupported(node, "alpha ≠ 1");
      emit(op[0] == 'a' ? "Add" : "Sub", {arg(0), arg(1)}, node->output());
      return;
    }
    if (op == "rsub") {
      emit("Sub", {arg(1), arg(0)}, node->output());
      return;
    }
    if (op == "mul" || op == "mul_") {
      emit("Mul", {arg(0), arg(1)}, node->output());
      return;
    }
    if (op == "div" || op == "div_") {
      translate_division(node);
      return;
    }
    if (op == "floor" || op == "ceil" || op == "sqrt") {
      emit(op == "floor" ? "Floor" : op == "ceil" ? "Ceil" : "Sqrt", {in(0)}, node->output());
      return;
    }
    if (op == "maximum" || op == "minimum" || op == "clamp_min" || op == "clamp_max") {
      const bool max = op == "maximum" || op == "clamp_min";
      emit(max ? "Max" : "Min", {arg(0), arg(1)}, node->output());
      return;
    }
    if (op == "clamp") {
      std::string result = in(0);
      if (!(known(node->input(1)) && value(node->input(1)).isNone()))
        result = emit_temp("Max", {result, operand(node->input(1), node->output())});
      if (!(known(node->input(2)) && value(node->input(2)).isNone()))
        result = emit_temp("Min", {result, operand(node->input(2), node->output())});
      names_[node->output()] = result;
      return;
    }
    if (op == "eq" || op == "ne" || op == "lt" || op == "le" || op == "gt" || op == "ge") {
      translate_comparison(node, op);
      return;
    }
    if (op == "__and__" || op == "bitwise_and" || op == "logical_and") {
      emit("And", {in(0), in(1)}, node->output());
      return;
    }
    if (op == "where") {
      emit("Where", {in(0), arg(1), arg(2)}, node->output());
      return;
    }
    if (op == "topk") {
      // topk(self, k, dim, largest, sorted)
      std::int64_t dim = integer(node->input(2));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes_of(node->input(0)).size());
      const std::string values = fresh(), indices = fresh();
      onnx::NodeProto* n =
          add_node("TopK", {in(0), ints_initializer({integer(node->input(1))})}, {values, indices});
      attr(n, "axis", dim);
      attr(n, "largest", static_cast<std::int64_t>(value(node->input(3)).toBool()));
      attr(n, "sorted", static_cast<std::int64_t>(value(node->input(4)).toBool()));
      names_[node->outputs()[0]] = values;
      names_[node->outputs()[1]] = indices;
      return;
    }
    if (op == "gather") {
      std::int64_t dim = integer(node->input(1));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes_of(node->input(0)).size());
      attr(emit("GatherElements", {in(0), in(2)}, node->output()), "axis", dim);
      return;
    }
    if (op == "permute") {
      attr(emit("Transpose", {in(0)}, node->output()), "perm", ints(node->input(1)));
      return;
    }
    if (op == "sum") {
      translate_sum(node);
      return;
    }
    if (kind.toQualString() == std::string(kClasswiseNmsOperator)) {
      translate_classwise_nms(node);
      return;
    }
    if (op == "replication_pad2d" || op == "pad" || op == "_pad_enum") {
      translate_edge_pad(node);
      return;
    }
    if (op == "matmul") {
      emit("MatMul", {in(0), in(1)}, node->output());
      return;
    }
    if (op == "unsqueeze") {
      std::int64_t dim = integer(node->input(1));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes_of(node->output()).size());
      emit("Unsqueeze", {in(0), ints_initializer({dim})}, node->output());
      return;
    }
    if (op == "stack") {
      std::int64_t dim = integer(node->input(1));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes_of(node->output()).size());
      std::vector<std::string> parts;
      for (const std::string& item : lists_.at(node->input(0)))
        parts.push_back(emit_temp("Unsqueeze", {item, ints_initializer({dim})}));
      attr(emit("Concat", parts, node->output()), "axis", dim);
      return;
    }
    if (op == "expand" || op == "expand_as") {
      std::vector<std::int64_t> shape = sizes_of(node->output());
      if (dynamic_) {
        // Expand broadcasts: 1 keeps the input's dimension, whatever it is at run time.
        const std::vector<std::int64_t> from = sizes_of(node->input(0));
        const std::size_t offset = shape.size() - from.size();
        for (std::size_t i = 0; i < from.size(); ++i)
          if (from[i] == shape[offset + i]) shape[offset + i] = 1;
      }
      emit("Expand", {in(0), ints_initializer(shape)}, node->output());
      return;
    }
    if (op == "grid_sampler" || op == "grid_sampler_2d") {
      if (opset_ < 16)
        unsupported(node,
                    "DCNv2's deformable convolution and the masks' resampling (--postprocess "
                    "on) sample with it, which needs ONNX's GridSample: opset 16 or later "
                    "(--opset 16 or 17)");
      static const char* const modes[] = {"bilinear", "nearest", "bicubic"};
      static const char* const paddings[] = {"zeros", "border", "reflection"};
      onnx::NodeProto* n = emit("GridSample", {in(0), in(1)}, node->output());
      attr(n, "mode", std::string(modes[integer(node->input(2))]));
      attr(n, "padding_mode", std::string(paddings[integer(node->input(3))]));
      attr(n, "align_corners", static_cast<std::int64_t>(value(node->input(4)).toBool()));
      return;
    }
    if (op == "max_pool2d") {
      const auto kernel = two(ints(node->input(1)));
      auto stride = ints(node->input(2));
      stride = stride.empty() ? kernel : two(stride);
      const auto padding = two(ints(node->input(3)));
      const auto dilation = two(ints(node->input(4)));
      onnx::NodeProto* n = emit("MaxPool", {in(0)}, node->output());
      attr(n, "kernel_shape", kernel);
      attr(n, "strides", stride);
      attr(n, "pads", std::vector<std::int64_t>{padding[0], padding[1], padding[0], padding[1]});
      attr(n, "dilations", dilation);
      attr(n, "ceil_mode", static_cast<std::int64_t>(value(node->input(5)).toBool()));
      return;
    }
    if (op == "avg_pool2d") {
      // avg_pool2d(input, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
      if (node->inputs().size() > 6 && !value(node->input(6)).isNone())
        unsupported(node, "a divisor_override");
      const auto kernel = two(ints(node->input(1)));
      auto stride = ints(node->input(2));
      stride = stride.empty() ? kernel : two(stride);
      const auto padding = two(ints(node->input(3)));
      onnx::NodeProto* n = emit("AveragePool", {in(0)}, node->output());
      attr(n, "kernel_shape", kernel);
      attr(n, "strides", stride);
      attr(n, "pads", std::vector<std::int64_t>{padding[0], padding[1], padding[0], padding[1]});
      attr(n, "ceil_mode", static_cast<std::int64_t>(value(node->input(4)).toBool()));
      attr(n, "count_include_pad", static_cast<std::int64_t>(value(node->input(5)).toBool()));
      return;
    }
    if (op == "cat") {
      onnx::NodeProto* n = emit("Concat", lists_.at(node->input(0)), node->output());
      std::int64_t axis = integer(node->input(1));
      if (axis < 0) axis += static_cast<std::int64_t>(sizes_of(node->output()).size());
      attr(n, "axis", axis);
      return;
    }
    if (op == "pixel_shuffle") {
      onnx::NodeProto* n = emit("DepthToSpace", {in(0)}, node->output());
      attr(n, "blocksize", integer(node->input(1)));
      attr(n, "mode", std::string("CRD"));  // PyTorch's channel order
      return;
    }
    if (op == "upsample_nearest2d" || op == "upsample_bilinear2d") {
      translate_resize(node, op == "upsample_bilinear2d");
      return;
    }
    if (op == "group_norm") {
      translate_group_norm(node);
      return;
    }
    if (op == "batch_norm") {
      onnx::NodeProto* n =
          emit("BatchNormalization", {in(0), in(1), in(2), in(3), in(4)}, node->output());
      attr(n, "epsilon", static_cast<float>(value(node->input(7)).toDouble()));
      return;
    }
    if (op == "contiguous" || op == "clone" || op == "detach" || op == "dropout" ||
        op == "feature_dropout") {
      names_[node->output()] = in(0);
      return;
    }
    if (op == "to" || op == "type_as") {
      const auto type = node->output()->type()->cast<c10::TensorType>();
      const auto from = node->input(0)->type()->cast<c10::TensorType>();
      if (type && from && type->scalarType() == from->scalarType()) {
        names_[node->output()] = in(0);
      } else {
        onnx::NodeProto* n = emit("Cast", {in(0)}, node->output());
        attr(n, "to", static_cast<std::int64_t>(onnx_type_of(*type->scalarType())));
      }
      return;
    }
    if (op == "view" || op == "reshape" || op == "flatten") {
      std::vector<std::int64_t> shape = sizes_of(node->output());
      if (dynamic_) shape = size_free_shape(sizes_of(node->input(0)), shape);
      emit("Reshape", {in(0), ints_initializer(shape)}, node->output());
      return;
    }
    if (op == "slice") {
      const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
      std::int64_t dim = integer(node->input(1));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes.size());
      const c10::IValue& start_v = value(node->input(2));
      const c10::IValue& end_v = value(node->input(3));
      const std::int64_t start = start_v.isNone() ? 0 : start_v.toInt();
      const std::int64_t end = end_v.isNone() ? INT64_MAX : end_v.toInt();
      const std::int64_t step = integer(node->input(4));
      // An end past the dimension is its end at any size (Slice clamps).
      emit("Slice",
           {in(0), ints_initializer({start}),
            ints_initializer({end >= sizes[dim] ? INT64_MAX : end}), ints_initializer({dim}),
            ints_initializer({step})},
           node->output());
      return;
    }
    if (op == "select") {
      std::int64_t dim = integer(node->input(1));
      const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
      if (dim < 0) dim += static_cast<std::int64_t>(sizes.size());
      std::int64_t index = integer(node->input(2));
      if (index < 0) index += sizes[static_cast<std::size_t>(dim)];
      onnx::NodeProto* n =
          emit("Gather", {in(0), initializer(torch::tensor(index))}, node->output());
      attr(n, "axis", dim);
      return;
    }
    if (op == "split" || op == "split_with_sizes" || op == "chunk" || op == "unsafe_split") {
      translate_split(node);
      return;
    }
    unsupported(node);
  }

  void translate_convolution(const Node* node) {
    const c10::Symbol kind = node->kind();
    // conv2d(input, weight, bias, stride, padding, dilation, groups);
    // (_)convolution(input, weight, bias, stride, padding, dilation, transposed,
    // output_padding, groups, ...)
    const bool plain = kind == c10::aten::conv2d;
    const bool transposed = !plain && value(node->input(6)).toBool();
    const std::int64_t groups = integer(node->input(plain ? 6 : 8));
    const auto stride = ints(node->input(3));
    const auto padding = ints(node->input(4));
    const auto dilation = ints(node->input(5));
    const torch::Tensor weight = value(node->input(1)).toTensor();
    std::vector<std::string> inputs = {tensor(node->input(0)), tensor(node->input(1))};
    if (!value(node->input(2)).isNone()) inputs.push_back(tensor(node->input(2)));
    onnx::NodeProto* n = emit(transposed ? "ConvTranspose" : "Conv", inputs, node->output());
    const auto p = two(padding);
    attr(n, "kernel_shape", std::vector<std::int64_t>{weight.size(2), weight.size(3)});
    attr(n, "strides", two(stride));
    attr(n, "dilations", two(dilation));
    attr(n, "pads", std::vector<std::int64_t>{p[0], p[1], p[0], p[1]});
    attr(n, "group", groups);
    if (transposed) attr(n, "output_padding", two(ints(node->input(7))));
  }

  // div(a, b) and div(a, b, rounding_mode): ONNX's Div truncates integers, which is the floor
  // for the non-negative indices the decoding divides.
  void translate_division(const Node* node) {
    const std::string a = operand(node->input(0), node->output());
    const std::string b = operand(node->input(1), node->output());
    if (node->inputs().size() <= 2 || value(node->input(2)).isNone()) {
      emit("Div", {a, b}, node->output());
      return;
    }
    const std::string mode = value(node->input(2)).toStringRef();
    const auto type = node->output()->type()->cast<c10::TensorType>();
    const bool integral =
        type && type->scalarType() && c10::isIntegralType(*type->scalarType(), false);
    if (integral) {
      emit("Div", {a, b}, node->output());
    } else if (mode == "floor") {
      emit("Floor", {emit_temp("Div", {a, b})}, node->output());
    } else {
      unsupported(node, "rounding mode " + mode + " on floating-point values");
    }
  }

  // Comparisons: a scalar operand takes the other operand's element type (the result is bool).
  void translate_comparison(const Node* node, const std::string& op) {
    const Value* typed = known(node->input(0)) ? node->input(1) : node->input(0);
    const std::string a = operand(node->input(0), typed);
    const std::string b = operand(node->input(1), typed);
    static const std::map<std::string, std::string> onnx_op = {
        {"eq", "Equal"},       {"ne", "Equal"},   {"lt", "Less"},
        {"le", "LessOrEqual"}, {"gt", "Greater"}, {"ge", "GreaterOrEqual"}};
    if (op == "ne") {
      emit("Not", {emit_temp("Equal", {a, b})}, node->output());
    } else {
      emit(onnx_op.at(op), {a, b}, node->output());
    }
  }

  // sum(self, dims, keepdim, dtype): ReduceSum over the dims, the input cast to the result's
  // type first (ONNX sums no booleans; PyTorch sums them as int64).
  void translate_sum(const Node* node) {
    const auto out_type = node->output()->type()->cast<c10::TensorType>();
    const auto in_type = node->input(0)->type()->cast<c10::TensorType>();
    std::string input = tensor(node->input(0));
    if (out_type && in_type && out_type->scalarType() != in_type->scalarType()) {
      onnx::NodeProto* cast = nullptr;
      input = emit_temp("Cast", {input}, &cast);
      attr(cast, "to", static_cast<std::int64_t>(onnx_type_of(*out_type->scalarType())));
    }
    const std::int64_t rank = static_cast<std::int64_t>(sizes_of(node->input(0)).size());
    std::vector<std::int64_t> axes;
    bool keepdim = false;
    if (node->inputs().size() >= 3) {
      axes = ints(node->input(1));
      keepdim = value(node->input(2)).toBool();
    }
    if (axes.empty())
      for (std::int64_t d = 0; d < rank; ++d) axes.push_back(d);
    for (std::int64_t& a : axes)
      if (a < 0) a += rank;
    attr(emit("ReduceSum", {input, ints_initializer(axes)}, node->output()), "keepdims",
         static_cast<std::int64_t>(keepdim));
  }

  // classwise_nms(boxes (N, B, 4), scores (N, B), classes (N, B), iou, num_classes) → kept
  // (N, B): ONNX's NonMaxSuppression over per-class scores (a box scores −1 in every class but
  // its own; scores ≤ 0 are no candidates), its selection scattered into a mask. The boxes go
  // in as x0 y0 x1 y1 where NonMaxSuppression reads y0 x0 y1 x1: IoU is the same either way.
  void translate_classwise_nms(const Node* node) {
    const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
    const std::int64_t n = sizes[0], b = sizes[1];
    const std::int64_t classes = integer(node->input(4));
    const std::string class_row =
        emit_temp("Unsqueeze", {tensor(node->input(2)), ints_initializer({1})});
    const std::string in_class = emit_temp(
        "Equal", {class_row, initializer(torch::arange(classes, torch::kInt64).view({1, -1, 1}))});
    const std::string score_row =
        emit_temp("Unsqueeze", {tensor(node->input(1)), ints_initializer({1})});
    const std::string per_class =
        emit_temp("Where", {in_class, score_row, initializer(torch::tensor(-1.0f))});
    onnx::NodeProto* nms = nullptr;
    const std::string selected = emit_temp(
        "NonMaxSuppression",
        {tensor(node->input(0)), per_class, ints_initializer({b}),
         initializer(torch::tensor({static_cast<float>(value(node->input(3)).toDouble())})),
         initializer(torch::tensor({0.0f}))},
        &nms);
    attr(nms, "center_point_box", static_cast<std::int64_t>(0));
    onnx::NodeProto* gather = nullptr;
    const std::string image_and_box =
        emit_temp("Gather", {selected, ints_initializer({0, 2})}, &gather);
    attr(gather, "axis", static_cast<std::int64_t>(1));
    onnx::NodeProto* first = nullptr;
    const std::string image_column =
        emit_temp("Gather", {selected, initializer(torch::tensor(0, torch::kInt64))}, &first);
    attr(first, "axis", static_cast<std::int64_t>(1));
    const std::string ones = emit_temp(
        "Add", {emit_temp("Mul", {image_column, initializer(torch::tensor(0, torch::kInt64))}),
                initializer(torch::tensor(1, torch::kInt64))});
    const std::string scattered = emit_temp(
        "ScatterND", {initializer(torch::zeros({n, b}, torch::kInt64)), image_and_box, ones});
    onnx::NodeProto* cast = emit("Cast", {scattered}, node->output());
    attr(cast, "to", static_cast<std::int64_t>(onnx::TensorProto_DataType_BOOL));
  }

  // Replicate padding of the last two dimensions: ONNX's Pad with mode edge.
  void translate_edge_pad(const Node* node) {
    const std::string op = node->kind().toUnqualString();
    if ((op == "pad" && value(node->input(2)).toStringRef() != "replicate") ||
        (op == "_pad_enum" &&
         integer(node->input(2)) != static_cast<std::int64_t>(at::padding_mode::replicate)))
      unsupported(node, "padding other than replicate");
    const std::vector<std::int64_t> pad = ints(node->input(1));  // left, right, top, bottom
    if (pad.size() != 4) unsupported(node, "padding of other than two dimensions");
    const std::int64_t rank = static_cast<std::int64_t>(sizes_of(node->input(0)).size());
    std::vector<std::int64_t> pads(static_cast<std::size_t>(2 * rank), 0);
    pads[static_cast<std::size_t>(rank - 2)] = pad[2];
    pads[static_cast<std::size_t>(rank - 1)] = pad[0];
    pads[static_cast<std::size_t>(2 * rank - 2)] = pad[3];
    pads[static_cast<std::size_t>(2 * rank - 1)] = pad[1];
    attr(emit("Pad", {tensor(node->input(0)), ints_initializer(pads)}, node->output()), "mode",
         std::string("edge"));
  }

  void translate_resize(const Node* node, bool linear) {
    const std::vector<std::int64_t> out = sizes_of(node->output());
    const std::string empty_roi = initializer(torch::zeros({0}));
    onnx::NodeProto* n = nullptr;
    if (dynamic_) {
      // By scale, which holds at any size whose ratio is the traced one (the FPN's 2x).
      const std::vector<std::int64_t> in = sizes_of(node->input(0));
      std::vector<float> scales;
      for (std::size_t i = 0; i < out.size(); ++i)
        scales.push_back(static_cast<float>(out[i]) / static_cast<float>(in[i]));
      n = emit("Resize", {tensor(node->input(0)), empty_roi, initializer(torch::tensor(scales))},
               node->output());
    } else {
      const std::string empty_scales = initializer(torch::zeros({0}));
      n = emit("Resize", {tensor(node->input(0)), empty_roi, empty_scales, ints_initializer(out)},
               node->output());
    }
    if (linear) {
      const bool align_corners = value(node->input(2)).toBool();
      attr(n, "mode", std::string("linear"));
      attr(n, "coordinate_transformation_mode",
           std::string(align_corners ? "align_corners" : "pytorch_half_pixel"));
    } else {
      // PyTorch's nearest: source index floor(dst · in / out).
      attr(n, "mode", std::string("nearest"));
      attr(n, "coordinate_transformation_mode", std::string("asymmetric"));
      attr(n, "nearest_mode", std::string("floor"));
    }
  }

  // GroupNormalization is opset 18: here normalise (N, G, C/G · H · W) per group with
  // InstanceNormalization (unit scale, zero bias), then the per-channel affine.
  void translate_group_norm(const Node* node) {
    const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
    const std::int64_t groups = integer(node->input(1));
    const std::string grouped =
        emit_temp("Reshape", {tensor(node->input(0)), ints_initializer({0, groups, -1})});
    onnx::NodeProto* norm = nullptr;
    const std::string normalised = emit_temp(
        "InstanceNormalization",
        {grouped, initializer(torch::ones({groups})), initializer(torch::zeros({groups}))}, &norm);
    attr(norm, "epsilon", static_cast<float>(value(node->input(4)).toDouble()));
    std::string result =
        emit_temp("Reshape", {normalised, dynamic_ ? emit_temp("Shape", {tensor(node->input(0))})
                                                   : ints_initializer(sizes)});
    const std::int64_t channels = sizes[1];
    const auto per_channel = [&](const Value* v) {
      return initializer(value(v).toTensor().reshape({channels, 1, 1}));
    };
    const bool has_weight = !value(node->input(2)).isNone();
    const bool has_bias = !value(node->input(3)).isNone();
    if (has_weight) result = emit_temp("Mul", {result, per_channel(node->input(2))});
    if (has_bias) result = emit_temp("Add", {result, per_channel(node->input(3))});
    names_[node->output()] = result;
  }

  void translate_split(const Node* node) {
    const Value* list = node->output();
    std::vector<std::int64_t> parts;
    std::int64_t dim = 0;
    const std::vector<std::int64_t> sizes = sizes_of(node->input(0));
    const std::string op = node->kind().toUnqualString();
    dim = integer(node->input(2));
    if (dim < 0) dim += static_cast<std::int64_t>(sizes.size());
    const std::int64_t total = sizes[static_cast<std::size_t>(dim)];
    if (op == "split_with_sizes") {
      parts = ints(node->input(1));
    } else if (op == "chunk") {
      const std::int64_t chunks = integer(node->input(1));
      const std::int64_t each = (total + chunks - 1) / chunks;
      for (std::int64_t at = 0; at < total; at += each) parts.push_back(std::min(each, total - at));
    } else {
      const c10::IValue& size = value(node->input(1));
      if (size.isInt()) {
        for (std::int64_t at = 0; at < total; at += size.toInt())
          parts.push_back(std::min(size.toInt(), total - at));
      } else {
        parts = size.toIntVector();
      }
    }
    std::vector<std::string> outputs;
    for (std::size_t i = 0; i < parts.size(); ++i) outputs.push_back(fresh());
    onnx::NodeProto* n =
        add_node("Split", {tensor(node->input(0)), ints_initializer(parts)}, outputs);
    attr(n, "axis", dim);
    lists_[list] = outputs;
  }

  onnx::GraphProto* graph_;
  int opset_;
  bool dynamic_;
  std::unordered_map<const Value*, c10::IValue> known_;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, std::vector<std::string> > lists_;
  std::map<std::string, int> op_counts_;
  int next_constant_ = 0;
  int next_value_ = 0;
};

// ---- Float16 -------------------------------------------------------------------------------

// Inputs that ONNX types float32 whatever the data's type: Resize's roi and scales, and all of
// NonMaxSuppression's float inputs (its boxes and scores included: tensor(float) only).
bool keeps_float32(const onnx::NodeProto& node, int input) {
  if (node.op_type() == "Resize") return input == 1 || input == 2;
  if (node.op_type() == "NonMaxSuppression") return input != 2;
  return false;
}

std::string float16_bits(const onnx::TensorProto& tensor) {
  const std::string& raw = tensor.raw_data();
  const std::size_t count = raw.size() / sizeof(float);
  std::string half(count * sizeof(c10::Half), '\0');
  for (std::size_t i = 0; i < count; ++i) {
    float value = 0;
    std::memcpy(&value, raw.data() + i * sizeof(float), sizeof(float));
    // Beyond float16's range a finite constant (a sentinel such as a huge "no box" size)
    // stays finite at the largest half rather than turning into infinity, whose products
    // with zero would be NaN.
    if (std::isfinite(value)) value = std::clamp(value, -65504.0f, 65504.0f);
    const c10::Half h(value);
    std::memcpy(half.data() + i * sizeof(c10::Half), &h, sizeof(c10::Half));
  }
  return half;
}

// The written graph computed in float16: float weights and constants stored as float16, casts
// to float retargeted, the float32 input cast on entry and each float output cast back, so a
// deploy program feeds and reads float32 as with the float32 graph. Inputs that ONNX types
// float32 only (keeps_float32) are cast to float32 where computed and stay float32 where
// constant.
void convert_to_float16(onnx::GraphProto* graph) {
  constexpr auto kFloat = onnx::TensorProto_DataType_FLOAT;
  constexpr auto kHalf = onnx::TensorProto_DataType_FLOAT16;
  std::map<std::string, onnx::TensorProto*> initializers;
  for (onnx::TensorProto& t : *graph->mutable_initializer()) initializers[t.name()] = &t;
  std::set<std::string> float32_constants, other_uses;
  for (const onnx::NodeProto& node : graph->node())
    for (int i = 0; i < node.input_size(); ++i)
      if (initializers.count(node.input(i)) != 0)
        (keeps_float32(node, i) ? float32_constants : other_uses).insert(node.input(i));
  for (const std::string& name : float32_constants)
    if (other_uses.count(name) != 0)
      throw std::logic_error(
          fmt::format("float16: the constant {} is read both as float32 and as data", name));
  for (auto& [name, tensor] : initializers)
    if (tensor->data_type() == kFloat && float32_constants.count(name) == 0) {
      if (!tensor->has_raw_data() || tensor->float_data_size() != 0)
        throw std::logic_error(fmt::format("float16: the constant {} is not raw data", name));
      tensor->set_raw_data(float16_bits(*tensor));
      tensor->set_data_type(kHalf);
    }

  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  nodes.Swap(graph->mutable_node());
  int casts = 0;
  const auto add_cast = [&](const std::string& from, const std::string& to, int type) {
    onnx::NodeProto* cast = graph->add_node();
    cast->set_op_type("Cast");
    cast->set_name(fmt::format("float16_cast_{}", casts++));
    cast->add_input(from);
    cast->add_output(to);
    onnx::AttributeProto* a = cast->add_attribute();
    a->set_name("to");
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(type);
  };
  std::set<std::string> float_inputs;
  for (const onnx::ValueInfoProto& input : graph->input())
    if (input.type().tensor_type().elem_type() == kFloat) {
      float_inputs.insert(input.name());
      add_cast(input.name(), input.name() + "_float16", kHalf);
    }
  std::set<std::string> float_outputs;
  for (const onnx::ValueInfoProto& output : graph->output())
    if (output.type().tensor_type().elem_type() == kFloat) float_outputs.insert(output.name());
  for (onnx::NodeProto& node : nodes) {
    for (int i = 0; i < node.input_size(); ++i) {
      if (float_inputs.count(node.input(i)) != 0) node.set_input(i, node.input(i) + "_float16");
      if (keeps_float32(node, i) && initializers.count(node.input(i)) == 0 &&
          !node.input(i).empty()) {
        const std::string as_float = fmt::format("{}_float32_{}", node.input(i), casts);
        add_cast(node.input(i), as_float, kFloat);
        node.set_input(i, as_float);
      }
    }
    for (onnx::AttributeProto& a : *node.mutable_attribute())
      if (node.op_type() == "Cast" && a.name() == "to" && a.i() == kFloat) a.set_i(kHalf);
    if (node.op_type() == "ConstantOfShape" || node.op_type() == "Constant")
      throw std::logic_error(fmt::format("float16: {} has no float16 conversion", node.op_type()));
    std::vector<std::string> outputs_back;
    for (int i = 0; i < node.output_size(); ++i)
      if (float_outputs.count(node.output(i)) != 0) {
        outputs_back.push_back(node.output(i));
        node.set_output(i, node.output(i) + "_float16");
      }
    graph->add_node()->Swap(&node);
    for (const std::string& name : outputs_back) add_cast(name + "_float16", name, kFloat);
  }
  graph->clear_value_info();
}

struct BuiltModel {
  onnx::ModelProto model;
  std::map<std::string, int> op_counts;
};

BuiltModel build_model(const TracedNetwork& traced, const OnnxWriteOptions& options,
                       const ExportMetadata& metadata) {
  BuiltModel built;
  onnx::ModelProto& model = built.model;
  model.set_ir_version(8);
  model.set_producer_name("centermask");
  model.set_producer_version(CENTERMASK_VERSION);
  onnx::OperatorSetIdProto* imported = model.add_opset_import();
  imported->set_domain("");
  imported->set_version(options.opset);
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name("centermask");
  Translator translator(graph, options.opset, options.other_size != nullptr);
  translator.translate(traced);
  built.op_counts = translator.op_counts();
  return built;
}

// The first difference between the graphs of the two traces (their operations and the
// constants they read, by content: the constants' names may differ where equal weights were
// pooled), or empty: what a dynamic graph cannot hold.
std::string first_size_dependence(const onnx::GraphProto& a, const onnx::GraphProto& b) {
  if (a.node_size() != b.node_size())
    return fmt::format("the graph has {} operations at one size and {} at the other", a.node_size(),
                       b.node_size());
  const auto constants_of = [](const onnx::GraphProto& graph) {
    std::map<std::string, const onnx::TensorProto*> constants;
    for (const onnx::TensorProto& t : graph.initializer()) constants[t.name()] = &t;
    return constants;
  };
  const auto constants_a = constants_of(a), constants_b = constants_of(b);
  const auto canonical = [](onnx::NodeProto node,
                            const std::map<std::string, const onnx::TensorProto*>& constants) {
    for (int i = 0; i < node.input_size(); ++i) {
      const auto found = constants.find(node.input(i));
      if (found == constants.end()) continue;
      onnx::TensorProto content = *found->second;
      content.clear_name();
      node.set_input(i, "constant:" + content.SerializeAsString());
    }
    return node.SerializeAsString();
  };
  for (int i = 0; i < a.node_size(); ++i)
    if (canonical(a.node(i), constants_a) != canonical(b.node(i), constants_b))
      return fmt::format("{} differs between the two sizes", a.node(i).name());
  return {};
}

// The input's and outputs' dimensions that differ between the two traces become named
// (dim_param): batch, height, width for the input; batch or <output>_<axis> for outputs.
void name_dynamic_dimensions(onnx::GraphProto* graph, const onnx::GraphProto& other) {
  const auto rename = [](onnx::ValueInfoProto* info, const onnx::ValueInfoProto& at_other_size,
                         const std::vector<std::string>& names, std::int64_t batch) {
    onnx::TensorShapeProto* shape = info->mutable_type()->mutable_tensor_type()->mutable_shape();
    const onnx::TensorShapeProto& other_shape = at_other_size.type().tensor_type().shape();
    for (int i = 0; i < shape->dim_size(); ++i) {
      const std::int64_t here = shape->dim(i).dim_value();
      if (here == other_shape.dim(i).dim_value()) continue;
      const std::string name = i == 0 && here == batch ? "batch"
                               : static_cast<std::size_t>(i) < names.size()
                                   ? names[static_cast<std::size_t>(i)]
                                   : fmt::format("{}_{}", info->name(), i);
      shape->mutable_dim(i)->set_dim_param(name);
    }
  };
  const std::int64_t batch = graph->input(0).type().tensor_type().shape().dim(0).dim_value();
  rename(graph->mutable_input(0), other.input(0), {"batch", "channels", "height", "width"}, batch);
  for (int i = 0; i < graph->output_size(); ++i)
    rename(graph->mutable_output(i), other.output(i), {}, batch);
}

}  // namespace

std::map<std::string, int> write_onnx(const TracedNetwork& traced, const std::filesystem::path& out,
                                      const OnnxWriteOptions& options,
                                      const ExportMetadata& metadata) {
  BuiltModel built = build_model(traced, options, metadata);
  onnx::ModelProto& model = built.model;
  if (options.other_size != nullptr) {
    const BuiltModel other = build_model(*options.other_size, options, metadata);
    const std::string dependence = first_size_dependence(model.graph(), other.model.graph());
    if (!dependence.empty())
      throw InputError(fmt::format(
          "{}: --dynamic: the graph depends on the input's size where it was traced ({}); "
          "export one graph per size with --input-size{}",
          out.string(), dependence,
          options.postprocess ? ", or the raw maps with --postprocess off" : ""));
    name_dynamic_dimensions(model.mutable_graph(), other.model.graph());
  }
  try {
    if (options.float16) convert_to_float16(model.mutable_graph());
  } catch (const std::logic_error& e) {
    throw InputError(fmt::format("{}: --dtype fp16: {}", out.string(), e.what()));
  }
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& e) {
    throw InputError(
        fmt::format("{}: ONNX's checker refused the exported graph: {}", out.string(), e.what()));
  }
  const std::filesystem::path temporary = out.string() + ".tmp";
  {
    std::ofstream file(temporary, std::ios::binary);
    if (!file || !model.SerializeToOstream(&file))
      throw InputError(fmt::format("{}: cannot write", temporary.string()));
  }
  std::filesystem::rename(temporary, out);
  return built.op_counts;
}

#endif  // CENTERMASK_HAVE_ONNX

}  // namespace centermask
