// Modulated deformable convolution: the CPU kernel (sampling table → columns → GEMM, and its
// backward), the grid_sample formulation for other devices, and the element-by-element
// reference. See include/centermask/modeling/deform_conv.h for the layout.

#include "centermask/modeling/deform_conv.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace centermask {

namespace {

struct Dims {
  std::int64_t batch = 0, channels = 0, height = 0, width = 0;
  std::int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  std::int64_t out_height = 0, out_width = 0;
  std::int64_t taps() const { return kernel_h * kernel_w; }
  std::int64_t positions() const { return out_height * out_width; }
};

std::string shape_of(const torch::Tensor& t) {
  return fmt::format("({})", fmt::join(t.sizes(), ", "));
}

[[noreturn]] void fail(const std::string& message) {
  throw std::invalid_argument("modulated_deform_conv2d: " + message);
}

Dims check_arguments(const torch::Tensor& input, const torch::Tensor& offset,
                     const torch::Tensor& mask, const torch::Tensor& weight,
                     const torch::Tensor& bias, const DeformConvGeometry& g) {
  for (const auto& [tensor, name] : {std::pair{&input, "input"}, std::pair{&offset, "offset"},
                                     std::pair{&mask, "mask"}, std::pair{&weight, "weight"}})
    if (!tensor->defined()) fail(fmt::format("{} is undefined", name));
  if (input.dim() != 4 || input.size(1) < 1 || input.size(2) < 1 || input.size(3) < 1)
    fail("input has shape " + shape_of(input) + "; expected (N, C, H, W) with C, H, W >= 1");
  if (weight.dim() != 4)
    fail("weight has shape " + shape_of(weight) + "; expected (Cout, C / groups, kh, kw)");
  if (g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 || g.dilation_w < 1 || g.pad_h < 0 ||
      g.pad_w < 0 || g.groups < 1 || g.deformable_groups < 1)
    fail(fmt::format(
        "geometry stride ({}, {}), padding ({}, {}), dilation ({}, {}), groups {}, deformable "
        "groups {}: strides, dilations and groups must be >= 1, paddings >= 0",
        g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups,
        g.deformable_groups));
  Dims d;
  d.batch = input.size(0);
  d.channels = input.size(1);
  d.height = input.size(2);
  d.width = input.size(3);
  d.out_channels = weight.size(0);
  d.kernel_h = weight.size(2);
  d.kernel_w = weight.size(3);
  if (d.channels % g.groups != 0 || d.out_channels % g.groups != 0)
    fail(fmt::format("{} input and {} output channels do not split into {} groups", d.channels,
                     d.out_channels, g.groups));
  if (d.channels % g.deformable_groups != 0)
    fail(fmt::format("{} input channels do not split into {} deformable groups", d.channels,
                     g.deformable_groups));
  if (weight.size(1) != d.channels / g.groups)
    fail(
        fmt::format("weight has shape {}; expected ({}, {}, kh, kw) for {} input channels in {} "
                    "group(s)",
                    shape_of(weight), d.out_channels, d.channels / g.groups, d.channels, g.groups));
  const std::int64_t span_h = std::int64_t{g.dilation_h} * (d.kernel_h - 1) + 1;
  const std::int64_t span_w = std::int64_t{g.dilation_w} * (d.kernel_w - 1) + 1;
  if (d.height + 2 * g.pad_h < span_h || d.width + 2 * g.pad_w < span_w)
    fail(fmt::format("input of {}×{} with padding ({}, {}) is smaller than the kernel's span {}×{}",
                     d.height, d.width, g.pad_h, g.pad_w, span_h, span_w));
  d.out_height = (d.height + 2 * g.pad_h - span_h) / g.stride_h + 1;
  d.out_width = (d.width + 2 * g.pad_w - span_w) / g.stride_w + 1;
  const std::int64_t dg_taps = g.deformable_groups * d.taps();
  const std::vector<std::int64_t> offset_shape{d.batch, 2 * dg_taps, d.out_height, d.out_width};
  const std::vector<std::int64_t> mask_shape{d.batch, dg_taps, d.out_height, d.out_width};
  if (offset.sizes() != torch::IntArrayRef(offset_shape))
    fail(fmt::format("offset has shape {}; expected (N, 2·dg·kh·kw, Ho, Wo) = ({})",
                     shape_of(offset), fmt::join(offset_shape, ", ")));
  if (mask.sizes() != torch::IntArrayRef(mask_shape))
    fail(fmt::format("mask has shape {}; expected (N, dg·kh·kw, Ho, Wo) = ({})", shape_of(mask),
                     fmt::join(mask_shape, ", ")));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != d.out_channels))
    fail(fmt::format("bias has shape {}; expected ({})", shape_of(bias), d.out_channels));
  for (const torch::Tensor* t : {&offset, &mask, &weight, &bias})
    if (t->defined() && t->device() != input.device())
      fail(fmt::format("tensors on {} and {}: all must be on one device", input.device().str(),
                       t->device().str()));
  return d;
}

/// float, or double when any input is double: half precision (autocast's bf16 / fp16) is
/// widened, as sampling positions need more than 8 bits of mantissa.
torch::ScalarType compute_type(std::initializer_list<const torch::Tensor*> tensors) {
  for (const torch::Tensor* t : tensors)
    if (t->defined() && t->scalar_type() == torch::kDouble) return torch::kDouble;
  return torch::kFloat;
}

/// Autocast off for the op's own products (they run in the op's type), restored on exit.
class AutocastOff {
 public:
  AutocastOff() : cpu_(at::autocast::is_cpu_enabled()), gpu_(at::autocast::is_enabled()) {
    at::autocast::set_cpu_enabled(false);
    at::autocast::set_enabled(false);
  }
  ~AutocastOff() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
  }
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  bool cpu_, gpu_;
};

// ---- the CPU kernel ----

/// Where one tap samples at one output position: four neighbours (flat indices into an input
/// plane) with their bilinear weights and the weights' derivatives along rows and columns. A
/// neighbour outside the image has index 0 and weight and derivatives 0, so sums need no
/// branches.
template <typename T>
struct Sample {
  std::int32_t index[4];
  T weight[4];
  T d_row[4];
  T d_col[4];
};

template <typename T>
Sample<T> bilinear_sample(T y, T x, std::int64_t height, std::int64_t width) {
  Sample<T> s{};
  // DCNv2's rule: a position a full cell or more outside the image reads zero.
  if (!(y > -1 && x > -1 && y < static_cast<T>(height) && x < static_cast<T>(width))) return s;
  const T y_floor = std::floor(y), x_floor = std::floor(x);
  const auto y0 = static_cast<std::int64_t>(y_floor), x0 = static_cast<std::int64_t>(x_floor);
  const T ly = y - y_floor, lx = x - x_floor, hy = 1 - ly, hx = 1 - lx;
  const std::int64_t rows[4] = {y0, y0, y0 + 1, y0 + 1};
  const std::int64_t cols[4] = {x0, x0 + 1, x0, x0 + 1};
  const T weights[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
  const T d_row[4] = {-hx, -lx, hx, lx};
  const T d_col[4] = {-hy, hy, -ly, ly};
  for (int i = 0; i < 4; ++i) {
    if (rows[i] < 0 || rows[i] >= height || cols[i] < 0 || cols[i] >= width) continue;
    s.index[i] = static_cast<std::int32_t>(rows[i] * width + cols[i]);
    s.weight[i] = weights[i];
    s.d_row[i] = d_row[i];
    s.d_col[i] = d_col[i];
  }
  return s;
}

/// Buffers kept per thread between calls: a layer's sampling table and columns are tens of
/// MiB (64 channels at 128²: 38 MiB of columns), and allocating them afresh each call cost
/// more than filling them — every page of a new allocation faults on first touch (measured:
/// a fifth of the forward's time in the kernel's page-fault path). They grow to the largest
/// layer a thread runs and stay.
template <typename T>
struct Workspace {
  std::vector<Sample<T>> table;
  torch::Tensor columns, grad_columns;
};

template <typename T>
Workspace<T>& thread_workspace() {
  thread_local Workspace<T> workspace;
  return workspace;
}

/// A (rows, cols) tensor of `options` over the start of `buffer`, regrown when too small.
torch::Tensor reuse_buffer(torch::Tensor& buffer, std::int64_t rows, std::int64_t cols,
                           const torch::TensorOptions& options) {
  if (!buffer.defined() || buffer.numel() < rows * cols || buffer.dtype() != options.dtype())
    buffer = torch::empty({rows * cols}, options);
  return buffer.narrow(0, 0, rows * cols).view({rows, cols});
}

/// out (M, N) = a (M, K) · b (K, N), or += with `accumulate`, split by rows of `out` over
/// LibTorch's threads. The training recipes hold OpenBLAS to one thread (runtime.blas_threads:
/// 1, so that it does not start threads beside LibTorch's), and one product would then use one
/// core. (On this project's 2-core machine no change was measured either way: the products
/// are OpenBLAS's Haswell kernel; oneDNN's 1×1 convolution was faster on small maps only.)
void parallel_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out,
                     bool accumulate) {
  const std::int64_t rows = a.size(0);
  const std::int64_t threads = std::max(1, at::get_num_threads());
  const std::int64_t block = std::max<std::int64_t>(16, (rows + threads - 1) / threads);
  at::parallel_for(0, rows, block, [&](std::int64_t begin, std::int64_t end) {
    torch::Tensor part = out.narrow(0, begin, end - begin);
    if (accumulate)
      part.addmm_(a.narrow(0, begin, end - begin), b);
    else
      torch::mm_out(part, a.narrow(0, begin, end - begin), b);
  });
}

/// The samples of one image into `table`: (dg, kh·kw, Ho·Wo), from its offsets
/// (2·dg·kh·kw, Ho·Wo). Every entry is overwritten.
template <typename T>
void sampling_table(const T* offset, const Dims& d, const DeformConvGeometry& g,
                    std::vector<Sample<T>>& table) {
  const std::int64_t taps = d.taps(), positions = d.positions();
  const std::int64_t rows = g.deformable_groups * taps;
  table.resize(static_cast<std::size_t>(rows * positions));
  at::parallel_for(0, rows * positions, 2048, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t e = begin; e < end; ++e) {
      const std::int64_t row = e / positions, p = e % positions;
      const std::int64_t tap = row % taps;
      const std::int64_t i = tap / d.kernel_w, j = tap % d.kernel_w;
      const std::int64_t ho = p / d.out_width, wo = p % d.out_width;
      const T y = static_cast<T>(ho * g.stride_h - g.pad_h + i * g.dilation_h) +
                  offset[(2 * row) * positions + p];
      const T x = static_cast<T>(wo * g.stride_w - g.pad_w + j * g.dilation_w) +
                  offset[(2 * row + 1) * positions + p];
      table[static_cast<std::size_t>(e)] = bilinear_sample(y, x, d.height, d.width);
    }
  });
}

/// columns (C·kh·kw, Ho·Wo): row c·kh·kw + t holds channel c sampled by tap t, times the mask.
/// Work items run tap-major (t, then c) so that consecutive items read the same row of the
/// sampling table.
template <typename T>
void fill_columns(const T* input, const T* mask, const std::vector<Sample<T>>& table, const Dims& d,
                  const DeformConvGeometry& g, T* columns) {
  const std::int64_t taps = d.taps(), positions = d.positions(), plane = d.height * d.width;
  const std::int64_t channels_per_dg = d.channels / g.deformable_groups;
  at::parallel_for(0, d.channels * taps, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t t = item / d.channels, c = item % d.channels;
      const std::int64_t dg_row = (c / channels_per_dg) * taps + t;
      const Sample<T>* samples = table.data() + dg_row * positions;
      const T* modulation = mask + dg_row * positions;
      const T* source = input + c * plane;
      T* out = columns + (c * taps + t) * positions;
      for (std::int64_t p = 0; p < positions; ++p) {
        const Sample<T>& s = samples[p];
        out[p] =
            modulation[p] * (s.weight[0] * source[s.index[0]] + s.weight[1] * source[s.index[1]] +
                             s.weight[2] * source[s.index[2]] + s.weight[3] * source[s.index[3]]);
      }
    }
  });
}

/// grad_input (C, H·W) of one image += the columns' gradient scattered back to the four
/// neighbours of each sample. Each thread owns a range of channels (it alone writes their
/// planes: no atomics) and walks it tap by tap, so a table row serves all its channels while
/// in cache.
template <typename T>
void scatter_input_gradient(const T* grad_columns, const T* mask,
                            const std::vector<Sample<T>>& table, const Dims& d,
                            const DeformConvGeometry& g, T* grad_input) {
  const std::int64_t taps = d.taps(), positions = d.positions(), plane = d.height * d.width;
  const std::int64_t channels_per_dg = d.channels / g.deformable_groups;
  at::parallel_for(0, d.channels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = 0; t < taps; ++t)
      for (std::int64_t c = begin; c < end; ++c) {
        T* target = grad_input + c * plane;
        const std::int64_t dg_row = (c / channels_per_dg) * taps + t;
        const Sample<T>* samples = table.data() + dg_row * positions;
        const T* modulation = mask + dg_row * positions;
        const T* grad = grad_columns + (c * taps + t) * positions;
        for (std::int64_t p = 0; p < positions; ++p) {
          const T gm = grad[p] * modulation[p];
          const Sample<T>& s = samples[p];
          for (int i = 0; i < 4; ++i) target[s.index[i]] += s.weight[i] * gm;
        }
      }
  });
}

/// grad_offset (2·dg·kh·kw, Ho·Wo) and grad_mask (dg·kh·kw, Ho·Wo) of one image: for each
/// sample, the sum over its group's channels of the column gradient times the sampled value's
/// derivative (offsets: × mask) or the sampled value itself (mask). Parallel over samples.
template <typename T>
void offset_and_mask_gradients(const T* input, const T* grad_columns, const T* mask,
                               const std::vector<Sample<T>>& table, const Dims& d,
                               const DeformConvGeometry& g, T* grad_offset, T* grad_mask) {
  const std::int64_t taps = d.taps(), positions = d.positions(), plane = d.height * d.width;
  const std::int64_t channels_per_dg = d.channels / g.deformable_groups;
  const std::int64_t total = g.deformable_groups * taps * positions;
  at::parallel_for(0, total, 1024, [&](std::int64_t begin, std::int64_t end) {
    // Row by row within [begin, end): channels outer, positions inner, for contiguous reads.
    for (std::int64_t e = begin; e < end;) {
      const std::int64_t dg_row = e / positions, first = e % positions;
      const std::int64_t last = std::min(positions, first + (end - e));
      const std::int64_t group = dg_row / taps, t = dg_row % taps;
      const Sample<T>* samples = table.data() + dg_row * positions;
      const T* modulation = mask + dg_row * positions;
      T* g_row = grad_offset + (2 * dg_row) * positions;
      T* g_col = grad_offset + (2 * dg_row + 1) * positions;
      T* g_mask = grad_mask + dg_row * positions;
      // Positions in tiles, channels within a tile: the tile's samples stay in cache while
      // every channel of the group reads them.
      constexpr std::int64_t kTile = 256;
      for (std::int64_t tile = first; tile < last; tile += kTile) {
        const std::int64_t tile_end = std::min(last, tile + kTile);
        for (std::int64_t c = group * channels_per_dg; c < (group + 1) * channels_per_dg; ++c) {
          const T* source = input + c * plane;
          const T* grad = grad_columns + (c * taps + t) * positions;
          for (std::int64_t p = tile; p < tile_end; ++p) {
            const Sample<T>& s = samples[p];
            T value = 0, d_row = 0, d_col = 0;
            for (int i = 0; i < 4; ++i) {
              const T v = source[s.index[i]];
              value += s.weight[i] * v;
              d_row += s.d_row[i] * v;
              d_col += s.d_col[i] * v;
            }
            g_mask[p] += grad[p] * value;
            g_row[p] += grad[p] * modulation[p] * d_row;
            g_col[p] += grad[p] * modulation[p] * d_col;
          }
        }
      }
      e += last - first;
    }
  });
}

torch::Tensor cpu_forward(const torch::Tensor& input, const torch::Tensor& offset,
                          const torch::Tensor& mask, const torch::Tensor& weight,
                          const torch::Tensor& bias, const Dims& d, const DeformConvGeometry& g) {
  AutocastOff autocast_off;
  const std::int64_t groups = g.groups, per_group = d.channels / groups * d.taps();
  torch::Tensor output =
      torch::empty({d.batch, d.out_channels, d.out_height, d.out_width}, input.options());
  const torch::Tensor grouped_weight = weight.reshape({groups, d.out_channels / groups, per_group});
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "modulated_deform_conv2d", [&] {
    Workspace<scalar_t>& workspace = thread_workspace<scalar_t>();
    const torch::Tensor columns =
        reuse_buffer(workspace.columns, d.channels * d.taps(), d.positions(), input.options());
    for (std::int64_t n = 0; n < d.batch; ++n) {
      sampling_table<scalar_t>(offset[n].data_ptr<scalar_t>(), d, g, workspace.table);
      fill_columns<scalar_t>(input[n].data_ptr<scalar_t>(), mask[n].data_ptr<scalar_t>(),
                             workspace.table, d, g, columns.data_ptr<scalar_t>());
      const torch::Tensor out = output[n].view({groups, d.out_channels / groups, d.positions()});
      const torch::Tensor grouped_columns = columns.view({groups, per_group, d.positions()});
      for (std::int64_t k = 0; k < groups; ++k)
        parallel_matmul(grouped_weight[k], grouped_columns[k], out[k], /*accumulate=*/false);
    }
  });
  if (bias.defined()) output.add_(bias.view({1, d.out_channels, 1, 1}));
  return output;
}

struct CpuGradients {
  torch::Tensor input, offset, mask, weight, bias;
};

CpuGradients cpu_backward(const torch::Tensor& grad_output, const torch::Tensor& input,
                          const torch::Tensor& offset, const torch::Tensor& mask,
                          const torch::Tensor& weight, const Dims& d, const DeformConvGeometry& g) {
  AutocastOff autocast_off;
  const std::int64_t groups = g.groups, per_group = d.channels / groups * d.taps();
  CpuGradients grads;
  grads.input = torch::zeros_like(input);
  grads.offset = torch::zeros_like(offset);
  grads.mask = torch::zeros_like(mask);
  grads.weight = torch::zeros({groups, d.out_channels / groups, per_group}, weight.options());
  grads.bias = grad_output.sum({0, 2, 3});
  const torch::Tensor grouped_weight = weight.reshape({groups, d.out_channels / groups, per_group});
  const torch::Tensor weight_t = grouped_weight.transpose(1, 2);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "modulated_deform_conv2d_backward", [&] {
    Workspace<scalar_t>& workspace = thread_workspace<scalar_t>();
    const torch::Tensor columns =
        reuse_buffer(workspace.columns, d.channels * d.taps(), d.positions(), input.options());
    const torch::Tensor grad_columns =
        reuse_buffer(workspace.grad_columns, d.channels * d.taps(), d.positions(), input.options());
    const std::vector<Sample<scalar_t>>& table = workspace.table;
    for (std::int64_t n = 0; n < d.batch; ++n) {
      sampling_table<scalar_t>(offset[n].data_ptr<scalar_t>(), d, g, workspace.table);
      const scalar_t* image = input[n].data_ptr<scalar_t>();
      const scalar_t* modulation = mask[n].data_ptr<scalar_t>();
      fill_columns<scalar_t>(image, modulation, table, d, g, columns.data_ptr<scalar_t>());
      const torch::Tensor grad_out =
          grad_output[n].reshape({groups, d.out_channels / groups, d.positions()});
      const torch::Tensor grouped_columns = columns.view({groups, per_group, d.positions()});
      const torch::Tensor grouped_grad_columns =
          grad_columns.view({groups, per_group, d.positions()});
      for (std::int64_t k = 0; k < groups; ++k) {
        parallel_matmul(grad_out[k], grouped_columns[k].t(), grads.weight[k], /*accumulate=*/true);
        parallel_matmul(weight_t[k], grad_out[k], grouped_grad_columns[k], /*accumulate=*/false);
      }
      scatter_input_gradient<scalar_t>(grad_columns.data_ptr<scalar_t>(), modulation, table, d, g,
                                       grads.input[n].data_ptr<scalar_t>());
      offset_and_mask_gradients<scalar_t>(image, grad_columns.data_ptr<scalar_t>(), modulation,
                                          table, d, g, grads.offset[n].data_ptr<scalar_t>(),
                                          grads.mask[n].data_ptr<scalar_t>());
    }
  });
  grads.weight = grads.weight.view(weight.sizes());
  return grads;
}

class ModulatedDeformConvFunction : public torch::autograd::Function<ModulatedDeformConvFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& offset, const torch::Tensor& mask,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const DeformConvGeometry& geometry) {
    const Dims d = check_arguments(input, offset, mask, weight, bias, geometry);
    ctx->save_for_backward({input, offset, mask, weight});
    ctx->saved_data["geometry"] = std::vector<std::int64_t>{
        geometry.stride_h,   geometry.stride_w,   geometry.pad_h,  geometry.pad_w,
        geometry.dilation_h, geometry.dilation_w, geometry.groups, geometry.deformable_groups};
    return cpu_forward(input, offset, mask, weight, bias, d, geometry);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto v = ctx->saved_data["geometry"].toIntVector();
    DeformConvGeometry geometry;
    geometry.stride_h = static_cast<int>(v[0]);
    geometry.stride_w = static_cast<int>(v[1]);
    geometry.pad_h = static_cast<int>(v[2]);
    geometry.pad_w = static_cast<int>(v[3]);
    geometry.dilation_h = static_cast<int>(v[4]);
    geometry.dilation_w = static_cast<int>(v[5]);
    geometry.groups = static_cast<int>(v[6]);
    geometry.deformable_groups = static_cast<int>(v[7]);
    const Dims d = check_arguments(saved[0], saved[1], saved[2], saved[3], {}, geometry);
    const torch::Tensor grad_output = grad_outputs[0].contiguous().to(saved[0].scalar_type());
    CpuGradients grads =
        cpu_backward(grad_output, saved[0], saved[1], saved[2], saved[3], d, geometry);
    return {grads.input, grads.offset, grads.mask, grads.weight, grads.bias, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor modulated_deform_conv2d(const torch::Tensor& input, const torch::Tensor& offset,
                                      const torch::Tensor& mask, const torch::Tensor& weight,
                                      const torch::Tensor& bias,
                                      const DeformConvGeometry& geometry) {
  check_arguments(input, offset, mask, weight, bias, geometry);
  // Traced for an export, the op is the sampled formulation: ATen operations any runtime has
  // (ONNX's GridSample), where our kernel would be a call into this library.
  if (!input.device().is_cpu() || torch::jit::tracer::isTracing())
    return modulated_deform_conv2d_sampled(input, offset, mask, weight, bias, geometry);
  const torch::ScalarType type = compute_type({&input, &offset, &mask, &weight, &bias});
  const auto prepare = [type](const torch::Tensor& t) { return t.to(type).contiguous(); };
  // The autograd function always gets a bias (zeros without one) so that its inputs are
  // defined tensors; a zero bias that needs no gradient costs one addition.
  const torch::Tensor bias_or_zero =
      bias.defined() ? prepare(bias) : torch::zeros({weight.size(0)}, input.options().dtype(type));
  return ModulatedDeformConvFunction::apply(prepare(input), prepare(offset), prepare(mask),
                                            prepare(weight), bias_or_zero, geometry);
}

torch::Tensor modulated_deform_conv2d_sampled(
    const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& mask,
    const torch::Tensor& weight, const torch::Tensor& bias, const DeformConvGeometry& g) {
  const Dims d = check_arguments(input, offset, mask, weight, bias, g);
  AutocastOff autocast_off;
  const torch::ScalarType type = compute_type({&input, &offset, &mask, &weight, &bias});
  const std::int64_t dg = g.deformable_groups, taps = d.taps();
  const auto options = input.options().dtype(type);
  if (d.batch == 0) return torch::zeros({0, d.out_channels, d.out_height, d.out_width}, options);
  // The regular position of every tap at every output: (kh, kw, Ho, Wo) → (taps, Ho, Wo).
  const torch::Tensor tap_rows =
      (torch::arange(d.kernel_h, options) * g.dilation_h).view({-1, 1, 1, 1}) +
      (torch::arange(d.out_height, options) * g.stride_h - g.pad_h).view({1, 1, -1, 1});
  const torch::Tensor tap_cols =
      (torch::arange(d.kernel_w, options) * g.dilation_w).view({1, -1, 1, 1}) +
      (torch::arange(d.out_width, options) * g.stride_w - g.pad_w).view({1, 1, 1, -1});
  const std::vector<std::int64_t> grid_shape{d.kernel_h, d.kernel_w, d.out_height, d.out_width};
  const torch::Tensor base_rows =
      tap_rows.expand(grid_shape).reshape({taps, d.out_height, d.out_width});
  const torch::Tensor base_cols =
      tap_cols.expand(grid_shape).reshape({taps, d.out_height, d.out_width});
  const torch::Tensor shifts =
      offset.to(type).reshape({d.batch * dg, taps, 2, d.out_height, d.out_width});
  const torch::Tensor rows = base_rows + shifts.select(2, 0);
  const torch::Tensor cols = base_cols + shifts.select(2, 1);
  // grid_sample's normalised coordinates with align_corners = false: pixel x ↔ (2x + 1) / W − 1.
  // Its zero padding reads zero for each of the four neighbours outside, as DCNv2 does.
  const torch::Tensor grid = torch::stack({(2 * cols + 1) / static_cast<double>(d.width) - 1,
                                           (2 * rows + 1) / static_cast<double>(d.height) - 1},
                                          -1)
                                 .reshape({d.batch * dg, taps * d.out_height, d.out_width, 2});
  const torch::Tensor planes =
      input.to(type).reshape({d.batch * dg, d.channels / dg, d.height, d.width});
  const torch::Tensor sampled = torch::grid_sampler(planes, grid, /*bilinear*/ 0,
                                                    /*zeros*/ 0, /*align_corners=*/false);
  const torch::Tensor modulated =
      sampled * mask.to(type).reshape({d.batch * dg, 1, taps * d.out_height, d.out_width});
  // (N·dg, C/dg, taps, Ho·Wo) is (N, C·taps, Ho·Wo) with row c·taps + t, split by group.
  const std::int64_t groups = g.groups, per_group = d.channels / groups * taps;
  const torch::Tensor columns = modulated.reshape({d.batch, groups, per_group, d.positions()});
  torch::Tensor output =
      torch::matmul(weight.to(type).reshape({groups, d.out_channels / groups, per_group}), columns)
          .reshape({d.batch, d.out_channels, d.out_height, d.out_width});
  if (bias.defined()) output = output + bias.to(type).view({1, d.out_channels, 1, 1});
  return output;
}

torch::Tensor modulated_deform_conv2d_reference(
    const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& mask,
    const torch::Tensor& weight, const torch::Tensor& bias, const DeformConvGeometry& g) {
  const Dims d = check_arguments(input, offset, mask, weight, bias, g);
  const auto as_double = [](const torch::Tensor& t) {
    return t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  };
  const torch::Tensor x = as_double(input), off = as_double(offset), m = as_double(mask),
                      w = as_double(weight);
  const torch::Tensor b =
      bias.defined() ? as_double(bias) : torch::zeros({d.out_channels}, torch::kDouble);
  torch::Tensor output =
      torch::zeros({d.batch, d.out_channels, d.out_height, d.out_width}, torch::kDouble);
  const auto X = x.accessor<double, 4>();
  const auto O = off.accessor<double, 4>();
  const auto M = m.accessor<double, 4>();
  const auto Wt = w.accessor<double, 4>();
  const auto B = b.accessor<double, 1>();
  auto Y = output.accessor<double, 4>();
  const std::int64_t in_per_group = d.channels / g.groups,
                     out_per_group = d.out_channels / g.groups;
  const std::int64_t channels_per_dg = d.channels / g.deformable_groups;
  // The value of channel c of image n at (y, x): bilinear between the four neighbours, zero
  // for a neighbour outside the image, zero when a full cell or more outside.
  const auto read = [&](std::int64_t n, std::int64_t c, double y, double xx) {
    if (y <= -1 || xx <= -1 || y >= d.height || xx >= d.width) return 0.0;
    const double y0 = std::floor(y), x0 = std::floor(xx);
    double value = 0;
    for (int dy = 0; dy <= 1; ++dy)
      for (int dx = 0; dx <= 1; ++dx) {
        const auto yy = static_cast<std::int64_t>(y0) + dy, xi = static_cast<std::int64_t>(x0) + dx;
        if (yy < 0 || yy >= d.height || xi < 0 || xi >= d.width) continue;
        const double wy = dy ? y - y0 : 1 - (y - y0), wx = dx ? xx - x0 : 1 - (xx - x0);
        value += wy * wx * X[n][c][yy][xi];
      }
    return value;
  };
  for (std::int64_t n = 0; n < d.batch; ++n)
    for (std::int64_t co = 0; co < d.out_channels; ++co)
      for (std::int64_t ho = 0; ho < d.out_height; ++ho)
        for (std::int64_t wo = 0; wo < d.out_width; ++wo) {
          double sum = B[co];
          const std::int64_t group = co / out_per_group;
          for (std::int64_t cl = 0; cl < in_per_group; ++cl) {
            const std::int64_t c = group * in_per_group + cl;
            const std::int64_t dgi = c / channels_per_dg;
            for (std::int64_t i = 0; i < d.kernel_h; ++i)
              for (std::int64_t j = 0; j < d.kernel_w; ++j) {
                const std::int64_t tap = dgi * d.taps() + i * d.kernel_w + j;
                const double y = static_cast<double>(ho * g.stride_h - g.pad_h + i * g.dilation_h) +
                                 O[n][2 * tap][ho][wo];
                const double xx =
                    static_cast<double>(wo * g.stride_w - g.pad_w + j * g.dilation_w) +
                    O[n][2 * tap + 1][ho][wo];
                sum += Wt[co][cl][i][j] * M[n][tap][ho][wo] * read(n, c, y, xx);
              }
          }
          Y[n][co][ho][wo] = sum;
        }
  return output;
}

ModulatedDeformConv2dImpl::ModulatedDeformConv2dImpl(int in_channels, int out_channels, int kernel,
                                                     int stride, int padding, int dilation,
                                                     int deformable_groups) {
  if (padding < 0) padding = dilation * (kernel - 1) / 2;
  geometry_ = {stride, stride, padding, padding, dilation, dilation, 1, deformable_groups};
  weight = register_parameter("weight", torch::empty({out_channels, in_channels, kernel, kernel}));
  bias = register_parameter("bias", torch::zeros({out_channels}));
  conv_offset_mask = register_module(
      "conv_offset_mask",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(in_channels, 3 * deformable_groups * kernel * kernel, kernel)
              .stride(stride)
              .padding(padding)
              .dilation(dilation)
              .bias(true)));
  reset_parameters();
}

void ModulatedDeformConv2dImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  // DCNv2's reset_parameters: weight uniform in ±1/√(in·k·k), bias 0; the offset/mask
  // convolution 0, so that training starts from the plain convolution.
  const double bound =
      1.0 / std::sqrt(static_cast<double>(weight.size(1) * weight.size(2) * weight.size(3)));
  weight.uniform_(-bound, bound);
  bias.zero_();
  conv_offset_mask->weight.zero_();
  conv_offset_mask->bias.zero_();
}

torch::Tensor ModulatedDeformConv2dImpl::forward(const torch::Tensor& x) {
  const auto parts = conv_offset_mask->forward(x).chunk(3, 1);
  const torch::Tensor offset = torch::cat({parts[0], parts[1]}, 1);
  const torch::Tensor mask = torch::sigmoid(parts[2]);
  return modulated_deform_conv2d(x, offset, mask, weight, bias, geometry_);
}

}  // namespace centermask
