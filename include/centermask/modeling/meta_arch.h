#pragma once
// The method interface (detectron2's "meta-architecture"): what the engine — loader, trainer,
// checkpoints, inference, the commands — knows of a method. A method is
//   * its options, in the config's `model` section (model.meta_arch names the method);
//   * a pure target encoder: one augmented image's ground truth (in input pixels) → its
//     targets, run in the loader's worker threads, and the collation of a batch's targets;
//   * a network: forward(images) → outputs, loss(outputs, targets) → named scalar terms,
//     predict(outputs, infos) → instances in original-image pixels.
// Outputs and targets are the method's own types behind the opaque bases below: only the
// method that made them reads them. The engine names no method; build_meta_architecture()
// (method_registry.h) is the one place that maps a name to a method.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "centermask/data/target_encoder.h"
#include "centermask/data/transforms.h"
#include "centermask/modeling/predict_options.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// A network's outputs for a batch (the method's type).
struct MethodOutputs {
  virtual ~MethodOutputs() = default;
};

/// A loss: the weighted total that is minimised, and each term (unweighted) by name for the
/// log; all scalars. Terms are named in a fixed order per run (the log's columns).
struct MethodLosses {
  torch::Tensor total;
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

class MetaArchitectureImpl : public torch::nn::Module {
 public:
  /// The value of model.meta_arch that builds this method (recorded in checkpoints).
  virtual std::string method_name() const = 0;
  virtual int num_classes() const = 0;
  /// Network inputs must have sides divisible by this.
  virtual int size_divisor() const = 0;
  /// The encoder for this model's targets; max_objects caps the objects per image.
  virtual std::shared_ptr<const TargetEncoder> make_target_encoder(int max_objects) const = 0;

  /// Whether run_network's flip_test does something (CenterMask: CenterNet's flip test).
  /// Inference refuses test.flip_test for a method without one rather than ignore it.
  virtual bool supports_flip_test() const { return false; }
  /// images: (N, 3, H, W) normalised. With flip_test, where the method supports it, the
  /// mirrored pass is merged in (test time only; test.flip_test).
  virtual std::shared_ptr<const MethodOutputs> run_network(const torch::Tensor& images,
                                                           bool flip_test = false) = 0;
  /// Training loss of a batch's outputs against its collated targets (moved to `device`).
  virtual MethodLosses compute_losses(const MethodOutputs& outputs, const BatchTargets& targets,
                                      const torch::Device& device) const = 0;
  /// Detections per image in original-image pixels, highest score first; `infos` gives each
  /// image's input → original affine and original size.
  virtual std::vector<std::vector<Instance>> detect(const MethodOutputs& outputs,
                                                    const std::vector<ImageInfo>& infos,
                                                    const PredictOptions& options) const = 0;
  /// The outputs a perfect network would give for ground truth in input pixels (per image, of
  /// an input_height × input_width input), encoded with this method's own representation:
  /// decoded by detect(), they measure what the representation can reach (`centermask
  /// upper-bound`). Objects score near 1, everything else near 0.
  virtual std::shared_ptr<const MethodOutputs> perfect_network_outputs(
      const std::vector<std::vector<Instance>>& instances, int input_height,
      int input_width) const = 0;
  /// When a loss is not finite: which network output went non-finite ("" if none did), for
  /// the divergence message.
  virtual std::string first_non_finite_output(const MethodOutputs& outputs) const = 0;
  /// The backbone (with its pyramid, where the method has one): what pretrained weights
  /// initialise (model.backbone_weights).
  virtual torch::nn::Module& backbone_module() = 0;
  /// The network's raw maps by name in a fixed order, each (N, channels, H, W): what an
  /// exported network outputs for users who decode themselves (`centermask export
  /// --postprocess off`). Maps the method evaluates only at chosen locations (local shapes)
  /// are given densely. Empty: the method has no export.
  virtual std::vector<std::pair<std::string, torch::Tensor>> raw_maps(
      const MethodOutputs& /*outputs*/) const {
    return {};
  }
  /// The method's decoding written with tensor operations of fixed shapes, so that an exported
  /// graph gives final detections (`centermask export --postprocess on`): named outputs with
  /// top_k rows per image, the valid ones first, in input pixels; masks as mask_size ×
  /// mask_size probabilities over a box (see the method's header). What detect() keeps, up to
  /// resampling. Empty: the method's decoding has no export.
  virtual std::vector<std::pair<std::string, torch::Tensor>> decoded_outputs(
      const MethodOutputs& /*outputs*/, const PredictOptions& /*options*/,
      int /*mask_size*/) const {
    return {};
  }
};

/// The output of a method's `run_network`/targets as the method's type: std::logic_error when
/// another method's object is passed (an engine bug, not a user's mistake).
template <typename T, typename Base>
const T& method_cast(const Base& object, const char* method) {
  const T* typed = dynamic_cast<const T*>(&object);
  if (typed == nullptr)
    throw std::logic_error(std::string(method) + ": given another method's outputs or targets");
  return *typed;
}

}  // namespace centermask
