#include "modeling/layers/losses.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace centermask {

namespace F = torch::nn::functional;

namespace {

// The focal loss's value and its gradient with respect to the logits in one pass over the
// map (sigmoid, clamp, both branches, and d/dx all per element), where the op-by-op version
// makes a dozen full-size temporaries forward and as many backward. Partial sums are taken
// over fixed chunks and added in order, so the value does not depend on the thread count.
template <typename T>
void focal_value_and_gradient(const T* logit, const T* target, std::int64_t count, T* gradient,
                              double* loss_sum, std::int64_t* positives) {
  constexpr std::int64_t kChunk = 1 << 14;
  const std::int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<double> chunk_loss(static_cast<std::size_t>(chunks), 0.0);
  std::vector<std::int64_t> chunk_positives(static_cast<std::size_t>(chunks), 0);
  at::parallel_for(0, chunks, 1, [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t c = first; c < last; ++c) {
      double sum = 0;
      std::int64_t pos = 0;
      const std::int64_t end = std::min(count, (c + 1) * kChunk);
      for (std::int64_t i = c * kChunk; i < end; ++i) {
        // The clamp is decided in the input's precision, as the reference decides it.
        const T p_raw = T(1) / (T(1) + std::exp(-logit[i]));
        const bool clamped = p_raw < T(1e-4) || p_raw > T(1 - 1e-4);
        const double p = std::clamp(static_cast<double>(p_raw), 1e-4, 1 - 1e-4);
        const double y = static_cast<double>(target[i]);
        double value, slope;  // loss and its derivative with respect to the logit
        if (y == 1.0) {
          ++pos;
          const double q = 1 - p, log_p = std::log(p);
          value = -log_p * q * q;
          slope = -q * q * q + 2 * p * q * q * log_p;
        } else {
          const double q = 1 - p, log_q = std::log(q), w = (1 - y) * (1 - y) * (1 - y) * (1 - y);
          value = -log_q * p * p * w;
          slope = (p * p * p - 2 * p * p * q * log_q) * w;
        }
        sum += value;
        gradient[i] = clamped ? T(0) : static_cast<T>(slope);
      }
      chunk_loss[static_cast<std::size_t>(c)] = sum;
      chunk_positives[static_cast<std::size_t>(c)] = pos;
    }
  });
  *loss_sum = 0;
  *positives = 0;
  for (std::size_t c = 0; c < chunk_loss.size(); ++c) {
    *loss_sum += chunk_loss[c];
    *positives += chunk_positives[c];
  }
}

class FusedFocalLoss : public torch::autograd::Function<FusedFocalLoss> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& target) {
    const torch::Tensor x = logits.contiguous();
    const torch::Tensor y = target.to(x.scalar_type()).contiguous();
    torch::Tensor gradient = torch::empty_like(x);
    double loss_sum = 0;
    std::int64_t positives = 0;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "focal_heatmap_loss", [&] {
      focal_value_and_gradient<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), x.numel(),
                                         gradient.data_ptr<scalar_t>(), &loss_sum, &positives);
    });
    const double divisor = static_cast<double>(std::max<std::int64_t>(positives, 1));
    gradient.div_(divisor);
    ctx->save_for_backward({gradient});
    return torch::full({}, loss_sum / divisor, x.options());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const torch::Tensor gradient = ctx->get_saved_variables()[0];
    return {gradient * grad_outputs[0], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor focal_heatmap_loss(const torch::Tensor& logits, const torch::Tensor& target) {
  if (logits.device().is_cpu() && logits.is_floating_point() && logits.numel() > 0 &&
      logits.sizes() == target.sizes())
    return FusedFocalLoss::apply(logits, target);
  return focal_heatmap_loss_reference(logits, target);
}

torch::Tensor focal_heatmap_loss_reference(const torch::Tensor& logits,
                                           const torch::Tensor& target) {
  const torch::Tensor p = torch::sigmoid(logits).clamp(1e-4, 1 - 1e-4);
  const torch::Tensor positive = target.eq(1).to(p.scalar_type());
  const torch::Tensor negative = 1 - positive;
  const torch::Tensor positive_loss = (torch::log(p) * (1 - p).pow(2) * positive).sum();
  const torch::Tensor negative_loss =
      (torch::log(1 - p) * p.pow(2) * (1 - target).pow(4) * negative).sum();
  return -(positive_loss + negative_loss) / positive.sum().clamp_min(1);
}

torch::Tensor center_l1_loss(const torch::Tensor& prediction, const torch::Tensor& cell,
                             const torch::Tensor& target, const torch::Tensor& valid,
                             std::int64_t num_objects) {
  const std::int64_t n = prediction.size(0);
  const torch::Tensor flat = prediction.reshape({n, 2, -1});
  const torch::Tensor index = cell.unsqueeze(1).expand({n, 2, cell.size(1)});
  const torch::Tensor at_cells = flat.gather(2, index).permute({0, 2, 1});  // (N, K, 2)
  const torch::Tensor l1 = (at_cells - target).abs() * valid.unsqueeze(2);
  return l1.sum() / static_cast<double>(std::max<std::int64_t>(num_objects, 1));
}

torch::Tensor dense_l1_loss(const torch::Tensor& prediction, const torch::Tensor& target,
                            const torch::Tensor& weight, std::int64_t num_objects) {
  const torch::Tensor l1 = (prediction - target).abs() * weight.unsqueeze(1);
  return l1.sum() / static_cast<double>(std::max<std::int64_t>(num_objects, 1));
}

namespace {

/// The mask losses' mean of (M) per-object values, weighted by (M) `object_weight` if given.
torch::Tensor mean_over_objects(const torch::Tensor& per_object,
                                const torch::Tensor& object_weight) {
  if (!object_weight.defined()) return per_object.mean();
  return (per_object * object_weight).sum() / object_weight.sum().clamp_min(1e-12);
}

/// Per-cell 1 − GIoU of boxes given as center offset (x, y) and size (w, h) relative to the
/// same cell: any tensors of one shape, elementwise.
torch::Tensor one_minus_giou(const torch::Tensor& ox, const torch::Tensor& oy,
                             const torch::Tensor& w, const torch::Tensor& h,
                             const torch::Tensor& tx, const torch::Tensor& ty,
                             const torch::Tensor& tw, const torch::Tensor& th) {
  const torch::Tensor pw = w.clamp_min(0), ph = h.clamp_min(0);
  const torch::Tensor px0 = ox - 0.5 * pw, px1 = ox + 0.5 * pw;
  const torch::Tensor py0 = oy - 0.5 * ph, py1 = oy + 0.5 * ph;
  const torch::Tensor tx0 = tx - 0.5 * tw, tx1 = tx + 0.5 * tw;
  const torch::Tensor ty0 = ty - 0.5 * th, ty1 = ty + 0.5 * th;
  const torch::Tensor inter = (torch::min(px1, tx1) - torch::max(px0, tx0)).clamp_min(0) *
                              (torch::min(py1, ty1) - torch::max(py0, ty0)).clamp_min(0);
  const torch::Tensor uni = pw * ph + tw * th - inter;
  const torch::Tensor hull =
      (torch::max(px1, tx1) - torch::min(px0, tx0)) * (torch::max(py1, ty1) - torch::min(py0, ty0));
  constexpr double kEps = 1e-6;
  return 1 - inter / (uni + kEps) + (hull - uni) / (hull + kEps);
}

}  // namespace

torch::Tensor dense_giou_loss(const torch::Tensor& offset, const torch::Tensor& size,
                              const torch::Tensor& target_offset, const torch::Tensor& target_size,
                              const torch::Tensor& weight, std::int64_t num_objects) {
  // Only the cells with weight: elsewhere the targets are undefined (zeros) and would only
  // cost time.
  const torch::Tensor cells = weight.reshape({-1}).gt(0).nonzero().squeeze(1);
  const double divisor = static_cast<double>(std::max<std::int64_t>(num_objects, 1));
  if (cells.numel() == 0) return (offset.sum() + size.sum()) * 0.0;
  // (N, 2, H, W) → the chosen cells' (x, y) pairs as two (cells) vectors each.
  auto pick = [&](const torch::Tensor& map, int channel) {
    return map.select(1, channel).reshape({-1}).index_select(0, cells);
  };
  const torch::Tensor loss = one_minus_giou(
      pick(offset, 0), pick(offset, 1), pick(size, 0), pick(size, 1), pick(target_offset, 0),
      pick(target_offset, 1), pick(target_size, 0), pick(target_size, 1));
  return (loss * weight.reshape({-1}).index_select(0, cells)).sum() / divisor;
}

double dense_giou_loss_reference(const torch::Tensor& offset, const torch::Tensor& size,
                                 const torch::Tensor& target_offset,
                                 const torch::Tensor& target_size, const torch::Tensor& weight,
                                 std::int64_t num_objects) {
  const torch::Tensor o64 = offset.to(torch::kFloat64).contiguous();
  const torch::Tensor s64 = size.to(torch::kFloat64).contiguous();
  const torch::Tensor to64 = target_offset.to(torch::kFloat64).contiguous();
  const torch::Tensor ts64 = target_size.to(torch::kFloat64).contiguous();
  const torch::Tensor w64 = weight.to(torch::kFloat64).contiguous();
  const auto o = o64.accessor<double, 4>(), s = s64.accessor<double, 4>();
  const auto to = to64.accessor<double, 4>(), ts = ts64.accessor<double, 4>();
  const auto wt = w64.accessor<double, 3>();
  double total = 0;
  for (std::int64_t n = 0; n < weight.size(0); ++n)
    for (std::int64_t y = 0; y < weight.size(1); ++y)
      for (std::int64_t x = 0; x < weight.size(2); ++x) {
        if (wt[n][y][x] <= 0) continue;
        const double pw = std::max(0.0, s[n][0][y][x]);
        const double ph = std::max(0.0, s[n][1][y][x]);
        const double p[4] = {o[n][0][y][x] - pw / 2, o[n][1][y][x] - ph / 2, o[n][0][y][x] + pw / 2,
                             o[n][1][y][x] + ph / 2};
        const double tw = ts[n][0][y][x];
        const double th = ts[n][1][y][x];
        const double t[4] = {to[n][0][y][x] - tw / 2, to[n][1][y][x] - th / 2,
                             to[n][0][y][x] + tw / 2, to[n][1][y][x] + th / 2};
        const double iw = std::max(0.0, std::min(p[2], t[2]) - std::max(p[0], t[0]));
        const double ih = std::max(0.0, std::min(p[3], t[3]) - std::max(p[1], t[1]));
        const double inter = iw * ih, uni = pw * ph + tw * th - inter;
        const double hull = (std::max(p[2], t[2]) - std::min(p[0], t[0])) *
                            (std::max(p[3], t[3]) - std::min(p[1], t[1]));
        total += wt[n][y][x] * (1 - inter / (uni + 1e-6) + (hull - uni) / (hull + 1e-6));
      }
  return total / static_cast<double>(std::max<std::int64_t>(num_objects, 1));
}

torch::Tensor mean_object_dice(const torch::Tensor& probability, const torch::Tensor& target,
                               const torch::Tensor& inside, const torch::Tensor& object_weight) {
  if (probability.size(0) == 0) return probability.new_zeros({});
  const torch::Tensor weight = inside.to(probability.scalar_type());
  const torch::Tensor p = probability * weight, t = target * weight;
  const torch::Tensor overlap = (p * t).sum({1, 2});
  const torch::Tensor squares = (p * p).sum({1, 2}) + (t * t).sum({1, 2});
  // An object with nothing predicted and nothing to find is a perfect match, not 0/0.
  const torch::Tensor per_object = torch::where(
      squares.gt(0), 1 - 2 * overlap / squares.clamp_min(1e-6), torch::zeros_like(squares));
  return mean_over_objects(per_object, object_weight);
}

torch::Tensor mean_object_bce(const torch::Tensor& probability, const torch::Tensor& target,
                              const torch::Tensor& inside, const torch::Tensor& object_weight) {
  if (probability.size(0) == 0) return probability.new_zeros({});
  // BCE on probabilities (a product of sigmoids has no logit form); torch clamps log at −100.
  const torch::Tensor weight = inside.to(probability.scalar_type());
  const torch::Tensor bce = F::binary_cross_entropy(
      probability, target, F::BinaryCrossEntropyFuncOptions().reduction(torch::kNone));
  const torch::Tensor per_object = (bce * weight).sum({1, 2}) / weight.sum({1, 2}).clamp_min(1);
  return mean_over_objects(per_object, object_weight);
}

torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                 double alpha, double gamma) {
  if (logits.dim() != 2 || labels.dim() != 1 || labels.size(0) != logits.size(0))
    throw std::invalid_argument("sigmoid_focal_loss: logits must be (M, C) and labels (M), got " +
                                c10::str(logits.sizes()) + " and " + c10::str(labels.sizes()));
  const std::int64_t classes = logits.size(1);
  const torch::Tensor class_index = torch::arange(classes, labels.options()).view({1, classes});
  const torch::Tensor is_target = labels.view({-1, 1}).eq(class_index).to(logits.scalar_type());
  const torch::Tensor p = torch::sigmoid(logits);
  // log p = −softplus(−x), log(1 − p) = −softplus(x): stable for large |x|.
  const torch::Tensor positive = alpha * (1 - p).pow(gamma) * torch::softplus(-logits);
  const torch::Tensor negative = (1 - alpha) * p.pow(gamma) * torch::softplus(logits);
  return (is_target * positive + (1 - is_target) * negative).sum();
}

torch::Tensor ltrb_iou_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                            const torch::Tensor& weight, IouLossKind kind) {
  if (predicted.dim() != 2 || predicted.size(1) != 4 || target.sizes() != predicted.sizes() ||
      weight.dim() != 1 || weight.size(0) != predicted.size(0))
    throw std::invalid_argument(
        "ltrb_iou_loss: predicted and target must be (M, 4) and weight "
        "(M), got " +
        c10::str(predicted.sizes()) + ", " + c10::str(target.sizes()) + " and " +
        c10::str(weight.sizes()));
  const torch::Tensor pred = predicted.clamp_min(0);
  using torch::indexing::Slice;
  const auto side = [](const torch::Tensor& t, int i) { return t.index({Slice(), i}); };
  const torch::Tensor pred_area = (side(pred, 0) + side(pred, 2)) * (side(pred, 1) + side(pred, 3));
  const torch::Tensor target_area =
      (side(target, 0) + side(target, 2)) * (side(target, 1) + side(target, 3));
  // Both boxes contain the location: the overlap's reach on each side is the smaller one.
  const torch::Tensor inter =
      (torch::min(side(pred, 0), side(target, 0)) + torch::min(side(pred, 2), side(target, 2))) *
      (torch::min(side(pred, 1), side(target, 1)) + torch::min(side(pred, 3), side(target, 3)));
  const torch::Tensor uni = pred_area + target_area - inter;
  // +1 in both as FCOS's IOULoss: a finite loss for empty predictions.
  const torch::Tensor iou = (inter + 1) / (uni + 1);
  torch::Tensor per_box;
  if (kind == IouLossKind::kLogIou) {
    per_box = -torch::log(iou);
  } else {
    const torch::Tensor enclosing =
        (torch::max(side(pred, 0), side(target, 0)) + torch::max(side(pred, 2), side(target, 2))) *
            (torch::max(side(pred, 1), side(target, 1)) +
             torch::max(side(pred, 3), side(target, 3))) +
        1e-7;
    per_box = 1 - (iou - (enclosing - uni) / enclosing);
  }
  const torch::Tensor total_weight = weight.sum();
  return (per_box * weight).sum() /
         torch::where(total_weight > 0, total_weight, torch::ones_like(total_weight));
}

torch::Tensor polar_iou_loss(const torch::Tensor& predicted, const torch::Tensor& target,
                             const torch::Tensor& weight) {
  if (predicted.dim() != 2 || target.sizes() != predicted.sizes() || weight.dim() != 1 ||
      weight.size(0) != predicted.size(0))
    throw std::invalid_argument(
        "polar_iou_loss: predicted and target must be (M, n) and weight (M), got " +
        c10::str(predicted.sizes()) + ", " + c10::str(target.sizes()) + " and " +
        c10::str(weight.sizes()));
  const torch::Tensor larger = torch::max(predicted, target).sum(1);
  const torch::Tensor smaller = torch::min(predicted, target).sum(1);
  const torch::Tensor per_location = torch::log(larger / smaller);
  const torch::Tensor total_weight = weight.sum();
  return (per_location * weight).sum() /
         torch::where(total_weight > 0, total_weight, torch::ones_like(total_weight));
}

}  // namespace centermask
