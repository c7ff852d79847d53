#pragma once
// Backbones: an image batch (N, 3, H, W) in, one feature map at output stride 4 out, with its
// ShapeSpec so that heads never guess channels or strides. H and W must be multiples of 32
// (the deepest level is stride 32 and is upsampled back level by level).

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace centermask {

/// What a feature map is: channels and the input pixels per feature cell.
struct ShapeSpec {
  int channels = 0;
  int stride_px = 0;
};

struct BackboneOptions {
  /// resnet18, resnet34, resnet50, resnet101 (CenterNet's deconvolution upsampling), dla34
  /// (DLAUp + IDAUp with CenterNet's deformable convolutions, DCNv2), dla34_plain (the same with
  /// plain 3×3 convolutions) or hourglass104 (two stacks; CenterNet's large_hourglass).
  std::string name = "dla34";
  /// ResNet only: channels of the first stage (the standard 64). The four stages have 1, 2, 4
  /// and 8 times this, the three upsampling stages 4, 2 and 1 times, and the output this many.
  /// Narrower networks (e.g. 32: about a quarter of the compute) suit small images and CPUs.
  int width = 64;
  /// ResNet only: add to each upsampling stage's output a 3×3 conv + BN projection of the
  /// backbone stage at that stride (layer3 at 16, layer2 at 8, layer1 at 4), as TTFNet's
  /// shortcuts and U-Net do. Without them (CenterNet's ResNet) every position and edge reaches
  /// the stride-4 heads through the stride-32 map, which a network trained from scratch
  /// learns slowly. DLA-34 aggregates its stages itself (IDAUp) and rejects this.
  bool skip_connections = false;
  /// ResNet only: channels of the last upsampling stage, the stride-4 map every head reads;
  /// 0 = `width` (CenterNet's 64 at the standard width). A narrow network otherwise hands its
  /// heads only `width` channels per cell, where the masks' detail has to pass.
  int output_channels = 0;
};

/// The names build_backbone accepts.
const std::vector<std::string>& backbone_names();

class BackboneImpl : public torch::nn::Module {
 public:
  /// (N, 3, H, W) → (N, output_shape().channels, H / 4, W / 4).
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  virtual ShapeSpec output_shape() const = 0;
  /// The multiple that input sides must be.
  virtual int size_divisor() const { return 32; }
  /// Stacked networks (Hourglass) give one feature map per stack, all like forward()'s, the
  /// last being forward()'s: training supervises each (intermediate supervision).
  virtual std::vector<torch::Tensor> forward_stacks(const torch::Tensor& images) {
    return {forward(images)};
  }
  virtual int num_stacks() const { return 1; }
};

/// The backbones with their own fixed widths (DLA-34 in both forms, Hourglass-104), to which
/// the ResNet width, skip and output-channel options do not apply.
bool has_fixed_widths(const std::string& backbone_name);

/// Throws std::invalid_argument naming the backbone when the name is unknown.
std::shared_ptr<BackboneImpl> build_backbone(const BackboneOptions& options);

/// Throws std::invalid_argument when an input of height × width cannot go through a backbone
/// whose sides must be multiples of `divisor`.
void check_input_size(int height, int width, int divisor);

}  // namespace centermask
