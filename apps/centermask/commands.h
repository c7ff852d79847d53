#pragma once
// Each subcommand registers itself on the root app and returns the function that runs it.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace centermask::cli {

using CommandRunner = std::function<int()>;

/// What the commands that run a trained model (predict, test) share.
struct ModelRunOptions {
  std::string weights;
  std::string device = "cpu";
  int input_size = 0;  ///< 0 = the model's test.input_size
  int threads = 0;     ///< 0 = all cores
};

inline void add_model_run_options(CLI::App* cmd, ModelRunOptions* o) {
  cmd->add_option("--weights", o->weights, "checkpoint (model_final.pt or last.pt)")->required();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N");
  cmd->add_option("--input-size", o->input_size,
                  "test input side (multiple of 32; default: the model's test.input_size)");
  cmd->add_option("--threads", o->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
}

CommandRunner add_eval_command(CLI::App& app);
CommandRunner add_synth_command(CLI::App& app);
CommandRunner add_show_command(CLI::App& app);
#ifdef CENTERMASK_WITH_TORCH
CommandRunner add_train_command(CLI::App& app);
CommandRunner add_predict_command(CLI::App& app);
CommandRunner add_test_command(CLI::App& app);
CommandRunner add_ablate_command(CLI::App& app);
CommandRunner add_upper_bound_command(CLI::App& app);
#endif

}  // namespace centermask::cli
