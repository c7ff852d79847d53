#include "centermask/engine/distributed.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "centermask/common/error.h"

#ifdef CENTERMASK_HAVE_GLOO
// LibTorch guards the Gloo process group's declaration with the macro its own build defines.
#define USE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace centermask {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// A whole number from the environment in [low, high]; `fallback` when unset (nullopt: required).
int variable_as_int(const char* name, int low, int high, std::optional<int> fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') {
    if (fallback) return *fallback;
    throw InputError(
        fmt::format("{} is not set: a process group (WORLD_SIZE is set) needs RANK, WORLD_SIZE, "
                    "MASTER_ADDR and MASTER_PORT, as torchrun sets them",
                    name));
  }
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < low || value > high)
    throw InputError(
        fmt::format("{}={}: expected a whole number from {} to {}", name, text, low, high));
  return static_cast<int>(value);
}

}  // namespace

std::optional<DistributedEnvironment> distributed_environment_from_variables() {
  const char* world = std::getenv("WORLD_SIZE");
  if (world == nullptr || *world == '\0') return std::nullopt;
  DistributedEnvironment environment;
  environment.world_size = variable_as_int("WORLD_SIZE", 1, 1 << 20, std::nullopt);
  environment.rank = variable_as_int("RANK", 0, environment.world_size - 1, std::nullopt);
  environment.local_world_size = variable_as_int("LOCAL_WORLD_SIZE", 1, environment.world_size, 1);
  environment.local_rank = variable_as_int("LOCAL_RANK", 0, environment.world_size - 1,
                                           environment.rank % environment.local_world_size);
  if (const char* address = std::getenv("MASTER_ADDR"); address != nullptr && *address != '\0')
    environment.master_address = address;
  environment.master_port =
      variable_as_int("MASTER_PORT", 1, 65535,
                      environment.world_size == 1 ? std::optional<int>(29500) : std::nullopt);
  return environment;
}

#ifdef CENTERMASK_HAVE_GLOO

bool distributed_training_available() { return true; }

namespace {

class GlooGroup : public DataParallelGroup {
 public:
  GlooGroup(const DistributedEnvironment& environment, std::chrono::milliseconds timeout)
      : DataParallelGroup(environment.rank, environment.world_size) {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(environment.master_port);
    store_options.isServer = environment.rank == 0;
    store_options.numWorkers = static_cast<std::size_t>(environment.world_size);
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    const std::string where = fmt::format(
        "rank {} of {}: the rendezvous at MASTER_ADDR={} MASTER_PORT={}", environment.rank,
        environment.world_size, environment.master_address, environment.master_port);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(environment.master_address, store_options);
      check_same_world_size(environment, where);
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; on one machine the
      // loopback address; otherwise the address this host's name resolves to.
      if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
          interface != nullptr && *interface != '\0')
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
      else if (environment.master_address == "127.0.0.1" ||
               environment.master_address == "localhost")
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      options->threads = 2;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, environment.rank,
                                                           environment.world_size, options);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception& e) {
      throw InputError(fmt::format("{}: cannot join the process group within {} s: {}", where,
                                   timeout.count() / 1000, first_line(e.what())));
    }
  }

  // Ranks started with different WORLD_SIZE values would wait for each other until the
  // timeout: rank 0 publishes its size and every other rank compares its own with it.
  void check_same_world_size(const DistributedEnvironment& environment, const std::string& where) {
    const std::string key = "centermask/world_size_of_rank_0";
    const std::string mine = std::to_string(environment.world_size);
    if (environment.rank == 0) {
      store_->set(key, std::vector<std::uint8_t>(mine.begin(), mine.end()));
      return;
    }
    const std::vector<std::uint8_t> theirs_bytes = store_->get(key);
    const std::string theirs(theirs_bytes.begin(), theirs_bytes.end());
    if (theirs != mine)
      throw InputError(fmt::format(
          "{}: this rank was started with WORLD_SIZE={} but rank 0 with WORLD_SIZE={}: every "
          "rank of a group needs the same WORLD_SIZE",
          where, mine, theirs));
  }

  void broadcast_weights(torch::nn::Module& model) override {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> tensors;
    for (const torch::Tensor& p : model.parameters()) tensors.push_back(p);
    for (const torch::Tensor& b : model.buffers()) tensors.push_back(b);
    for (torch::Tensor& t : tensors) {
      std::vector<torch::Tensor> one{t};
      run(
          [&] {
            return group_->broadcast(one, {0, 0, std::chrono::milliseconds(-1)});
          },
          "broadcasting rank 0's weights");
    }
  }

  void average_gradients(const std::vector<torch::Tensor>& parameters) override {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    for (const torch::Tensor& p : parameters) {
      torch::Tensor& g = const_cast<torch::Tensor&>(p).mutable_grad();
      if (!g.defined()) g = torch::zeros_like(p);
      grads.push_back(g);
    }
    // Buckets of consecutive gradients of one dtype and device, ~kGradientBucketBytes each.
    std::size_t begin = 0;
    while (begin < grads.size()) {
      std::size_t end = begin;
      std::int64_t bytes = 0;
      while (end < grads.size() && grads[end].scalar_type() == grads[begin].scalar_type() &&
             grads[end].device() == grads[begin].device() &&
             (end == begin || bytes + grads[end].nbytes() <= kGradientBucketBytes)) {
        bytes += static_cast<std::int64_t>(grads[end].nbytes());
        ++end;
      }
      std::vector<torch::Tensor> flat_parts;
      for (std::size_t i = begin; i < end; ++i) flat_parts.push_back(grads[i].reshape({-1}));
      std::vector<torch::Tensor> bucket{torch::cat(flat_parts)};
      run([&] { return group_->allreduce(bucket); }, "averaging the gradients");
      bucket[0].div_(world_size());
      std::int64_t offset = 0;
      for (std::size_t i = begin; i < end; ++i) {
        const std::int64_t n = grads[i].numel();
        grads[i].copy_(bucket[0].narrow(0, offset, n).view_as(grads[i]));
        offset += n;
      }
      begin = end;
    }
  }

  void average_over_ranks(torch::Tensor& values, const char* what) override {
    std::vector<torch::Tensor> tensor{values.contiguous()};
    run([&] { return group_->allreduce(tensor); }, what);
    values = tensor[0].div_(world_size());
  }

  std::vector<double> max_over_ranks(const std::vector<double>& values, const char* what) override {
    std::vector<torch::Tensor> tensor{
        torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64))};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::MAX;
    run([&] { return group_->allreduce(tensor, options); }, what);
    const double* v = tensor[0].data_ptr<double>();
    return std::vector<double>(v, v + values.size());
  }

  void barrier(const char* what) override {
    run([&] { return group_->barrier(); }, what);
  }

 private:
  template <typename Start>
  void run(Start start, const char* what) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      throw DistributedFailure(fmt::format(
          "rank {} of {}: {} failed: another rank stopped, or did not answer within the "
          "timeout (runtime.distributed_timeout_minutes); see its output: {}",
          rank(), world_size(), what, first_line(e.what())));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

std::unique_ptr<DataParallelGroup> DataParallelGroup::join(
    const DistributedEnvironment& environment, std::chrono::milliseconds timeout) {
  return std::make_unique<GlooGroup>(environment, timeout);
}

#else  // no Gloo headers at build time

bool distributed_training_available() { return false; }

std::unique_ptr<DataParallelGroup> DataParallelGroup::join(const DistributedEnvironment&,
                                                           std::chrono::milliseconds) {
  throw InputError(
      "this build of centermask has no process groups (LibTorch's c10d was found without Gloo's "
      "headers): install libgloo-dev (scripts/install-deps.sh) and rebuild");
}

#endif

}  // namespace centermask
