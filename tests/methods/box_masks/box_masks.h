#pragma once
// A fourth method that lives only in the tests, to show that the engine is closed: "box
// masks", a CenterNet-style detector (a center heatmap and a box size per cell, at stride 4)
// whose mask of an object is its box. It is registered from this folder with one
// register_method() call; no engine, config or command file names it, and it trains, resumes,
// predicts, tests and has an upper bound through the same commands as the built-in methods.
// docs/adding_a_method.md walks through it.

#include <torch/torch.h>

#include <string>

#include "centermask/modeling/method_registry.h"

namespace centermask::box_masks {

/// model.box_masks.*; num_classes and the backbone come from the shared model.* keys.
struct BoxMasksOptions {
  int num_classes = 1;
  std::string backbone = "resnet18";
  int backbone_width = 16;

  int head_channels = 16;    ///< model.box_masks.head_channels
  double size_weight = 0.1;  ///< model.box_masks.loss_weights.size

  /// std::invalid_argument naming the key otherwise.
  void validate() const;
};

/// The method's keys (model.box_masks.*), found by MethodOptionsOf<BoxMasksOptions>.
void declare_option_keys(OptionKeys& keys, BoxMasksOptions& options);

/// Everything the engine needs to know of the method: register_method(registration()).
MethodRegistration registration();

}  // namespace centermask::box_masks
