#pragma once
// Weights in PyTorch's own file format: a `state_dict` saved by `torch.save` (the zip format
// of PyTorch ≥ 1.6), read and written with LibTorch's pickler, so that a backbone pretrained in
// PyTorch (torchvision's ResNets, CenterNet's or DLA's DLA-34) initialises ours, and our
// weights load in PyTorch with `torch.load`.
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace centermask {

/// Tensors by name, in the file's order.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

/// Reads a `torch.save` file holding a state_dict (a dict of name → tensor), or a checkpoint
/// dict holding one under "state_dict" or "model" (CenterNet's and detectron2's layouts).
/// InputError naming the file: missing, not a zip-format PyTorch file (PyTorch's legacy
/// format: say how to re-save it), or not a dict of tensors.
StateDict read_state_dict(const std::filesystem::path& file);

/// Writes `weights` as a state_dict PyTorch loads with `torch.load` (an OrderedDict of
/// tensors), through a temporary file renamed into place. InputError naming the file when it
/// cannot be written.
void write_state_dict(const std::filesystem::path& file, const StateDict& weights);

/// Every parameter and buffer of `module` by its dotted name (a state_dict of it).
StateDict state_dict_of(const torch::nn::Module& module);

/// Whose names a file uses: it decides the name mapping and whether the first convolution
/// expects RGB input normalised with ImageNet's statistics.
enum class WeightNaming {
  kOurs,                ///< our names (`centermask export-weights`), BGR as our pipeline feeds
  kTorchvisionResNet,   ///< torchvision's ResNet (conv1, bn1, layerN.M.conv1, downsample), RGB
  kCenterNetDla,        ///< CenterNet's pose_dla_dcn (base.*, dla_up.ida_N.*, ida_up.*), BGR
  kCenterNetHourglass,  ///< CenterNet's large_hourglass (pre, kps, cnvs, inters, …), BGR
  kImageNetDla,         ///< the DLA authors' ImageNet DLA-34 (base_layer, levelN, fc), RGB
};

/// What loading a backbone's weights did, for the user to check.
struct BackboneWeightsReport {
  WeightNaming naming = WeightNaming::kOurs;
  std::vector<std::string> loaded;            ///< our backbone's names that were set
  std::vector<std::string> left_initialised;  ///< our backbone's names the file did not have
  std::vector<std::string> unused;            ///< the file's names with no counterpart
  /// The first convolution was converted from RGB with ImageNet's normalisation to our BGR
  /// input and normalisation (weights per input channel, the following BN's running mean).
  bool stem_converted = false;
};

const char* weight_naming_name(WeightNaming naming);

/// Copies `weights` into `backbone` (a model's backbone module: stem, layerN, … or DLA's
/// base_layer, levelN, …), mapping the file's names to ours. A tensor whose shape differs from
/// ours is an InputError naming `file`, both names and both shapes; a file that sets nothing is
/// one too. Tensors of ours the file lacks keep their initialisation (listed in the report).
BackboneWeightsReport load_backbone_weights(torch::nn::Module& backbone, const StateDict& weights,
                                            const std::string& file);

/// One line for logs: counts, the naming, and a few of the names left initialised / unused.
std::string describe(const BackboneWeightsReport& report);

}  // namespace centermask
