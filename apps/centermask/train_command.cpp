// `centermask train`: trains a config into a run folder (see engine/trainer.h for what the
// folder holds), resumes it, or lists the config keys.

#include <fmt/format.h>

#include <cstdio>
#include <iostream>

#include "centermask/common/error.h"
#include "centermask/engine/config.h"
#include "centermask/engine/trainer.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct TrainCommandOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string out_dir;
  bool resume = false;
  bool overwrite = false;
  bool list_keys = false;
  std::string device;
  int threads = -1;
};

int run_train(TrainCommandOptions o) {
  if (o.list_keys) {
    for (const auto& [key, doc] : config_keys())
      std::printf("%-36s %s\n", key.c_str(), doc.c_str());
    return 0;
  }
  if (o.out_dir.empty()) throw InputError("--out RUN_DIR is required");
  if (!o.device.empty()) o.overrides.push_back("runtime.device=" + o.device);
  if (o.threads >= 0) o.overrides.push_back("runtime.threads=" + std::to_string(o.threads));
  TrainConfig config;
  if (o.resume) {
    if (!o.config_path.empty())
      throw InputError(
          "--resume continues with the run's own config.yaml; leave out --config "
          "(use --set to change e.g. solver.epochs)");
    config = load_run_config(o.out_dir, o.overrides);
  } else {
    if (o.config_path.empty()) throw InputError("--config is required (or --resume)");
    config = load_train_config(o.config_path, o.overrides);
  }
  install_training_signal_handlers();
  TrainerOptions options;
  options.resume = o.resume;
  options.overwrite = o.overwrite;
  options.console = &std::cerr;
  try {
    const TrainOutcome outcome = train(config, o.out_dir, options);
    if (outcome.status == TrainStatus::kInterrupted) return 130;
    if (outcome.mask_ap >= 0)
      std::printf("mask AP %.4f  box AP %.4f  (%s/metrics.json)\n", outcome.mask_ap, outcome.box_ap,
                  o.out_dir.c_str());
    return 0;
  } catch (const TrainingDiverged& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
}

}  // namespace

CommandRunner add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "train a model from a YAML config into a run folder (exit 130 when interrupted, "
      "3 when the loss diverges)");
  cmd->add_option("--config", options->config_path, "YAML config (see configs/)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides,
                  "override a config key, KEY=VALUE (repeatable), e.g. --set solver.lr=1e-3");
  cmd->add_option("--out", options->out_dir, "run folder: config, log, checkpoints, metrics");
  CLI::Option* resume =
      cmd->add_flag("--resume", options->resume, "continue the run in --out from its last.pt");
  cmd->add_flag("--overwrite", options->overwrite, "replace a run already in --out")
      ->excludes(resume);
  cmd->add_option("--device", options->device, "cpu, cuda or cuda:N (= --set runtime.device=)");
  cmd->add_option("--threads", options->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--list-keys", options->list_keys, "print every config key with its default");
  return [options]() { return run_train(*options); };
}

}  // namespace centermask::cli
