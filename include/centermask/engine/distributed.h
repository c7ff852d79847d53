#pragma once
// Data-parallel training on LibTorch's torch.distributed (c10d): a TCPStore for the rendezvous
// and a Gloo process group for the collectives (CPU tensors, and CUDA tensors through host
// copies). One process per rank; each reads its own shard of every epoch (data/loader.h),
// gradients are averaged over the ranks in buckets after backward, rank 0 alone writes the
// run's files. The process group is joined from torchrun's variables, so the same command runs
// under `centermask train --nproc-per-node N` (which starts the ranks itself), under
// `torchrun --no-python centermask train ...`, or by hand on each node.
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace centermask {

/// Where this process stands in a group: torchrun's variables.
struct DistributedEnvironment {
  int rank = 0;              ///< RANK
  int world_size = 1;        ///< WORLD_SIZE
  int local_rank = 0;        ///< LOCAL_RANK: this node's GPU index on CUDA
  int local_world_size = 1;  ///< LOCAL_WORLD_SIZE (ranks on this node; threads are shared out)
  std::string master_address = "127.0.0.1";  ///< MASTER_ADDR: rank 0's host
  int master_port = 29500;                   ///< MASTER_PORT: its TCPStore
};

/// The group this process belongs to per torchrun's variables, or nullopt when WORLD_SIZE is
/// unset (a single process). InputError naming the variable for a value that is not a number
/// or out of range (RANK ≥ WORLD_SIZE, a port outside 1–65535, a missing MASTER_PORT).
std::optional<DistributedEnvironment> distributed_environment_from_variables();

/// Whether this build can join a process group (LibTorch's c10d with Gloo's headers).
bool distributed_training_available();

/// A joined process group. Every method is a collective: all ranks call it in the same order.
/// A collective that fails — a rank that died closes its connections, a rank that hangs runs
/// past the timeout — throws DistributedFailure naming this rank and the operation.
class DataParallelGroup {
 public:
  /// Joins (rank 0 serves the store); waits up to `timeout` for every rank to arrive.
  /// InputError when the build has no Gloo or the store cannot be reached.
  static std::unique_ptr<DataParallelGroup> join(const DistributedEnvironment& environment,
                                                 std::chrono::milliseconds timeout);
  virtual ~DataParallelGroup() = default;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  /// Copies rank 0's parameters and buffers into every rank's model.
  virtual void broadcast_weights(torch::nn::Module& model) = 0;
  /// Replaces each gradient by its mean over the ranks: the gradients are packed into buckets
  /// of about `bucket_bytes`, one all-reduce each. Parameters without a gradient take part
  /// with zeros (ranks may differ in which ones a batch reached).
  virtual void average_gradients(const std::vector<torch::Tensor>& parameters) = 0;
  /// Replaces `values` (float32 or float64, any device) by their element-wise mean over the
  /// ranks: the logged losses are the whole global batch's.
  virtual void average_over_ranks(torch::Tensor& values, const char* what) = 0;
  /// Element-wise maximum over the ranks of a small float64 vector (times, stop flags).
  virtual std::vector<double> max_over_ranks(const std::vector<double>& values,
                                             const char* what) = 0;
  virtual void barrier(const char* what) = 0;

 protected:
  DataParallelGroup(int rank, int world_size) : rank_(rank), world_size_(world_size) {}

 private:
  int rank_;
  int world_size_;
};

/// A collective failed: a peer died or hung. The message names this rank and the operation.
class DistributedFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The gradients' bucket size: PyTorch DDP's default of 25 MiB.
constexpr std::int64_t kGradientBucketBytes = 25 << 20;

}  // namespace centermask
