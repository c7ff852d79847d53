// `centermask export-weights`: a checkpoint's weights as a PyTorch state_dict file, for
// `torch.load` in Python (inspection, conversion, another framework) or for
// model.backbone_weights of another run.

#include <fmt/format.h>

#include <cstdio>

#include "centermask/engine/inference.h"
#include "centermask/modeling/backbone_weights.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct ExportWeightsOptions {
  std::string weights;
  std::string out;
  bool backbone_only = false;
};

int run_export_weights(const ExportWeightsOptions& o) {
  const TrainedModel trained = load_trained_model(o.weights, torch::kCPU);
  StateDict weights;
  if (o.backbone_only) {
    // Our backbone's names under "backbone.", as in the whole model of a CenterMask run, so
    // that the file reads back as ours whichever method it initialises.
    for (auto& [name, tensor] : state_dict_of(trained.model->backbone_module()))
      weights.emplace_back("backbone." + name, tensor);
  } else {
    weights = state_dict_of(*trained.model);
  }
  write_state_dict(o.out, weights);
  std::int64_t values = 0;
  for (const auto& [name, tensor] : weights) values += tensor.numel();
  std::printf("%s: %zu tensors (%lld values) of %s's %s, as a state_dict: torch.load(\"%s\")\n",
              o.out.c_str(), weights.size(), static_cast<long long>(values), o.weights.c_str(),
              o.backbone_only ? "backbone" : "model", o.out.c_str());
  return 0;
}

}  // namespace

CommandRunner add_export_weights_command(CLI::App& app) {
  auto options = std::make_shared<ExportWeightsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "export-weights",
      "write a checkpoint's weights as a PyTorch state_dict (torch.load reads it; "
      "model.backbone_weights takes it)");
  cmd->add_option("--weights", options->weights, "checkpoint (model_final.pt or last.pt)")
      ->required();
  cmd->add_option("--out", options->out, "the .pth file to write")->required();
  cmd->add_flag("--backbone-only", options->backbone_only,
                "only the backbone (and its pyramid): a starting point for model.backbone_weights");
  return [options]() { return run_export_weights(*options); };
}

}  // namespace centermask::cli
