// `centermask train`: trains a config into a run folder (see engine/trainer.h for what the
// folder holds), resumes it, or lists the config keys.

#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "centermask/common/error.h"
#include "centermask/engine/config.h"
#include "centermask/engine/distributed.h"
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
  int nproc_per_node = 0;  ///< > 0: start that many ranks of this command on this machine
};

// A TCP port nobody listens on now (the kernel's choice), for the ranks' rendezvous.
int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw InputError(std::string("cannot open a socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0)
    port = ntohs(address.sin_port);
  ::close(fd);
  if (port <= 0) throw InputError("cannot find a free local port for the ranks' rendezvous");
  return port;
}

// This process's own command line (to start the ranks with), without --nproc-per-node.
std::vector<std::string> own_arguments_without_launcher() {
  std::string all;
  if (std::FILE* in = std::fopen("/proc/self/cmdline", "rb")) {
    char chunk[4096];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof(chunk), in)) > 0;) all.append(chunk, n);
    std::fclose(in);
  }
  if (!all.empty() && all.back() == '\0') all.pop_back();
  std::vector<std::string> args;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::vector<std::string> kept;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc-per-node") {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind("--nproc-per-node=", 0) == 0) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

extern "C" void ignore_in_launcher(int) {}

// train's exit status when a data-parallel rank fails (see its help).
constexpr int kRankFailedExit = 4;

// `--nproc-per-node N`: N copies of this command as ranks 0..N-1 of one group on this machine
// (torchrun's variables set for each), then waits. The first rank to fail ends the others
// (SIGTERM: each writes nothing more; rank 0 keeps its last checkpoint) and is named.
int launch_local_ranks(int ranks) {
  if (std::getenv("WORLD_SIZE") != nullptr)
    throw InputError(
        "--nproc-per-node starts the ranks itself; WORLD_SIZE is already set (this process is "
        "a rank of a group): use one or the other");
  const std::vector<std::string> args = own_arguments_without_launcher();
  if (args.empty()) throw InputError("cannot read this process's command line");
  const char* port_text = std::getenv("MASTER_PORT");
  const int port =
      port_text != nullptr && *port_text != '\0' ? std::atoi(port_text) : free_local_port();
  // Ctrl-C reaches every rank through the terminal: they checkpoint and stop; the launcher
  // waits for them instead of dying first.
  ::signal(SIGINT, ignore_in_launcher);
  ::signal(SIGTERM, ignore_in_launcher);
  std::vector<pid_t> children;
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw InputError(std::string("cannot start a rank: ") + std::strerror(errno));
    if (pid == 0) {
      ::setenv("RANK", std::to_string(rank).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "error: rank %d: cannot start %s: %s\n", rank, args[0].c_str(),
                   std::strerror(errno));
      std::_Exit(127);
    }
    children.push_back(pid);
  }
  std::fprintf(stderr, "started %d ranks on this machine (rendezvous 127.0.0.1:%d)\n", ranks, port);
  int result = 0;
  std::size_t running = children.size();
  bool ending = false;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = std::find(children.begin(), children.end(), pid);
    if (it == children.end()) continue;
    const int rank = static_cast<int>(it - children.begin());
    *it = -1;
    --running;
    const bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    // A rank that ended by itself says why with its status (2 bad input, 3 diverged, 130
    // interrupted, 4 its group failed): passed on. A rank killed from outside (the OOM killer,
    // `kill -9`) has only the signal: that is a data-parallel rank failing, exit 4 as
    // documented, not the shell's 128 + signal.
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : kRankFailedExit;
    if (failed && !ending) {
      std::fprintf(stderr, "error: rank %d of %d %s; ending the other ranks\n", rank, ranks,
                   WIFEXITED(status) ? fmt::format("exited with status {}", code).c_str()
                                     : fmt::format("was killed by signal {} ({})", WTERMSIG(status),
                                                   strsignal(WTERMSIG(status)))
                                           .c_str());
      result = code;
      ending = true;
      for (const pid_t other : children)
        if (other > 0) ::kill(other, SIGTERM);
    } else if (failed && result == 0) {
      result = code;
    }
  }
  return result;
}

int run_train(TrainCommandOptions o) {
  if (o.nproc_per_node > 0 && !o.list_keys) return launch_local_ranks(o.nproc_per_node);
  if (o.list_keys) {
    for (const auto& [key, doc] : config_keys())
      std::printf("%-36s %s\n", key.c_str(), doc.c_str());
    return 0;
  }
  if (o.out_dir.empty()) throw InputError("--out RUN_DIR is required");
  if (!o.device.empty()) o.overrides.push_back("runtime.device=" + o.device);
  if (o.threads >= 0) o.overrides.push_back("runtime.threads=" + std::to_string(o.threads));
  append_environment_overrides(&o.overrides);
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
  options.distributed = distributed_environment_from_variables();
  try {
    const TrainOutcome outcome = train(config, o.out_dir, options);
    if (outcome.status == TrainStatus::kInterrupted) return 130;
    if (outcome.mask_ap >= 0)
      std::printf("mask AP %.4f  box AP %.4f  (%s/metrics.json)\n", outcome.mask_ap, outcome.box_ap,
                  o.out_dir.c_str());
    return 0;
  } catch (const TrainingDiverged& e) {
    if (options.distributed && options.distributed->world_size > 1)
      std::fprintf(stderr, "error: rank %d: %s\n", options.distributed->rank, e.what());
    else
      std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  } catch (const DistributedFailure& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return kRankFailedExit;
  }
}

}  // namespace

CommandRunner add_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "train",
      "train a model from a YAML config into a run folder (exit 130 when interrupted, "
      "3 when the loss diverges, 4 when a data-parallel rank fails)");
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
  cmd->add_option("--nproc-per-node", options->nproc_per_node,
                  "start N data-parallel ranks of this command on this machine (solver.batch_size "
                  "is the global batch; torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT work "
                  "too, for many machines)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--list-keys", options->list_keys, "print every config key with its default");
  return [options]() { return run_train(*options); };
}

}  // namespace centermask::cli
