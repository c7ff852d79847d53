#pragma once
// What every command gives the program: a runner, added to the command line by add_*_command.
// The evaluator's command needs nothing more (no OpenCV, no LibTorch): the lean `centermask`
// is built from it alone.

#include <CLI/CLI.hpp>
#include <functional>

namespace centermask::cli {

using CommandRunner = std::function<int()>;

/// The program's body: parses the command line and runs the subcommand (main.cpp).
int run(int argc, char** argv);

CommandRunner add_eval_command(CLI::App& app);

}  // namespace centermask::cli
