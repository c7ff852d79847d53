#include "centermask/engine/config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/engine/lr_schedule.h"
#include "centermask/modeling/backbone.h"
#include "centermask/modeling/method_registry.h"

namespace centermask {
namespace {

// A declared key: how to read a YAML value into the config, and how to write it back.
// `set` throws std::invalid_argument with what was expected; the caller adds where.
struct Field {
  std::string key;
  std::string doc;
  std::function<void(const YAML::Node&)> set;
  std::function<std::string()> get;
  /// The method (model.meta_arch) whose key this is (model.<method>.*); empty = every method's.
  std::string method;

  bool belongs_to(const std::string& meta_arch) const {
    return method.empty() || method == meta_arch;
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
        {std::move(key), std::move(doc), std::move(set), std::move(get), declaring_method_});
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
  void add_choice(std::string key, std::string doc, const std::vector<std::string>& names,
                  std::function<void(const std::string&)> set_name,
                  std::function<std::string()> get_name) {
    add(
        std::move(key), std::move(doc),
        [names, set_name](const YAML::Node& n) {
          const std::string text = scalar_text(n);
          if (std::find(names.begin(), names.end(), text) == names.end())
            throw std::invalid_argument(
                fmt::format("expected one of {}, got '{}'", fmt::join(names, ", "), text));
          set_name(text);
        },
        std::move(get_name));
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

  // A method's keys, declared by the method under model.<method>. (OptionKeys).
  class MethodKeys : public OptionKeys {
   public:
    MethodKeys(FieldTable& table, std::string prefix) : table_(table), prefix_(std::move(prefix)) {}
    void add_int(const std::string& key, const std::string& doc, int& value) override {
      table_.add_int(prefix_ + key, doc, value);
    }
    void add_double(const std::string& key, const std::string& doc, double& value) override {
      table_.add_double(prefix_ + key, doc, value);
    }
    void add_bool(const std::string& key, const std::string& doc, bool& value) override {
      table_.add_bool(prefix_ + key, doc, value);
    }
    void add_string(const std::string& key, const std::string& doc, std::string& value) override {
      table_.add_string(prefix_ + key, doc, value);
    }
    void add_choice(const std::string& key, const std::string& doc,
                    const std::vector<std::string>& names,
                    std::function<void(const std::string&)> set,
                    std::function<std::string()> get) override {
      table_.add_choice(prefix_ + key, doc, names, std::move(set), std::move(get));
    }

   private:
    FieldTable& table_;
    std::string prefix_;
  };

  // Keys declared while this is set are that method's (Field::method).
  std::string declaring_method_;

  void declare(TrainConfig& c) {
    ModelConfig& m = c.model;
    add_string("model.meta_arch",
               "the method: " + describe_known_meta_architectures() +
                   " (its options are the keys under model.<method>.)",
               m.meta_arch);
    add_int("model.num_classes", "classes; 0 = the training set's category count", m.num_classes);
    add_string(
        "model.backbone",
        "resnet18, resnet34, resnet50, resnet101, dla34 (with DCNv2), dla34_plain or hourglass104",
        m.backbone);
    add_int("model.backbone_width", "ResNet: first-stage channels (64 standard; 32 = ~1/4 compute)",
            m.backbone_width);
    add_string("model.backbone_weights",
               "a PyTorch state_dict file (torch.save: torchvision ResNet, CenterNet or ImageNet "
               "DLA-34, or `centermask export-weights`) the backbone of a new run starts from; "
               "empty = from scratch",
               m.backbone_weights);
    // Every registered method's keys, each under its name.
    for (const std::string& method : registered_method_names()) {
      declaring_method_ = method;
      MethodKeys keys(*this, "model." + method + ".");
      m.options_of(method).declare_keys(keys);
    }
    declaring_method_.clear();

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
    add_double("data.copy_paste_probability",
               "simple copy-paste (Ghiasi et al. 2021): probability that a second training image "
               "pastes a random half of its objects over each image; 0 = off",
               d.copy_paste_probability);
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
    add_double("solver.epochs",
               "length of the run in epochs; with schedule_length time_limit a cap, and 0 = no "
               "cap (the time limit alone ends training, on any dataset size)",
               s.epochs);
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

void set_field(const Field& field, const YAML::Node& value, const std::string& where) {
  try {
    field.set(value);
  } catch (const std::invalid_argument& e) {
    throw InputError(fmt::format("{}: {}: {}", where, field.key, e.what()));
  }
}

// One value given for a key: by a config file (`where` is the file) or by a --set.
struct Assignment {
  std::string key;
  YAML::Node value;
  std::string where;
};

// Every leaf of a YAML map as an assignment, keys joined with dots.
void collect_tree(const FieldTable& table, const YAML::Node& node, const std::string& prefix,
                  const std::string& source, std::vector<Assignment>* out) {
  for (const auto& item : node) {
    const std::string name = item.first.as<std::string>();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (item.second.IsMap()) {
      // A map is a section unless the key itself is a field (none are maps today).
      if (table.find(key) != nullptr) throw InputError(source + ": " + key + ": expected a value");
      collect_tree(table, item.second, key, source, out);
    } else {
      out->push_back({key, item.second, source});
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

// A file's assignments, its `base:` file's first.
void collect_file(const FieldTable& table, const std::string& text, const std::string& source,
                  const std::filesystem::path& base_dir, int depth, std::vector<Assignment>* out) {
  if (depth > 8) throw InputError(source + ": base: more than 8 levels (a cycle?)");
  YAML::Node root = parse_yaml(text, source);
  if (const YAML::Node base = root["base"]) {
    if (!base.IsScalar()) throw InputError(source + ": base: expected a file name");
    const std::filesystem::path base_path = base_dir / base.Scalar();
    collect_file(table, read_file(base_path), base_path.string(), base_path.parent_path(),
                 depth + 1, out);
    root.remove("base");
  }
  collect_tree(table, root, "", source, out);
}

std::vector<Assignment> override_assignments(const std::vector<std::string>& overrides) {
  std::vector<Assignment> out;
  for (const std::string& item : overrides) {
    const std::string where = "--set " + item;
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(where + ": expected KEY=VALUE, e.g. solver.lr=1e-3");
    const std::string value = item.substr(eq + 1);
    YAML::Node node;
    try {
      node = value.empty() ? YAML::Node() : YAML::Load(value);
    } catch (const YAML::Exception& e) {
      throw InputError(where + ": malformed value: " + e.msg);
    }
    out.push_back({item.substr(0, eq), node, where});
  }
  return out;
}

// The method a key of the form model.<method>.<option> belongs to ("" for a shared key).
const Field* method_field(const FieldTable& table, const std::string& method,
                          const std::string& option) {
  return table.find("model." + method + "." + option);
}

// Applies `assignments` in order and returns, per key set, where its last value came from.
//
// The one translation of the config's earlier form: before methods had their own sections, a
// method's options sat directly under model. (model.shape_size, model.loss_weights.mask), and
// configs and checkpoints written then say so. Such a key is read as the same option of the
// config's method (model.<meta_arch>.shape_size), so earlier runs load unchanged; to_yaml
// writes the new form.
//
// A key of another method than the config's (model.polarmask.num_rays in a CenterMask config)
// is an error whatever its value: a config written for one method and run with another.
std::map<std::string, std::string> apply_assignments(TrainConfig* config,
                                                     const std::vector<Assignment>& assignments) {
  FieldTable table(*config);
  std::string meta_arch = config->model.meta_arch;
  for (const Assignment& a : assignments)
    if (a.key == "model.meta_arch" && a.value.IsScalar()) meta_arch = a.value.Scalar();

  std::map<std::string, std::string> set_by;
  for (const Assignment& a : assignments) {
    const Field* field = table.find(a.key);
    if (field == nullptr && a.key.rfind("model.", 0) == 0) {
      const std::string option = a.key.substr(6);
      field = method_field(table, meta_arch, option);
      if (field == nullptr) {
        // Another method's option in the earlier form: say where it lives now.
        for (const std::string& method : registered_method_names())
          if (method_field(table, method, option) != nullptr)
            throw InputError(
                fmt::format("{}: {}: now model.{}.{}, an option of {}, but model.meta_arch is {}",
                            a.where, a.key, method, option, method, meta_arch));
      }
    }
    if (field == nullptr) throw InputError(a.where + ": " + unknown_key_message(table, a.key));
    set_field(*field, a.value, a.where);
    set_by[field->key] = a.where;
  }
  for (const auto& [key, where] : set_by) {
    const Field* field = table.find(key);  // every key in set_by was found above
    if (field != nullptr && !field->belongs_to(config->model.meta_arch))
      throw InputError(fmt::format(
          "{}: {}: an option of {}, but model.meta_arch is {} (remove the key or change the "
          "method)",
          where, key, field->method, config->model.meta_arch));
  }
  return set_by;
}

void check(bool ok, const std::string& key, const std::string& message) {
  if (!ok) throw std::invalid_argument(key + ": " + message);
}

// Validates, naming where the faulty key's value came from: the --set that gave it, or else
// the config file.
void validate_or_throw(const TrainConfig& config, const std::string& source,
                       const std::map<std::string, std::string>& set_by) {
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    const std::string key = message.substr(0, message.find(':'));
    const auto it = set_by.find(key);
    const bool from_override = it != set_by.end() && it->second.rfind("--set ", 0) == 0;
    throw InputError((from_override ? it->second : source) + ": " + message);
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
  if (std::find(backbones.begin(), backbones.end(), model.backbone) == backbones.end())
    throw std::invalid_argument(fmt::format("model.backbone: expected one of {}, got '{}'",
                                            fmt::join(backbones, ", "), model.backbone));
  // The method checks its own options (find_method names the known methods otherwise). The
  // class count may still be unknown (0: from the dataset): checked as for one class.
  ModelConfig model_to_check = model;
  if (model_to_check.num_classes == 0) model_to_check.num_classes = 1;
  find_method(model.meta_arch).validate(model_to_check);
  check(data.input_size >= 32 && data.input_size % 32 == 0, "data.input_size",
        fmt::format("must be a positive multiple of 32, got {}", data.input_size));
  check(test.input_size >= 32 && test.input_size % 32 == 0, "test.input_size",
        fmt::format("must be a positive multiple of 32, got {}", test.input_size));
  check(data.scale_min > 0 && data.scale_max >= data.scale_min, "data.scale_min",
        "need 0 < scale_min ≤ scale_max");
  check(data.scale_step > 0, "data.scale_step", "must be > 0");
  check(data.copy_paste_probability >= 0 && data.copy_paste_probability <= 1,
        "data.copy_paste_probability", "must be in [0, 1]");
  check(data.flip_probability >= 0 && data.flip_probability <= 1, "data.flip_probability",
        "must be in [0, 1]");
  check(data.max_objects > 0, "data.max_objects", "must be > 0");
  check(data.workers >= 0, "data.workers", "must be ≥ 0");
  check(solver.lr > 0, "solver.lr", "must be > 0");
  check(solver.batch_size > 0, "solver.batch_size", "must be > 0");
  check(solver.epochs >= 0, "solver.epochs",
        "must be ≥ 0 (0: no cap, the time limit ends training)");
  check(solver.epochs > 0 || (solver.schedule_length == ScheduleLength::kTimeLimit &&
                              runtime.time_limit_minutes > 0),
        "solver.epochs",
        "0 (no cap) needs solver.schedule_length: time_limit and runtime.time_limit_minutes > 0: "
        "something must end training");
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

std::vector<std::string> environment_overrides() {
  std::vector<std::string> overrides;
  const char* text = std::getenv("CENTERMASK_SET");
  if (text == nullptr) return overrides;
  std::istringstream words(text);
  for (std::string word; words >> word;) overrides.push_back(word);
  return overrides;
}

void apply_config_overrides(TrainConfig* config, const std::vector<std::string>& overrides) {
  apply_assignments(config, override_assignments(overrides));
}

TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source_name,
                               const std::vector<std::string>& overrides,
                               const std::filesystem::path& base_dir) {
  TrainConfig config;
  std::vector<Assignment> assignments;
  collect_file(FieldTable(config), yaml_text, source_name, base_dir, 0, &assignments);
  for (Assignment& a : override_assignments(overrides)) assignments.push_back(std::move(a));
  const std::map<std::string, std::string> set_by = apply_assignments(&config, assignments);
  validate_or_throw(config, source_name, set_by);
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
    // Only the chosen method's options: a resolved config reads back under the same method.
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

std::vector<std::pair<std::string, std::string>> method_settings(const TrainConfig& config) {
  TrainConfig copy = config;
  FieldTable table(copy);
  const std::string prefix = "model." + config.model.meta_arch + ".";
  std::vector<std::pair<std::string, std::string>> settings;
  for (const Field& f : table.fields())
    if (f.method == config.model.meta_arch)
      settings.emplace_back(f.key.substr(prefix.size()), f.get());
  return settings;
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
