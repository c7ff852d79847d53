#pragma once
// Constructors of the concrete backbones, for build_backbone.

#include "centermask/modeling/backbone.h"

namespace centermask {

std::shared_ptr<BackboneImpl> make_resnet(int depth, int width, bool skip_connections,
                                          int output_channels);
std::shared_ptr<BackboneImpl> make_dla34();

}  // namespace centermask
