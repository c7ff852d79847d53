// LibTorch is installed, links, and computes: the stack every model part will stand on.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

#include "centermask/common/blas_threads.h"

TEST(TorchSmoke, MatmulAndAutogradWork) {
  torch::manual_seed(0);
  torch::Tensor a = torch::randn({13, 7}, torch::requires_grad());
  torch::Tensor b = torch::randn({7, 5});
  torch::Tensor loss = torch::mm(a, b).sum();
  loss.backward();
  // d(sum(a @ b))/da = row sums of b, broadcast over a's rows.
  torch::Tensor expected = b.sum(1).unsqueeze(0).expand({13, 7});
  EXPECT_TRUE(torch::allclose(a.grad(), expected));
}

TEST(TorchSmoke, ThreadCountCanBeSetToTheCores) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(cores);
  EXPECT_EQ(torch::get_num_threads(), cores);
}

// runtime.blas_threads: OpenBLAS (what Debian's LibTorch calls for matrix products here) is
// found in the process and its thread count follows the setting; products stay correct with
// one BLAS thread.
TEST(TorchSmoke, OpenBlasThreadsFollowTheSetting) {
  const centermask::BlasThreadsResult first = centermask::set_blas_threads(0);  // 0: unchanged
  if (!first.found) GTEST_SKIP() << "no OpenBLAS loaded in this build";
  EXPECT_GE(first.previous, 1);
  EXPECT_EQ(centermask::blas_threads(), first.previous);
  centermask::set_blas_threads(1);
  EXPECT_EQ(centermask::blas_threads(), 1);
  torch::manual_seed(1);
  const torch::Tensor a = torch::randn({300, 200}, torch::kFloat64);
  const torch::Tensor b = torch::randn({200, 100}, torch::kFloat64);
  const torch::Tensor one_thread = torch::mm(a, b);
  centermask::set_blas_threads(2);
  EXPECT_EQ(centermask::blas_threads(), 2);
  EXPECT_TRUE(torch::allclose(one_thread, torch::mm(a, b), 1e-12, 1e-12));
  EXPECT_EQ(centermask::set_blas_threads(first.previous).previous, 2);
}
