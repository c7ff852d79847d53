// The `centermask` program's body (main.cpp calls it): parses the command line and runs the
// subcommand. In a library so that a test can run the commands in its own process, with
// what it registered there (a test-only method) known to them.

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "centermask/common/error.h"
#include "command_runner.h"
#ifndef CENTERMASK_EVAL_ONLY
#include "commands.h"
#endif
#ifdef CENTERMASK_WITH_TORCH
#include "centermask/engine/runtime.h"
#include "centermask/export/network_export.h"
#endif

#ifndef CENTERMASK_WITH_TORCH
namespace {

#ifndef CENTERMASK_EVAL_ONLY
constexpr const char* kModelCommands[] = {"train",          "predict",     "test",
                                          "ablate",         "upper-bound", "bench",
                                          "export-weights", "export",      "report"};
#endif

bool is_model_command(const char* name) {
#ifdef CENTERMASK_EVAL_ONLY
  // The lean program is the evaluator alone (no OpenCV, no LibTorch to load: it starts in
  // milliseconds); every other command, and the help that lists them all, is the partner's.
  return std::strcmp(name, "eval") != 0;
#else
  for (const char* command : kModelCommands)
    if (std::strcmp(name, command) == 0) return true;
  // The version's LibTorch, CUDA and CPU lines are the LibTorch build's to tell.
  return std::strcmp(name, "--version") == 0;
#endif
}

// Runs the LibTorch build of the program in this process, with the same arguments.
int hand_over_to_torch_program(char** argv) {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::filesystem::path torch_program =
      (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "centermask-torch";
  ::execv(torch_program.c_str(), argv);
  const char* command = argv[1] != nullptr ? argv[1] : "";
  if (std::strcmp(command, "--version") == 0) {
    std::printf("centermask %s (built without LibTorch: synth, show, eval)\n", CENTERMASK_VERSION);
    return 0;
  }
  std::fprintf(stderr,
               "error: %s: %s: `centermask %s` needs the LibTorch build of the program (build "
               "with -DCENTERMASK_WITH_TORCH=ON)\n",
               torch_program.c_str(), std::strerror(errno), command);
  return 2;
}

}  // namespace
#endif

namespace centermask::cli {

int run(int argc, char** argv) {
#ifndef CENTERMASK_WITH_TORCH
  if (argc > 1 && is_model_command(argv[1])) return hand_over_to_torch_program(argv);
#ifdef CENTERMASK_EVAL_ONLY
  if (argc <= 1) return hand_over_to_torch_program(argv);
#endif
#endif
  CLI::App app{"CenterMask: single-shot instance segmentation (train, predict, evaluate)"};
#ifndef CENTERMASK_WITH_TORCH
  app.footer(
      "Model commands: train, predict, test, ablate, upper-bound, bench, export-weights, export, "
      "report "
      "(see "
      "`centermask train "
      "--help`); "
      "they run "
      "in centermask-torch beside this program.");
#endif
  app.require_subcommand(1);
#ifdef CENTERMASK_WITH_TORCH
  app.set_version_flag("--version", [] {
    return fmt::format("centermask {}\n{}\nONNX export: {}", CENTERMASK_VERSION,
                       runtime_description(),
                       onnx_export_available() ? "yes" : "no (built without libonnx-dev)");
  });
#else
  app.set_version_flag("--version", CENTERMASK_VERSION);
#endif
  const std::vector<std::pair<std::string, centermask::cli::CommandRunner>> commands = {
      {"eval", centermask::cli::add_eval_command(app)},
#ifndef CENTERMASK_EVAL_ONLY
      {"synth", centermask::cli::add_synth_command(app)},
      {"show", centermask::cli::add_show_command(app)},
      {"convert", centermask::cli::add_convert_command(app)},
      {"check-data", centermask::cli::add_check_data_command(app)},
#endif
#ifdef CENTERMASK_WITH_TORCH
      {"train", centermask::cli::add_train_command(app)},
      {"predict", centermask::cli::add_predict_command(app)},
      {"test", centermask::cli::add_test_command(app)},
      {"ablate", centermask::cli::add_ablate_command(app)},
      {"upper-bound", centermask::cli::add_upper_bound_command(app)},
      {"bench", centermask::cli::add_bench_command(app)},
      {"export-weights", centermask::cli::add_export_weights_command(app)},
      {"export", centermask::cli::add_export_command(app)},
      {"report", centermask::cli::add_report_command(app)},
#endif
  };
  // Each command's --help ends with a line to copy.
  const std::pair<const char*, const char*> examples[] = {
      {"synth", "centermask synth --preset demo --out data/synth --train 2000 --val 200"},
      {"show", "centermask show --gt data/synth/val.json --images data/synth/val --out pictures"},
      {"eval", "centermask eval --gt instances_val2017.json --results results.json --iou segm"},
      {"convert", "centermask convert --from labelme --input photos/ --out photos/train.json"},
      {"check-data",
       "centermask check-data --gt photos/train.json --images photos/ --config "
       "configs/centermask_demo_cpu.yaml"},
      {"train",
       "centermask train --config configs/centermask_demo_cpu.yaml --out runs/mine --set "
       "data.train_json=train.json --set data.train_images=train/"},
      {"predict",
       "centermask predict --weights runs/mine/model_final.pt --input photos/ --out "
       "predictions"},
      {"test", "centermask test --weights runs/mine/model_final.pt --gt val.json --images val/"},
      {"ablate", "centermask ablate --config configs/centermask_demo_cpu.yaml --out runs/ablation"},
      {"upper-bound",
       "centermask upper-bound --gt val.json --images val/ --config "
       "configs/centermask_demo_cpu.yaml --input-size 320"},
      {"bench", "centermask bench --weights runs/mine/model_final.pt --size 512"},
      {"export-weights",
       "centermask export-weights --weights runs/mine/model_final.pt --out weights.pth"},
      {"export", "centermask export --weights runs/mine/model_final.pt --out model.onnx"},
      {"report", "centermask report runs/mine"},
  };
  for (const auto& [name, example] : examples)
    for (CLI::App* command : app.get_subcommands({}))
      if (command->get_name() == name) command->footer(fmt::format("Example:\n  {}", example));
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

}  // namespace centermask::cli
