#pragma once
// Runs the `centermask` program as a user would and captures what it prints.

#include <string>

namespace centermask::testing {

struct CliRun {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};

/// Runs `program args` through the shell (args are passed as written).
CliRun run_program(const std::string& program, const std::string& args);

}  // namespace centermask::testing
