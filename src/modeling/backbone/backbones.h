#pragma once
// Constructors of the concrete backbones, for build_backbone.

#include "centermask/modeling/backbone.h"

namespace centermask {

std::shared_ptr<BackboneImpl> make_resnet(int depth, int width, bool skip_connections,
                                          int output_channels);
/// DLA-34 with CenterNet's deformable convolutions in the up path, or plain 3×3 convolutions.
std::shared_ptr<BackboneImpl> make_dla34(bool deformable);
/// An hourglass network of `stacks` stacked modules, levels with channels `dims` (one more
/// than the levels) and `counts` residuals per level, the stem's first conv with
/// `stem_channels`, each stack's output with `output_channels` (make_hourglass104: CenterNet's).
std::shared_ptr<BackboneImpl> make_hourglass(int stacks, const std::vector<int>& dims,
                                             const std::vector<int>& counts, int stem_channels,
                                             int output_channels);
std::shared_ptr<BackboneImpl> make_hourglass104();

}  // namespace centermask
