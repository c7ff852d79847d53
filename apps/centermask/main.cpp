// `centermask`: one program for the whole workflow; each subcommand is a thin layer over the
// library. Exit codes: 0 success, 1 unusable input (the message names file and record),
// 2 bad command line.

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "centermask/common/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"CenterMask: single-shot instance segmentation (train, predict, evaluate)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", CENTERMASK_VERSION);
  const std::vector<std::pair<std::string, centermask::cli::CommandRunner>> commands = {
      {"synth", centermask::cli::add_synth_command(app)},
      {"show", centermask::cli::add_show_command(app)},
      {"eval", centermask::cli::add_eval_command(app)},
#ifdef CENTERMASK_WITH_TORCH
      {"train", centermask::cli::add_train_command(app)},
      {"predict", centermask::cli::add_predict_command(app)},
      {"test", centermask::cli::add_test_command(app)},
      {"ablate", centermask::cli::add_ablate_command(app)},
#endif
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    for (const auto& [name, runner] : commands) {
      if (app.got_subcommand(name)) return runner();
    }
  } catch (const centermask::InputError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
