#pragma once
// The inference form of the networks: at inference (eval mode, no autograd) BatchNorm is
// folded into the convolution before it and CenterNet's transposed-convolution upsampling runs
// as a 3×3 convolution + pixel shuffle — the same outputs up to float rounding, fewer and
// faster ops (modeling/backbone/layers.h). On by default; off runs the layers as they are,
// for measuring what the inference form buys (`centermask bench --fold off`) and for tests.

namespace centermask {

void set_inference_folding(bool enabled);
bool inference_folding();

}  // namespace centermask
