#pragma once
// Where and how the network runs, for training and inference alike: the device, the threads,
// the arithmetic (fp32, or bf16 / fp16 under autocast) and the tensors' memory layout.
#include <torch/torch.h>

#include <string>

#include "centermask/engine/config.h"

namespace centermask {

/// "cpu", "cuda", "cuda:N" as a device; InputError (naming runtime.device) for anything else
/// and for CUDA when this LibTorch has none or sees no GPU.
torch::Device resolve_device(const std::string& name);

/// Sets LibTorch's intra-op threads (0 = the cores this process may use), OpenBLAS's own
/// threads (blas_threads; ≤ 0 leaves the library's setting; see common/blas_threads.h) and the
/// allocator settings that keep small training steps out of the kernel; returns the thread
/// count.
int configure_runtime(int threads, int blas_threads = 1);

/// What this build and machine run with, for `centermask --version`: LibTorch's version, CUDA
/// (built with it, devices seen), the CPU features the precisions use (AVX-512 BF16, AMX:
/// bf16 under `auto`), LibTorch's threads and the BLAS.
std::string runtime_description();

/// The precision the network runs in at inference: fp32, or bf16 / fp16 under LibTorch's
/// autocast (convolutions and matrix products in reduced precision, the rest in fp32).
enum class InferencePrecision { kFloat32, kBFloat16, kFloat16 };

/// "fp32", "bf16", "fp16" checked against what `device` can run: InputError naming `field`
/// for another name, fp16 on the CPU, or bf16 on a CPU without AVX-512 BF16 or AMX (there
/// oneDNN would emulate it, slower than fp32). "auto" is bf16 where the hardware has it (a
/// GPU, or a CPU with AVX-512 BF16 / AMX) and fp32 elsewhere: one config that runs at the
/// best speed on any machine.
InferencePrecision parse_inference_precision(const std::string& name, const torch::Device& device,
                                             const std::string& field = "--dtype");

/// "fp32", "bf16" or "fp16".
const char* inference_precision_name(InferencePrecision precision);

/// "auto", "contiguous" or "channels_last"; InputError naming `field` otherwise.
MemoryFormatChoice parse_memory_format(const std::string& name, const std::string& field);

/// Whether the network's tensors go channels-last for `choice` (kAuto: when it runs in bf16 on
/// the CPU, where oneDNN's kernels work in that order and training measured 16 % more
/// images/s; fp32 on the CPU gained nothing, and the GPU was not measured).
bool use_channels_last(MemoryFormatChoice choice, InferencePrecision precision,
                       const torch::Device& device);

/// Every 4-D parameter and buffer of `model` re-laid out channels-last: the same values and
/// shapes, other strides. Later operations keep the layout (an optimizer's state made with
/// zeros_like, autograd's gradients), and everything that reads raw memory makes its input
/// contiguous first.
void convert_to_channels_last(torch::nn::Module& model);

/// Autocast for the device while alive (nothing for fp32). Decoding runs inside it too, so
/// that the method's products over network outputs see one dtype.
class AutocastScope {
 public:
  AutocastScope(InferencePrecision precision, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false, cuda_ = false;
};

/// The cores this process may run on (its CPU affinity).
int available_cores();

}  // namespace centermask
