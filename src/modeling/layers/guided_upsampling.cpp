// Image-guided upsampling; see guided_upsampling.h.

#include "modeling/layers/guided_upsampling.h"

#include <stdexcept>

namespace centermask {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

nn::Sequential guided_upsampling_stage(int in_channels, int out_channels) {
  nn::Conv2d conv(nn::Conv2dOptions(in_channels + 3, out_channels, 3).padding(1));
  return nn::Sequential(conv, nn::ReLU(true));
}

torch::Tensor run_guided_upsampling(torch::Tensor x, std::vector<nn::Sequential>& stages,
                                    const torch::Tensor& images, int from_stride) {
  if (!stages.empty() && !images.defined())
    throw std::invalid_argument("guided upsampling: the input images are needed");
  int stride = from_stride;
  for (nn::Sequential& stage : stages) {
    stride /= 2;
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .scale_factor(std::vector<double>{2.0, 2.0})
                              .mode(torch::kBilinear)
                              .align_corners(false));
    const torch::Tensor guide =
        stride == 1 ? images : F::avg_pool2d(images, F::AvgPool2dFuncOptions(stride));
    x = stage->forward(torch::cat({x, guide}, 1));
  }
  return x;
}

}  // namespace centermask
