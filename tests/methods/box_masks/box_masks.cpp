#include "box_masks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "centermask/modeling/backbone.h"

namespace centermask::box_masks {
namespace {

constexpr int kStride = 4;  // the backbone's output stride

// ---- Targets: per image, a binary center heatmap (C, H, W) and each object's center cell,
// class and box size in cells.
struct Targets : SampleTargets {
  int classes = 0, height = 0, width = 0;
  std::vector<float> heatmap;
  std::vector<std::int64_t> center_cell;  // y · W + x
  std::vector<float> size;                // 2 per object: width, height in cells
};

struct BatchOfTargets : BatchTargets {
  int classes = 0, height = 0, width = 0;
  std::vector<float> heatmap;              // (N, C, H, W)
  std::vector<std::int64_t> center_index;  // into an (N, H·W) flattening
  std::vector<float> size;                 // (objects, 2)
};

class Encoder : public TargetEncoder {
 public:
  explicit Encoder(int classes) : classes_(classes) {}
  int num_classes() const override { return classes_; }
  std::unique_ptr<SampleTargets> encode(const std::vector<Instance>& instances, int input_height,
                                        int input_width) const override {
    auto t = std::make_unique<Targets>();
    t->classes = classes_;
    t->height = input_height / kStride;
    t->width = input_width / kStride;
    t->heatmap.assign(static_cast<std::size_t>(classes_) * t->height * t->width, 0.0f);
    for (const Instance& object : instances) {
      const float w = object.box.width() / kStride, h = object.box.height() / kStride;
      if (w <= 0 || h <= 0) continue;
      const int x = std::clamp(static_cast<int>((object.box.x0 + object.box.x1) / 2 / kStride), 0,
                               t->width - 1);
      const int y = std::clamp(static_cast<int>((object.box.y0 + object.box.y1) / 2 / kStride), 0,
                               t->height - 1);
      const std::int64_t cell = static_cast<std::int64_t>(y) * t->width + x;
      t->heatmap[static_cast<std::size_t>(object.class_index * t->height * t->width + cell)] = 1;
      t->center_cell.push_back(cell);
      t->size.push_back(w);
      t->size.push_back(h);
    }
    return t;
  }
  std::shared_ptr<const BatchTargets> collate(
      const std::vector<std::unique_ptr<SampleTargets>>& samples) const override {
    auto batch = std::make_shared<BatchOfTargets>();
    for (std::size_t b = 0; b < samples.size(); ++b) {
      const auto& t = dynamic_cast<const Targets&>(*samples[b]);
      batch->classes = t.classes, batch->height = t.height, batch->width = t.width;
      batch->heatmap.insert(batch->heatmap.end(), t.heatmap.begin(), t.heatmap.end());
      for (std::int64_t cell : t.center_cell)
        batch->center_index.push_back(static_cast<std::int64_t>(b) * t.height * t.width + cell);
      batch->size.insert(batch->size.end(), t.size.begin(), t.size.end());
    }
    return batch;
  }

 private:
  int classes_;
};

// ---- The network.
struct Outputs : MethodOutputs {
  torch::Tensor heatmap_logits;  // (N, C, H, W)
  torch::Tensor size;            // (N, 2, H, W) box width, height in cells
};

torch::nn::Sequential head(int in, int hidden, int out, double bias) {
  torch::nn::Sequential s(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, hidden, 3).padding(1)),
                          torch::nn::ReLU(),
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, out, 1)));
  torch::NoGradGuard no_grad;
  s[2]->as<torch::nn::Conv2dImpl>()->bias.fill_(bias);
  return s;
}

class BoxMasksImpl : public MetaArchitectureImpl {
 public:
  explicit BoxMasksImpl(BoxMasksOptions options) : options_(std::move(options)) {
    options_.validate();
    BackboneOptions backbone;
    backbone.name = options_.backbone;
    backbone.width = options_.backbone_width;
    backbone_ = register_module("backbone", build_backbone(backbone));
    const int channels = backbone_->output_shape().channels;
    // CenterNet's prior: every cell starts at a probability of 0.1.
    heatmap_ = register_module("heatmap",
                               head(channels, options_.head_channels, options_.num_classes, -2.19));
    size_ = register_module("size", head(channels, options_.head_channels, 2, 0.0));
  }

  std::string method_name() const override { return "box_masks"; }
  int num_classes() const override { return options_.num_classes; }
  int size_divisor() const override { return backbone_->size_divisor(); }
  torch::nn::Module& backbone_module() override { return *backbone_; }
  std::shared_ptr<const TargetEncoder> make_target_encoder(int) const override {
    return std::make_shared<Encoder>(options_.num_classes);
  }

  std::shared_ptr<const MethodOutputs> run_network(const torch::Tensor& images, bool) override {
    const torch::Tensor features = backbone_->forward(images);
    auto out = std::make_shared<Outputs>();
    out->heatmap_logits = heatmap_->forward(features);
    out->size = size_->forward(features);
    return out;
  }

  MethodLosses compute_losses(const MethodOutputs& raw, const BatchTargets& raw_targets,
                              const torch::Device& device) const override {
    const auto& o = method_cast<Outputs>(raw, "box_masks");
    const auto& t = method_cast<BatchOfTargets>(raw_targets, "box_masks");
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    const torch::Tensor logits = o.heatmap_logits.to(torch::kFloat32);
    const torch::Tensor heatmap =
        torch::from_blob(const_cast<float*>(t.heatmap.data()), logits.sizes(), f32).to(device);
    const double objects = std::max<double>(1.0, static_cast<double>(t.center_index.size()));
    MethodLosses losses;
    const torch::Tensor heatmap_loss =
        torch::binary_cross_entropy_with_logits(logits, heatmap, {}, {}, at::Reduction::Sum) /
        objects;
    torch::Tensor size_loss = torch::zeros({}, logits.options());
    if (!t.center_index.empty()) {
      const auto count = static_cast<std::int64_t>(t.center_index.size());
      const torch::Tensor index =
          torch::tensor(t.center_index, torch::dtype(torch::kInt64)).to(device);
      const torch::Tensor predicted =
          o.size.to(torch::kFloat32).permute({0, 2, 3, 1}).reshape({-1, 2}).index_select(0, index);
      const torch::Tensor target =
          torch::from_blob(const_cast<float*>(t.size.data()), {count, 2}, f32).to(device);
      size_loss = torch::l1_loss(predicted, target, at::Reduction::Sum) / objects;
    }
    losses.total = heatmap_loss + options_.size_weight * size_loss;
    losses.terms = {{"heatmap", heatmap_loss}, {"size", size_loss}};
    return losses;
  }

  std::vector<std::vector<Instance>> detect(const MethodOutputs& raw,
                                            const std::vector<ImageInfo>& infos,
                                            const PredictOptions& options) const override {
    const auto& o = method_cast<Outputs>(raw, "box_masks");
    const torch::Tensor probability = torch::sigmoid(o.heatmap_logits.to(torch::kFloat32));
    // Peaks: cells that are the maximum of their 3×3 neighbourhood.
    const torch::Tensor pooled = torch::max_pool2d(probability, 3, 1, 1);
    const torch::Tensor peaks = (probability * (probability == pooled)).cpu();
    const torch::Tensor size = o.size.to(torch::kFloat32).cpu();
    const std::int64_t n = peaks.size(0), c = peaks.size(1), h = peaks.size(2), w = peaks.size(3);
    const int k = static_cast<int>(std::min<std::int64_t>(options.top_k, c * h * w));
    const auto [scores, indices] = peaks.reshape({n, -1}).topk(k, 1);
    std::vector<std::vector<Instance>> out(static_cast<std::size_t>(n));
    for (std::int64_t b = 0; b < n; ++b) {
      const ImageInfo& info = infos[static_cast<std::size_t>(b)];
      for (int j = 0; j < k; ++j) {
        const float score = scores[b][j].item<float>();
        if (score <= 0 || score < options.score_threshold) break;
        const std::int64_t index = indices[b][j].item<std::int64_t>();
        const std::int64_t cell = index % (h * w), x = cell % w, y = cell / w;
        const float bw = std::max(0.0f, size[b][0][y][x].item<float>());
        const float bh = std::max(0.0f, size[b][1][y][x].item<float>());
        // The box in input pixels, then in the original image, clipped to it.
        const double cx = (static_cast<double>(x) + 0.5) * kStride;
        const double cy = (static_cast<double>(y) + 0.5) * kStride;
        const Point2 p0 =
            info.input_to_original.apply({cx - bw * kStride / 2, cy - bh * kStride / 2});
        const Point2 p1 =
            info.input_to_original.apply({cx + bw * kStride / 2, cy + bh * kStride / 2});
        Instance d;
        d.score = score;
        d.class_index = static_cast<std::int32_t>(index / (h * w));
        d.box = {static_cast<float>(std::clamp(p0.x, 0.0, double(info.original_width))),
                 static_cast<float>(std::clamp(p0.y, 0.0, double(info.original_height))),
                 static_cast<float>(std::clamp(p1.x, 0.0, double(info.original_width))),
                 static_cast<float>(std::clamp(p1.y, 0.0, double(info.original_height)))};
        // The mask is the box: every pixel whose center lies inside it.
        d.has_mask = true;
        d.mask.left = static_cast<int>(std::lround(d.box.x0));
        d.mask.top = static_cast<int>(std::lround(d.box.y0));
        d.mask.width = std::max(0, static_cast<int>(std::lround(d.box.x1)) - d.mask.left);
        d.mask.height = std::max(0, static_cast<int>(std::lround(d.box.y1)) - d.mask.top);
        d.mask.pixels.assign(static_cast<std::size_t>(d.mask.width) * d.mask.height, 1);
        out[static_cast<std::size_t>(b)].push_back(std::move(d));
      }
    }
    return out;
  }

  std::shared_ptr<const MethodOutputs> perfect_network_outputs(
      const std::vector<std::vector<Instance>>& instances, int input_height,
      int input_width) const override {
    Encoder encoder(options_.num_classes);
    const auto n = static_cast<std::int64_t>(instances.size());
    const std::int64_t h = input_height / kStride, w = input_width / kStride;
    auto out = std::make_shared<Outputs>();
    out->heatmap_logits = torch::full({n, options_.num_classes, h, w}, -9.2);
    out->size = torch::zeros({n, 2, h, w});
    for (std::int64_t b = 0; b < n; ++b) {
      const auto targets =
          encoder.encode(instances[static_cast<std::size_t>(b)], input_height, input_width);
      const auto& t = dynamic_cast<const Targets&>(*targets);
      const torch::Tensor heatmap = torch::tensor(t.heatmap).view({options_.num_classes, h, w});
      out->heatmap_logits[b].masked_fill_(heatmap > 0, 9.2);
      for (std::size_t i = 0; i < t.center_cell.size(); ++i) {
        const std::int64_t y = t.center_cell[i] / w, x = t.center_cell[i] % w;
        out->size[b][0][y][x] = t.size[2 * i];
        out->size[b][1][y][x] = t.size[2 * i + 1];
      }
    }
    return out;
  }

  std::string first_non_finite_output(const MethodOutputs& raw) const override {
    const auto& o = method_cast<Outputs>(raw, "box_masks");
    if (!torch::isfinite(o.heatmap_logits).all().item<bool>()) return "heatmap";
    if (!torch::isfinite(o.size).all().item<bool>()) return "size";
    return "";
  }

 private:
  BoxMasksOptions options_;
  std::shared_ptr<BackboneImpl> backbone_;
  torch::nn::Sequential heatmap_{nullptr}, size_{nullptr};
};

BoxMasksOptions options_of(const ModelConfig& config) {
  BoxMasksOptions options = config.method_options<BoxMasksOptions>("box_masks");
  options.num_classes = config.num_classes;
  options.backbone = config.backbone;
  options.backbone_width = config.backbone_width;
  return options;
}

}  // namespace

void BoxMasksOptions::validate() const {
  if (num_classes < 1)
    throw std::invalid_argument(fmt::format("model.num_classes: must be ≥ 1, got {}", num_classes));
  if (head_channels < 1)
    throw std::invalid_argument(
        fmt::format("model.box_masks.head_channels: must be ≥ 1, got {}", head_channels));
  if (!(size_weight >= 0))
    throw std::invalid_argument(
        fmt::format("model.box_masks.loss_weights.size: must be ≥ 0, got {}", size_weight));
}

void declare_option_keys(OptionKeys& keys, BoxMasksOptions& options) {
  keys.add_int("head_channels", "hidden channels of the two heads", options.head_channels);
  keys.add_double("loss_weights.size", "weight of the size L1 beside the heatmap BCE",
                  options.size_weight);
}

MethodRegistration registration() {
  MethodRegistration method;
  method.name = "box_masks";
  method.default_options = [] { return std::make_unique<MethodOptionsOf<BoxMasksOptions>>(); };
  method.validate = [](const ModelConfig& config) { options_of(config).validate(); };
  method.build = [](const ModelConfig& config) -> std::shared_ptr<MetaArchitectureImpl> {
    return std::make_shared<BoxMasksImpl>(options_of(config));
  };
  method.ablation_variants = [] {
    return std::vector<AblationVariant>{
        {"full", "the size loss at weight 0.1", {"model.box_masks.loss_weights.size=0.1"}},
        {"no_size_loss", "the heatmap alone", {"model.box_masks.loss_weights.size=0"}}};
  };
  method.describe = [](const ModelConfig& config) {
    return fmt::format("box masks ({}, {} head channels)", config.backbone,
                       config.method_options<BoxMasksOptions>("box_masks").head_channels);
  };
  return method;
}

}  // namespace centermask::box_masks
