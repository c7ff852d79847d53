#pragma once
// The data stage's side of the method interface (modeling/meta_arch.h): a method's target
// encoder turns one augmented image's ground truth into that method's targets inside the
// loader's worker threads, and collates a batch's. The loader holds the encoder and never
// looks inside the targets.
#include <cstdint>
#include <memory>
#include <vector>

#include "centermask/structures/instances.h"

namespace centermask {

/// One image's encoded targets (the method's type).
struct SampleTargets {
  virtual ~SampleTargets() = default;
  /// Objects the encoder could not use (too small for the output grid, over the object cap):
  /// counted in the loader's statistics.
  virtual std::int64_t dropped_objects() const { return 0; }
};

/// A batch's targets, collated on the host (the method's type); the method's loss moves them
/// to the training device.
struct BatchTargets {
  virtual ~BatchTargets() = default;
};

/// Pure and thread-safe: the loader's workers call encode() concurrently.
class TargetEncoder {
 public:
  virtual ~TargetEncoder() = default;
  /// Classes the targets are encoded for (the dataset's must match).
  virtual int num_classes() const = 0;
  /// Targets for ground truth in input pixels of an input_height × input_width network input.
  virtual std::unique_ptr<SampleTargets> encode(const std::vector<Instance>& instances,
                                                int input_height, int input_width) const = 0;
  /// The batch's targets from its images' (all of one input size, in batch order).
  virtual std::shared_ptr<const BatchTargets> collate(
      const std::vector<std::unique_ptr<SampleTargets>>& samples) const = 0;
};

}  // namespace centermask
