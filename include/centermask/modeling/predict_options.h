#pragma once
// The test-time settings a method decodes with, apart from the network: what predict() and an
// exported graph's decoding (export/network_export.h) both take. No LibTorch here.

namespace centermask {

/// Test-time settings every method honours (from the config's `test` section).
struct PredictOptions {
  int top_k = 100;               ///< detections kept per image
  float score_threshold = 0.0f;  ///< below it a detection is dropped
  float mask_threshold = 0.4f;   ///< on the mask probability, where a method has one
  /// Multiplies each score by its mask's mean probability inside the mask (where the method
  /// supports it; others ignore it).
  bool mask_quality_scoring = false;
};

}  // namespace centermask
