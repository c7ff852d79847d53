#include "centermask/engine/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <limits>
#include <stdexcept>

#include "centermask/common/error.h"
#include "centermask/engine/lr_schedule.h"
#include "common/file_io.h"

namespace centermask {
namespace {

// A declared key: how to read a YAML value into the config, and how to write it back.
// `set` throws std::invalid_argument with what was expected; the caller adds where.
struct Field {
  std::string key;
  std::string doc;
  std::function<void(const YAML::Node&)> set;
  std::function<std::string()> get;
  /// The methods (model.meta_arch) the key belongs to; empty = every method's.
  std::vector<std::string> methods;

  bool belongs_to(const std::string& method) const {
    return methods.empty() || std::find(methods.begin(), methods.end(), method) != methods.end();
  }
};

std::string scalar_text(const YAML::Node& node) {
  if (!node.IsScalar()) throw std::invalid_argument("expected a single value, got a list or map");
  return node.Scalar();
}

double parse_double(const YAML::Node& node) {
  const std::string text = scalar_text(node);
  try {
    std::size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(fmt::format("expected a number, got '{}'", text));
}

std::int64_t parse_integer(const YAML::Node& node) {
  const std::string text = scalar_text(node);
  try {
    std::size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(fmt::format("expected a whole number, got '{}'", text));
}

bool parse_bool(const YAML::Node& node) {
  std::string text = scalar_text(node);
  std::transform(text.begin(), text.end(), text.begin(), ::tolower);
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  throw std::invalid_argument(fmt::format("expected true or false, got '{}'", text));
}

std::string format_double(double v) { return fmt::format("{}", v); }

// Builds the field table bound to one config object.
class FieldTable {
 public:
  explicit FieldTable(TrainConfig& c) { declare(c); }
  const std::vector<Field>& fields() const { return fields_; }
  const Field* find(const std::string& key) const {
    for (const Field& f : fields_)
      if (f.key == key) return &f;
    return nullptr;
  }

 private:
  void add(std::string key, std::string doc, std::function<void(const YAML::Node&)> set,
           std::function<std::string()> get) {
    fields_.push_back(
        {std::move(key), std::move(doc), std::move(set), std::move(get), declaring_methods_});
  }
  void add_int(std::string key, std::string doc, int& ref) {
    add(
        std::move(key), std::move(doc),
        [&ref](const YAML::Node& n) {
          const std::int64_t v = parse_integer(n);
          if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max())
            throw std::invalid_argument(fmt::format("{} is out of range", v));
          ref = static_cast<int>(v);
        },
        [&ref] { return std::to_string(ref); });
  }
  void add_u64(std::string key, std::string doc, std::uint64_t& ref) {
    add(
        std::move(key), std::move(doc),
        [&ref](const YAML::Node& n) {
          const std::int64_t v = parse_integer(n);
          if (v < 0) throw std::invalid_argument(fmt::format("expected ≥ 0, got {}", v));
          ref = static_cast<std::uint64_t>(v);
        },
        [&ref] { return std::to_string(ref); });
  }
  void add_double(std::string key, std::string doc, double& ref) {
    add(
        std::move(key), std::move(doc), [&ref](const YAML::Node& n) { ref = parse_double(n); },
        [&ref] { return format_double(ref); });
  }
  void add_bool(std::string key, std::string doc, bool& ref) {
    add(
        std::move(key), std::move(doc), [&ref](const YAML::Node& n) { ref = parse_bool(n); },
        [&ref] { return ref ? std::string("true") : std::string("false"); });
  }
  void add_string(std::string key, std::string doc, std::string& ref) {
    add(
        std::move(key), std::move(doc),
        [&ref](const YAML::Node& n) { ref = n.IsNull() ? std::string() : scalar_text(n); },
        [&ref] { return ref; });
  }
  void add_double_list(std::string key, std::string doc, std::vector<double>& ref) {
    add(
        std::move(key), std::move(doc),
        [&ref](const YAML::Node& n) {
          if (!n.IsSequence() && !n.IsNull())
            throw std::invalid_argument("expected a list of numbers, e.g. [100, 120]");
          std::vector<double> values;
          for (const YAML::Node& item : n) values.push_back(parse_double(item));
          ref = std::move(values);
        },
        [&ref] {
          std::string out = "[";
          for (std::size_t i = 0; i < ref.size(); ++i)
            out += (i ? ", " : "") + format_double(ref[i]);
          return out + "]";
        });
  }
  template <typename Enum>
  void add_enum(std::string key, std::string doc, Enum& ref,
                std::vector<std::pair<std::string, Enum>> names) {
    add(
        std::move(key), std::move(doc),
        [&ref, names](const YAML::Node& n) {
          const std::string text = scalar_text(n);
          std::string known;
          for (const auto& [name, value] : names) {
            if (name == text) {
              ref = value;
              return;
            }
            known += (known.empty() ? "" : ", ") + name;
          }
          throw std::invalid_argument(fmt::format("expected one of {}, got '{}'", known, text));
        },
        [&ref, names] {
          for (const auto& [name, value] : names)
            if (value == ref) return name;
          return std::string("?");
        });
  }

  // Keys declared while this is set belong to those methods (Field::methods).
  std::vector<std::string> declaring_methods_;

  void declare(TrainConfig& c) {
    ModelConfig& m = c.model;
    add_string("model.meta_arch",
               "the method: " + describe_known_meta_architectures() +
                   " (its options are the other model.* keys)",
               m.meta_arch);
    add_int("model.num_classes", "classes; 0 = the training set's category count", m.num_classes);
    add_string(
        "model.backbone",
        "resnet18, resnet34, resnet50, resnet101, dla34 (with DCNv2), dla34_plain or hourglass104",
        m.backbone.name);
    add_int("model.backbone_width", "ResNet: first-stage channels (64 standard; 32 = ~1/4 compute)",
            m.backbone.width);
    add_string("model.backbone_weights",
               "a PyTorch state_dict file (torch.save: torchvision ResNet, CenterNet or ImageNet "
               "DLA-34, or `centermask export-weights`) the backbone of a new run starts from; "
               "empty = from scratch",
               m.backbone_weights);
    // CenterMask's keys; those of its masks are CenterMask-FCOS's too (the same ablation
    // switches).
    const std::vector<std::string> centermask_only = {"centermask"};
    const std::vector<std::string> centermask_masks = {"centermask", "centermask_fcos"};
    declaring_methods_ = centermask_only;
    add_bool("model.backbone_skips",
             "ResNet: add each stage to the upsampling path at its stride (TTFNet/U-Net shortcuts)",
             m.backbone.skip_connections);
    add_int("model.backbone_output_channels",
            "ResNet: channels of the stride-4 map the heads read; 0 = backbone_width",
            m.backbone.output_channels);
    add_int("model.head_channels", "hidden channels of each head; 0 = 256 for DLA, 64 for ResNet",
            m.head_channels);
    declaring_methods_ = centermask_masks;
    add_int("model.shape_size", "S: the local shape is S x S", m.shape_size);
    add_enum("model.assembly", "how a mask is made (ablation)", m.assembly,
             {{"shape_times_saliency", MaskAssembly::kShapeTimesSaliency},
              {"shape_only", MaskAssembly::kShapeOnly},
              {"saliency_only", MaskAssembly::kSaliencyOnly}});
    add_bool("model.class_specific_saliency", "one saliency channel per class (else one)",
             m.class_specific_saliency);
    declaring_methods_ = centermask_only;
    add_bool("model.direct_saliency_loss", "BCE of each saliency channel vs its class's masks",
             m.direct_saliency_loss);
    declaring_methods_ = centermask_masks;
    add_int("model.saliency_stride",
            "input pixels per saliency cell: 4 (paper), 2 or 1 (finer masks, light upsampling); "
            "CenterMask-FCOS also 8 (P3)",
            m.saliency_stride);
    add_int("model.saliency_upsample_channels",
            "channels of each saliency upsampling stage finer than stride 4",
            m.saliency_upsample_channels);
    declaring_methods_ = centermask_only;
    add_bool(
        "model.dense_box_loss",
        "TTFNet-style Gaussian-weighted offset/size loss around each center (else center only)",
        m.dense_box_loss);
    add_int("model.mask_neighbourhood",
            "also train masks from the shapes at cells within r of each center (0 = center only)",
            m.mask_neighbourhood);
    add_int("model.head_norm_groups",
            "GroupNorm groups after each head's 3x3 conv (FCOS); 0 = none (CenterNet)",
            m.head_norm_groups);
    add_bool("model.small_normal_head_init",
             "heads start from N(0, 0.001) (CenterNet's ResNet) instead of PyTorch's default",
             m.small_normal_head_init);
    add_double("model.loss_weights.heatmap", "lambda_p", m.loss_weights.heatmap);
    add_double("model.loss_weights.offset", "lambda_off", m.loss_weights.offset);
    add_double("model.loss_weights.size", "lambda_size", m.loss_weights.size);
    add_double("model.loss_weights.mask", "lambda_mask", m.loss_weights.mask);
    add_double("model.loss_weights.saliency", "direct saliency loss weight",
               m.loss_weights.saliency);
    add_double(
        "model.loss_weights.box_giou",
        "TTFNet's 1 - GIoU of the boxes at the dense box cells (needs model.dense_box_loss); "
        "0 = off",
        m.loss_weights.box_giou);
    add_double("model.loss_weights.mask_dice", "Dice loss of the assembled masks; 0 = off",
               m.loss_weights.mask_dice);

    declaring_methods_ = {"polarmask"};
    PolarMaskOptions& p = m.polarmask;
    add_int("model.polarmask.num_rays", "rays per polygon, dividing 360 (paper: 18, 24, 36, 72)",
            p.num_rays);
    add_int("model.polarmask.fpn_channels", "channels of every pyramid level and head tower",
            p.fpn_channels);
    add_int("model.polarmask.head_tower_convs", "conv + GN + ReLU units per head tower (3 towers)",
            p.head_tower_convs);
    add_int("model.polarmask.head_norm_groups", "GroupNorm groups of the towers",
            p.head_norm_groups);
    add_double("model.polarmask.center_sampling_radius",
               "positives within r * stride of the sampling center", p.center_sampling_radius);
    add_enum("model.polarmask.sampling_center", "where positives are sampled around (Fig. 7)",
             p.sampling_center,
             {{"mass", PolarMaskSamplingCenter::kMassCenter},
              {"box", PolarMaskSamplingCenter::kBoxCenter}});
    add_enum("model.polarmask.mask_loss", "loss on the rays (Table 1b)", p.mask_loss,
             {{"polar_iou", PolarMaskLoss::kPolarIou}, {"smooth_l1", PolarMaskLoss::kSmoothL1}});
    add_enum(
        "model.polarmask.centerness", "what the centerness branch learns (Table 1c)", p.centerness,
        {{"polar", PolarMaskCenterness::kPolar}, {"cartesian", PolarMaskCenterness::kCartesian}});
    add_double("model.polarmask.loss_weights.classification", "focal loss weight",
               p.loss_weights.classification);
    add_double("model.polarmask.loss_weights.box", "-log IoU box loss weight", p.loss_weights.box);
    add_double("model.polarmask.loss_weights.centerness", "centerness BCE weight",
               p.loss_weights.centerness);
    add_double("model.polarmask.loss_weights.mask", "polar IoU (ray) loss weight",
               p.loss_weights.mask);

    declaring_methods_ = {"centermask_fcos"};
    CenterMaskFcosOptions& f = m.centermask_fcos;
    add_int("model.centermask_fcos.fpn_channels", "channels of every pyramid level and head tower",
            f.fpn_channels);
    add_int("model.centermask_fcos.head_tower_convs",
            "conv + GN + ReLU units per FCOS tower (class, regression)", f.head_tower_convs);
    add_int("model.centermask_fcos.head_norm_groups", "GroupNorm groups of the towers",
            f.head_norm_groups);
    add_double("model.centermask_fcos.center_sampling_radius",
               "positives within r * stride of the box center", f.center_sampling_radius);
    add_int("model.centermask_fcos.saliency_convs",
            "conv + GN + ReLU units of the saliency head on P3", f.saliency_convs);
    add_int("model.centermask_fcos.saliency_channels",
            "width of the saliency head (and of its stride-8 to 4 stage)", f.saliency_channels);
    add_int("model.centermask_fcos.mask_samples_per_image",
            "positives per image whose masks the loss assembles (highest centerness); 0 = all",
            f.mask_samples_per_image);
    add_double("model.centermask_fcos.loss_weights.classification", "focal loss weight",
               f.loss_weights.classification);
    add_double("model.centermask_fcos.loss_weights.box", "1 - GIoU box loss weight",
               f.loss_weights.box);
    add_double("model.centermask_fcos.loss_weights.centerness", "centerness BCE weight",
               f.loss_weights.centerness);
    add_double("model.centermask_fcos.loss_weights.mask", "mask BCE weight", f.loss_weights.mask);
    declaring_methods_.clear();

    DataConfig& d = c.data;
    add_string("data.train_json", "COCO instances JSON for training", d.train_json);
    add_string("data.train_images", "image folder of the training JSON", d.train_images);
    add_string("data.val_json", "COCO instances JSON for evaluation; empty = none", d.val_json);
    add_string("data.val_images", "image folder of the validation JSON", d.val_images);
    add_int("data.input_size", "training input side, multiple of 32", d.input_size);
    add_double("data.scale_min", "random scale, smallest factor", d.scale_min);
    add_double("data.scale_max", "random scale, largest factor", d.scale_max);
    add_double("data.scale_step", "random scale, step between factors", d.scale_step);
    add_int("data.center_border_px", "random center kept this far from the edges",
            d.center_border_px);
    add_double("data.flip_probability", "horizontal flip probability", d.flip_probability);
    add_bool("data.color_jitter", "colour jitter and PCA lighting", d.color_jitter);
    add_int("data.max_objects", "objects per image used as targets", d.max_objects);
    add_int("data.workers", "loader threads; 0 = all cores", d.workers);
    add_bool("data.strict", "data problems are errors instead of counted warnings", d.strict);

    SolverConfig& s = c.solver;
    add_enum("solver.optimizer", "adam or sgd", s.optimizer,
             {{"adam", OptimizerKind::kAdam}, {"sgd", OptimizerKind::kSgd}});
    add_double("solver.lr", "base learning rate", s.lr);
    add_double("solver.momentum", "SGD momentum", s.momentum);
    add_double("solver.weight_decay", "L2 weight decay", s.weight_decay);
    add_int("solver.batch_size", "images per step", s.batch_size);
    add_double("solver.epochs", "length of the run in epochs", s.epochs);
    add_enum("solver.schedule", "step or cosine", s.schedule,
             {{"step", LrSchedule::kStep}, {"cosine", LrSchedule::kCosine}});
    add_double_list("solver.lr_step_epochs", "step schedule: epochs where lr is multiplied",
                    s.lr_step_epochs);
    add_double("solver.lr_gamma", "step schedule: the factor", s.lr_gamma);
    add_double("solver.min_lr_factor", "cosine schedule: final lr / base lr", s.min_lr_factor);
    add_enum("solver.schedule_length",
             "epochs, or time_limit: the cosine ends at runtime.time_limit_minutes of training if "
             "that comes first (a CPU budget annealed on any machine; the lr then depends on the "
             "machine's speed)",
             s.schedule_length,
             {{"epochs", ScheduleLength::kEpochs}, {"time_limit", ScheduleLength::kTimeLimit}});
    add_int("solver.warmup_iters", "linear warm-up length in iterations", s.warmup_iters);
    add_double("solver.warmup_factor", "warm-up starts at this fraction of lr", s.warmup_factor);
    add_double("solver.clip_grad_norm", "max gradient L2 norm; 0 = off", s.clip_grad_norm);
    add_double("solver.ema_decay",
               "moving average of the weights, used for evaluation and model_final.pt: its decay "
               "in (0, 1), 0 = off",
               s.ema_decay);
    add_enum(
        "solver.precision",
        "fp32, or mixed precision: bf16 (CPU with AVX-512 BF16 or AMX, CUDA) or fp16 with loss "
        "scaling (CUDA); losses, gradients and weights stay float32. auto: bf16 where the "
        "hardware has it, else fp32",
        s.precision,
        {{"fp32", TrainingPrecision::kFloat32},
         {"bf16", TrainingPrecision::kBFloat16},
         {"fp16", TrainingPrecision::kFloat16},
         {"auto", TrainingPrecision::kAuto}});
    add_enum("solver.batch_norm",
             "BatchNorm in training: batch (batch statistics, per process when data-parallel) or "
             "frozen (running statistics, not updated: fine-tuning)",
             s.batch_norm, {{"batch", BatchNormMode::kBatch}, {"frozen", BatchNormMode::kFrozen}});

    TestConfig& t = c.test;
    add_int("test.input_size", "test input side, multiple of 32", t.input_size);
    add_int("test.batch_size", "images per forward pass at test time", t.batch_size);
    add_int("test.top_k", "peaks kept per image", t.top_k);
    add_double("test.mask_threshold", "on the assembled mask probability", t.mask_threshold);
    add_double("test.score_threshold", "detections below it are dropped", t.score_threshold);
    add_bool("test.mask_quality_scoring",
             "multiply each score by its mask's mean probability over the kept pixels (SOLOv2's "
             "maskness): ranks sharp masks above hesitant ones",
             t.mask_quality_scoring);
    add_bool("test.flip_test",
             "also run the network on each image's left-right mirror and average the two "
             "outputs (CenterNet's flip test; twice the network's time)",
             t.flip_test);

    RuntimeConfig& r = c.runtime;
    add_string("runtime.device", "cpu, cuda or cuda:N", r.device);
    add_int("runtime.threads", "intra-op threads; 0 = cores available", r.threads);
    add_int("runtime.blas_threads",
            "OpenBLAS's own threads: 1 = BLAS runs on the intra-op threads (no oversubscription), "
            "0 = the library's default (one per core)",
            r.blas_threads);
    add_enum("runtime.memory_format",
             "training's tensor layout: contiguous (N, C, H, W), channels_last (N, H, W, C), or "
             "auto: channels_last when the network runs in bf16 on the CPU (measured faster "
             "there), contiguous elsewhere",
             r.memory_format,
             {{"auto", MemoryFormatChoice::kAuto},
              {"contiguous", MemoryFormatChoice::kContiguous},
              {"channels_last", MemoryFormatChoice::kChannelsLast}});
    add_u64("runtime.seed", "seed of initialisation and data order", r.seed);
    add_double("runtime.distributed_timeout_minutes",
               "data-parallel training: how long a rank waits for the others in a collective",
               r.distributed_timeout_minutes);
    add_int("runtime.checkpoint_every_iters", "0 = only at the end and on Ctrl-C",
            r.checkpoint_every_iters);
    add_int("runtime.eval_every_iters", "0 = only at the end", r.eval_every_iters);
    add_int("runtime.log_every_iters", "iterations per log line", r.log_every_iters);
    add_double("runtime.time_limit_minutes", "stop training after this long; 0 = no limit",
               r.time_limit_minutes);
  }

  std::vector<Field> fields_;
};

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1u : 0u)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(const FieldTable& table, const std::string& key) {
  std::string best;
  std::size_t best_distance = 4;  // suggest only close matches
  for (const Field& f : table.fields()) {
    const std::size_t d = edit_distance(key, f.key);
    if (d < best_distance) best_distance = d, best = f.key;
  }
  std::string message = fmt::format("unknown key '{}'", key);
  if (!best.empty()) message += fmt::format(" (did you mean '{}'?)", best);
  return message + "; `centermask train --list-keys` lists every key";
}

void set_field(const FieldTable& table, const std::string& key, const YAML::Node& value,
               const std::string& where) {
  const Field* field = table.find(key);
  if (field == nullptr) throw InputError(where + ": " + unknown_key_message(table, key));
  try {
    field->set(value);
  } catch (const std::invalid_argument& e) {
    throw InputError(fmt::format("{}: {}: {}", where, key, e.what()));
  }
}

// Applies every leaf of a YAML map, keys joined with dots.
void apply_tree(const FieldTable& table, const YAML::Node& node, const std::string& prefix,
                const std::string& source) {
  for (const auto& item : node) {
    const std::string name = item.first.as<std::string>();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (item.second.IsMap()) {
      // A map is a section unless the key itself is a field (none are maps today).
      if (table.find(key) != nullptr) throw InputError(source + ": " + key + ": expected a value");
      apply_tree(table, item.second, key, source);
    } else {
      set_field(table, key, item.second, source);
    }
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& source) {
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap())
      throw InputError(source + ": expected a map of sections (model:, data:, solver:, ...)");
    return root;
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}: line {}, column {}: malformed YAML: {}", source,
                                 e.mark.line + 1, e.mark.column + 1, e.msg));
  }
}

void apply_file(const FieldTable& table, const std::string& text, const std::string& source,
                const std::filesystem::path& base_dir, int depth) {
  if (depth > 8) throw InputError(source + ": base: more than 8 levels (a cycle?)");
  YAML::Node root = parse_yaml(text, source);
  if (const YAML::Node base = root["base"]) {
    if (!base.IsScalar()) throw InputError(source + ": base: expected a file name");
    const std::filesystem::path base_path = base_dir / base.Scalar();
    apply_file(table, read_file(base_path), base_path.string(), base_path.parent_path(), depth + 1);
    root.remove("base");
  }
  apply_tree(table, root, "", source);
}

void check(bool ok, const std::string& key, const std::string& message) {
  if (!ok) throw std::invalid_argument(key + ": " + message);
}

void validate_or_throw(const TrainConfig& config, const std::string& source) {
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw InputError(source + ": " + e.what());
  }
}

}  // namespace

std::string to_string(OptimizerKind kind) { return kind == OptimizerKind::kAdam ? "adam" : "sgd"; }
std::string to_string(LrSchedule schedule) {
  return schedule == LrSchedule::kStep ? "step" : "cosine";
}

void TrainConfig::validate() const {
  check(model.num_classes >= 0, "model.num_classes", "must be ≥ 0 (0 = from the dataset)");
  const std::vector<std::string>& backbones = backbone_names();
  if (std::find(backbones.begin(), backbones.end(), model.backbone.name) == backbones.end())
    throw std::invalid_argument(fmt::format("model.backbone: expected one of {}, got '{}'",
                                            fmt::join(backbones, ", "), model.backbone.name));
  // CenterMask-FCOS checks its own saliency strides (its saliency head starts at P3's 8).
  check(model.meta_arch == "centermask_fcos" || model.saliency_stride == 4 ||
            model.saliency_stride == 2 || model.saliency_stride == 1,
        "model.saliency_stride",
        fmt::format("must be 4, 2 or 1 (input pixels per saliency cell), got {}",
                    model.saliency_stride));
  check(model.shape_size >= 2 && model.shape_size <= 256, "model.shape_size",
        fmt::format("S must be 2 to 256, got {}", model.shape_size));
  check(model.mask_neighbourhood >= 0 && model.mask_neighbourhood <= 3, "model.mask_neighbourhood",
        fmt::format("must be 0 to 3 cells, got {}", model.mask_neighbourhood));
  check(model.loss_weights.box_giou == 0 || model.dense_box_loss, "model.loss_weights.box_giou",
        "needs model.dense_box_loss: true (the GIoU is taken at the dense box cells)");
  const auto& known = known_meta_architectures();
  check(std::find(known.begin(), known.end(), model.meta_arch) != known.end(), "model.meta_arch",
        fmt::format("unknown method '{}' (known: {})", model.meta_arch,
                    describe_known_meta_architectures()));
  // Another method's option set away from its default is a mistake (a config written for one
  // method run with another): name the key rather than silently ignore it.
  {
    TrainConfig copy = *this, defaults;
    const FieldTable table(copy), default_table(defaults);
    for (std::size_t i = 0; i < table.fields().size(); ++i) {
      const Field& f = table.fields()[i];
      if (!f.belongs_to(model.meta_arch) && f.get() != default_table.fields()[i].get())
        throw std::invalid_argument(fmt::format(
            "{}: an option of {}, but model.meta_arch is {} (remove the key or change the method)",
            f.key, fmt::join(f.methods, " and "), model.meta_arch));
    }
  }
  if (model.meta_arch == "centermask") {
    // The class count may still be unknown (0: from the dataset); check the rest as for one
    // class.
    CenterMaskOptions model_to_check = model;
    if (model_to_check.num_classes == 0) model_to_check.num_classes = 1;
    try {
      model_to_check.validate();
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("model: ") + e.what());
    }
  } else {
    ModelConfig model_to_check = model;
    if (model_to_check.num_classes == 0) model_to_check.num_classes = 1;
    if (model.meta_arch == "polarmask") polarmask_options(model_to_check).validate();
    if (model.meta_arch == "centermask_fcos") centermask_fcos_options(model_to_check).validate();
  }
  check(data.input_size >= 32 && data.input_size % 32 == 0, "data.input_size",
        fmt::format("must be a positive multiple of 32, got {}", data.input_size));
  check(test.input_size >= 32 && test.input_size % 32 == 0, "test.input_size",
        fmt::format("must be a positive multiple of 32, got {}", test.input_size));
  check(data.scale_min > 0 && data.scale_max >= data.scale_min, "data.scale_min",
        "need 0 < scale_min ≤ scale_max");
  check(data.scale_step > 0, "data.scale_step", "must be > 0");
  check(data.flip_probability >= 0 && data.flip_probability <= 1, "data.flip_probability",
        "must be in [0, 1]");
  check(data.max_objects > 0, "data.max_objects", "must be > 0");
  check(data.workers >= 0, "data.workers", "must be ≥ 0");
  check(solver.lr > 0, "solver.lr", "must be > 0");
  check(solver.batch_size > 0, "solver.batch_size", "must be > 0");
  check(solver.epochs > 0, "solver.epochs", "must be > 0");
  check(solver.lr_gamma > 0, "solver.lr_gamma", "must be > 0");
  check(std::is_sorted(solver.lr_step_epochs.begin(), solver.lr_step_epochs.end()),
        "solver.lr_step_epochs", "must be ascending");
  check(solver.warmup_iters >= 0, "solver.warmup_iters", "must be ≥ 0");
  check(solver.warmup_factor > 0 && solver.warmup_factor <= 1, "solver.warmup_factor",
        "must be in (0, 1]");
  check(solver.clip_grad_norm >= 0, "solver.clip_grad_norm", "must be ≥ 0 (0 = off)");
  check(solver.ema_decay >= 0 && solver.ema_decay < 1, "solver.ema_decay",
        "must be in [0, 1) (0 = off)");
  check(solver.momentum >= 0 && solver.momentum < 1, "solver.momentum", "must be in [0, 1)");
  check(solver.weight_decay >= 0, "solver.weight_decay", "must be ≥ 0");
  check(solver.min_lr_factor >= 0 && solver.min_lr_factor <= 1, "solver.min_lr_factor",
        "must be in [0, 1]");
  // The schedule checks its own combination (time_limit needs cosine and a budget) and names
  // the key; constructing it is the one place those rules live.
  LrScheduleFunction(solver, 1, runtime.time_limit_minutes * 60);
  check(test.batch_size > 0, "test.batch_size", "must be > 0");
  check(test.top_k > 0, "test.top_k", "must be > 0");
  check(test.mask_threshold > 0 && test.mask_threshold < 1, "test.mask_threshold",
        "must be in (0, 1)");
  check(runtime.threads >= 0, "runtime.threads", "must be ≥ 0");
  check(runtime.blas_threads >= 0, "runtime.blas_threads",
        "must be ≥ 0 (0 = the library's default)");
  check(runtime.checkpoint_every_iters >= 0, "runtime.checkpoint_every_iters", "must be ≥ 0");
  check(runtime.distributed_timeout_minutes > 0, "runtime.distributed_timeout_minutes",
        "must be > 0");
  check(runtime.eval_every_iters >= 0, "runtime.eval_every_iters", "must be ≥ 0");
  check(runtime.log_every_iters > 0, "runtime.log_every_iters", "must be > 0");
  check(runtime.time_limit_minutes >= 0, "runtime.time_limit_minutes", "must be ≥ 0");
  check(runtime.device == "cpu" || runtime.device.rfind("cuda", 0) == 0, "runtime.device",
        fmt::format("expected cpu, cuda or cuda:N, got '{}'", runtime.device));
  check(!data.train_json.empty(), "data.train_json", "is required");
  check(!data.train_images.empty(), "data.train_images", "is required");
  check(data.val_json.empty() == data.val_images.empty(), "data.val_images",
        "data.val_json and data.val_images go together");
}

void apply_config_overrides(TrainConfig* config, const std::vector<std::string>& overrides) {
  FieldTable table(*config);
  for (const std::string& item : overrides) {
    const std::string where = "--set " + item;
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(where + ": expected KEY=VALUE, e.g. solver.lr=1e-3");
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    YAML::Node node;
    try {
      node = value.empty() ? YAML::Node() : YAML::Load(value);
    } catch (const YAML::Exception& e) {
      throw InputError(where + ": malformed value: " + e.msg);
    }
    set_field(table, key, node, where);
  }
}

TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source_name,
                               const std::vector<std::string>& overrides,
                               const std::filesystem::path& base_dir) {
  TrainConfig config;
  FieldTable table(config);
  apply_file(table, yaml_text, source_name, base_dir, 0);
  apply_config_overrides(&config, overrides);
  validate_or_throw(config, source_name);
  return config;
}

TrainConfig load_train_config(const std::filesystem::path& path,
                              const std::vector<std::string>& overrides) {
  return parse_train_config(read_file(path), path.string(), overrides, path.parent_path());
}

std::string to_yaml(const TrainConfig& config) {
  TrainConfig copy = config;
  FieldTable table(copy);
  // Nested output (section: then indented keys), fields in declaration order; values are
  // written in YAML flow syntax that reads back to the same value.
  std::string out;
  std::vector<std::string> open;  // the sections currently open
  for (const Field& f : table.fields()) {
    // Only the chosen method's options: a resolved config reads back under the same method,
    // and a CenterMask run's config.yaml is what it was before methods were pluggable.
    if (!f.belongs_to(config.model.meta_arch)) continue;
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t dot; (dot = f.key.find('.', start)) != std::string::npos; start = dot + 1)
      parts.push_back(f.key.substr(start, dot - start));
    const std::string leaf = f.key.substr(start);
    std::size_t common = 0;
    while (common < open.size() && common < parts.size() && open[common] == parts[common]) ++common;
    open.resize(common);
    for (std::size_t i = common; i < parts.size(); ++i) {
      out += std::string(2 * i, ' ') + parts[i] + ":\n";
      open.push_back(parts[i]);
    }
    YAML::Emitter value;
    const std::string text = f.get();
    if (text.empty()) {
      value << YAML::DoubleQuoted << "";
    } else if (text.front() == '[') {
      value << YAML::Flow << YAML::Load(text);
    } else {
      value << text;
    }
    out += std::string(2 * parts.size(), ' ') + leaf + ": " + value.c_str() + "\n";
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> config_keys() {
  TrainConfig config;
  FieldTable table(config);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const Field& f : table.fields())
    keys.emplace_back(f.key, f.doc + " (default " + f.get() + ")");
  return keys;
}

}  // namespace centermask
