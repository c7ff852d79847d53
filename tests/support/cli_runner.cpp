#include "support/cli_runner.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace centermask::testing {

CliRun run_program(const std::string& program, const std::string& args) {
  const std::string command = program + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  CliRun run;
  if (!pipe) return run;
  std::array<char, 4096> buffer{};
  std::size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    run.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

}  // namespace centermask::testing
