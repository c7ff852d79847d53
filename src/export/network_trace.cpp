// Tracing a network's inference; see network_trace.h.

#include "export/network_trace.h"

#include <fmt/format.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/constant_pooling.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "centermask/common/error.h"

namespace centermask {

TracedNetwork trace_network(MetaArchitectureImpl& model, const torch::Tensor& example,
                            const TraceOutputs& wanted) {
  const bool was_training = model.is_training();
  model.eval();
  // The weights enter the graph as constants, which must not ask for gradients.
  std::vector<torch::Tensor> needed_grad;
  for (torch::Tensor& p : model.parameters())
    if (p.requires_grad()) {
      p.requires_grad_(false);
      needed_grad.push_back(p);
    }
  const auto restore = [&] {
    for (torch::Tensor& p : needed_grad) p.requires_grad_(true);
    if (was_training) model.train();
  };
  TracedNetwork traced;
  try {
    torch::NoGradGuard no_grad;
    auto [state, outputs] = torch::jit::tracer::trace(
        {example},
        [&](torch::jit::Stack inputs) {
          const auto network_outputs = model.run_network(inputs.at(0).toTensor());
          const auto maps = wanted.decode ? model.decoded_outputs(*network_outputs, wanted.predict,
                                                                  wanted.mask_size)
                                          : model.raw_maps(*network_outputs);
          if (maps.empty())
            throw InputError(
                wanted.decode ? fmt::format("--postprocess on: {}'s decoding has no export yet; "
                                            "--postprocess off exports its raw maps",
                                            model.method_name())
                              : fmt::format("{} has no export (no raw maps)", model.method_name()));
          torch::jit::Stack stack;
          traced.output_names.clear();
          for (const auto& [name, map] : maps) {
            traced.output_names.push_back(name);
            stack.emplace_back(map);
          }
          return stack;
        },
        [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false,
        /*force_outplace=*/false);
    traced.graph = state->graph;
    for (const c10::IValue& value : outputs) traced.example_outputs.push_back(value.toTensor());
  } catch (...) {
    restore();
    throw;
  }
  restore();
  // Weight arithmetic done on the way (BatchNorm folding, transposed-convolution weights as
  // convolution weights) is computed once here, so that the graph holds the folded weights.
  torch::jit::Inline(*traced.graph);
  torch::jit::ConstantPropagation(traced.graph);
  torch::jit::EliminateDeadCode(traced.graph);
  torch::jit::ConstantPooling(traced.graph);
  return traced;
}

}  // namespace centermask
