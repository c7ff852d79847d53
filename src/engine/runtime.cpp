// Where and how the network runs; see runtime.h.

#include "centermask/engine/runtime.h"

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <malloc.h>
#include <sched.h>
#include <torch/version.h>

#include <fstream>
#include <thread>

#include "centermask/common/blas_threads.h"
#include "centermask/common/error.h"

namespace centermask {

torch::Device resolve_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    throw InputError(fmt::format("runtime.device: '{}' is not a device (cpu, cuda, cuda:N)", name));
  }
  if (device.is_cuda() && !torch::cuda::is_available())
    throw InputError(fmt::format(
        "runtime.device: '{}' requested, but this build's LibTorch has no CUDA or sees no GPU; "
        "build against a CUDA LibTorch or use runtime.device=cpu",
        name));
  return device;
}

namespace {

// Whether /proc/cpuinfo's flags list one of `flags` (x86 feature names).
bool cpu_has_any_flag(const std::vector<std::string>& flags) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    for (const std::string& flag : flags)
      if (line.find(' ' + flag + ' ') != std::string::npos) return true;
    return false;
  }
  return false;
}

}  // namespace

std::string runtime_description() {
  const bool avx512 = cpu_has_any_flag({"avx512f"});
  const bool avx512_bf16 = cpu_has_any_flag({"avx512_bf16"});
  const bool amx = cpu_has_any_flag({"amx_bf16"});
  const bool gpu = torch::cuda::is_available();
  const std::string cuda = gpu ? fmt::format("{} device(s)", torch::cuda::device_count())
                           : at::hasCUDA() ? "built with CUDA, no device seen"
                                           : "not built with CUDA";
  const auto yes_no = [](bool b) { return b ? "yes" : "no"; };
  return fmt::format(
      "LibTorch {}\nCUDA: {}\nCPU: AVX-512 {}, AVX-512 BF16 {}, AMX {} (bf16 under "
      "precision auto: {}); {} LibTorch threads",
      TORCH_VERSION, cuda, yes_no(avx512), yes_no(avx512_bf16), yes_no(amx),
      avx512_bf16 || amx || gpu ? "yes" : "no (fp32)", at::get_num_threads());
}

InferencePrecision parse_inference_precision(const std::string& name, const torch::Device& device,
                                             const std::string& field) {
  if (name == "fp32") return InferencePrecision::kFloat32;
  if (name == "auto")
    return device.is_cuda() || cpu_has_any_flag({"avx512_bf16", "amx_bf16"})
               ? InferencePrecision::kBFloat16
               : InferencePrecision::kFloat32;
  if (name == "fp16") {
    if (!device.is_cuda())
      throw InputError(field +
                       " fp16: half precision runs on the GPU (cuda); on the CPU use bf16 where "
                       "the CPU has it, or fp32");
    return InferencePrecision::kFloat16;
  }
  if (name == "bf16") {
    if (!device.is_cuda() && !cpu_has_any_flag({"avx512_bf16", "amx_bf16"}))
      throw InputError(field +
                       " bf16: this CPU has neither AVX-512 BF16 nor AMX (no avx512_bf16 or "
                       "amx_bf16 among /proc/cpuinfo's flags), so bf16 would be emulated, slower "
                       "than fp32; use fp32");
    return InferencePrecision::kBFloat16;
  }
  throw InputError(fmt::format("{} {}: expected fp32, bf16, fp16 or auto", field, name));
}

const char* inference_precision_name(InferencePrecision precision) {
  switch (precision) {
    case InferencePrecision::kBFloat16:
      return "bf16";
    case InferencePrecision::kFloat16:
      return "fp16";
    case InferencePrecision::kFloat32:
      break;
  }
  return "fp32";
}

MemoryFormatChoice parse_memory_format(const std::string& name, const std::string& field) {
  if (name == "auto") return MemoryFormatChoice::kAuto;
  if (name == "contiguous") return MemoryFormatChoice::kContiguous;
  if (name == "channels_last") return MemoryFormatChoice::kChannelsLast;
  throw InputError(fmt::format("{} {}: expected auto, contiguous or channels_last", field, name));
}

bool use_channels_last(MemoryFormatChoice choice, InferencePrecision precision,
                       const torch::Device& device) {
  switch (choice) {
    case MemoryFormatChoice::kContiguous:
      return false;
    case MemoryFormatChoice::kChannelsLast:
      return true;
    case MemoryFormatChoice::kAuto:
      break;
  }
  return device.is_cpu() && precision == InferencePrecision::kBFloat16;
}

void convert_to_channels_last(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  const auto relayout = [](torch::Tensor& t) {
    if (t.defined() && t.dim() == 4) t.set_data(t.contiguous(torch::MemoryFormat::ChannelsLast));
  };
  for (torch::Tensor& p : model.parameters()) relayout(p);
  for (torch::Tensor& b : model.buffers()) relayout(b);
}

AutocastScope::AutocastScope(InferencePrecision precision, const torch::Device& device) {
  if (precision == InferencePrecision::kFloat32) return;
  const at::ScalarType dtype =
      precision == InferencePrecision::kBFloat16 ? at::kBFloat16 : at::kHalf;
  cuda_ = device.is_cuda();
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(true);
  }
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (cuda_)
    at::autocast::set_enabled(false);
  else
    at::autocast::set_cpu_enabled(false);
  at::autocast::clear_cache();  // the weights' reduced-precision copies of this run
}

int available_cores() {
  int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
    cores = std::max(1, CPU_COUNT(&allowed));
  return cores;
}

int configure_runtime(int threads, int blas_threads) {
  const int n = threads > 0 ? threads : available_cores();
  torch::set_num_threads(n);
  set_blas_threads(blas_threads);
  // Training allocates and frees the same large activation buffers every step. With glibc's
  // defaults each is a fresh mmap whose pages fault in again: on small inputs that was ~40% of
  // a step in the kernel. Keeping buffers up to 32 MiB in the heap and not trimming it cut the
  // 64-px overfit test from 32 s to 19 s.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return n;
}

}  // namespace centermask
