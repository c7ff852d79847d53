// LibTorch is installed, links, and computes: the stack every model part will stand on.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

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
