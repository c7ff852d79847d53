#pragma once
// Each subcommand registers itself on the root app and returns the function that runs it.

#include <CLI/CLI.hpp>
#include <functional>

namespace centermask::cli {

using CommandRunner = std::function<int()>;

CommandRunner add_eval_command(CLI::App& app);
CommandRunner add_synth_command(CLI::App& app);
CommandRunner add_show_command(CLI::App& app);
#ifdef CENTERMASK_WITH_TORCH
CommandRunner add_train_command(CLI::App& app);
CommandRunner add_predict_command(CLI::App& app);
CommandRunner add_test_command(CLI::App& app);
CommandRunner add_ablate_command(CLI::App& app);
#endif

}  // namespace centermask::cli
