#include "centermask/engine/trainer.h"

#include <fmt/format.h>
#include <malloc.h>
#include <sched.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <iostream>
#include <optional>
#include <thread>
#include <utility>

#include "centermask/common/blas_threads.h"
#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_writer.h"
#include "centermask/data/loader.h"
#include "centermask/engine/checkpoint.h"
#include "centermask/engine/distributed.h"
#include "centermask/engine/gradients.h"
#include "centermask/engine/inference.h"
#include "centermask/engine/lr_schedule.h"
#include "centermask/engine/weight_average.h"
#include "centermask/modeling/backbone_weights.h"
#include "centermask/modeling/method_registry.h"
#include "engine/training_log.h"

namespace centermask {
namespace {

std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signals{0};

extern "C" void on_stop_signal(int signal_number) {
  // The second Ctrl-C is the user insisting: let the default action end the program.
  if (g_stop_signals.fetch_add(1) > 0) {
    std::signal(signal_number, SIG_DFL);
    std::raise(signal_number);
  }
  g_stop_requested.store(true);
}

const char* const kRunFiles[] = {"config.yaml", "log.jsonl", "last.pt", "model_final.pt",
                                 "metrics.json"};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The "model:" section of a resolved config: what must not change when a run is resumed.
std::string model_section(const std::string& yaml) {
  const std::size_t start = yaml.find("model:\n");
  if (start == std::string::npos) return {};
  std::size_t end = start + 7;
  while (end < yaml.size() && (yaml[end] == ' ' || yaml[end] == '\n')) {
    end = yaml.find('\n', end);
    if (end == std::string::npos) return yaml.substr(start);
    ++end;
  }
  return yaml.substr(start, end - start);
}

// Read-only checks of the run folder, done before anything is changed in it.
void check_run_directory(const std::filesystem::path& run_dir, const TrainerOptions& options) {
  if (std::filesystem::exists(run_dir) && !std::filesystem::is_directory(run_dir))
    throw InputError(run_dir.string() + ": exists and is not a folder");
  if (options.resume) {
    if (!std::filesystem::exists(run_dir / "last.pt"))
      throw InputError((run_dir / "last.pt").string() + ": no checkpoint to resume from");
    return;
  }
  if (options.overwrite) return;
  std::string found;
  for (const char* name : kRunFiles)
    if (std::filesystem::exists(run_dir / name))
      found += (found.empty() ? "" : ", ") + std::string(name);
  if (!found.empty())
    throw InputError(fmt::format(
        "{}: holds an earlier run ({}); pass --resume to continue it or --overwrite to replace it",
        run_dir.string(), found));
}

// Creates the folder; with --overwrite, removes the earlier run's files. Called only once the
// new run's config, data and checkpoint have been checked, so a mistake in them does not cost
// the user the earlier run.
void prepare_run_directory(const std::filesystem::path& run_dir, const TrainerOptions& options) {
  std::error_code ec;
  if (!options.resume)
    for (const char* name : kRunFiles) std::filesystem::remove(run_dir / name, ec);
  std::filesystem::create_directories(run_dir, ec);
  if (ec) throw InputError(run_dir.string() + ": cannot create the folder: " + ec.message());
}

std::shared_ptr<const TrainingSet> open_split(const std::string& json, const std::string& images,
                                              const char* json_key, bool strict,
                                              std::vector<std::string>* messages) {
  CocoLoadReport report;
  auto dataset = std::make_shared<const CocoDataset>(CocoDataset::load(json, {strict}, &report));
  TrainingSetOptions set_options;
  set_options.strict = strict;
  auto set = TrainingSet::open(dataset, images, set_options, &report);
  for (const std::string& line : report.lines())
    messages->push_back(fmt::format("{}: {}", json, line));
  if (set->size() == 0)
    throw InputError(fmt::format(
        "{} ({}): no usable images: {} listed, none found and readable in {} (see the warnings "
        "above)",
        json_key, json, dataset->images().size(), images));
  return set;
}

const char* training_precision_name(TrainingPrecision precision) {
  switch (precision) {
    case TrainingPrecision::kBFloat16:
      return "bf16";
    case TrainingPrecision::kFloat16:
      return "fp16";
    case TrainingPrecision::kAuto:
      return "auto";
    case TrainingPrecision::kFloat32:
      break;
  }
  return "fp32";
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model,
                                                        const SolverConfig& solver) {
  if (solver.optimizer == OptimizerKind::kSgd)
    return std::make_unique<torch::optim::SGD>(model.parameters(),
                                               torch::optim::SGDOptions(solver.lr)
                                                   .momentum(solver.momentum)
                                                   .weight_decay(solver.weight_decay));
  return std::make_unique<torch::optim::Adam>(
      model.parameters(), torch::optim::AdamOptions(solver.lr).weight_decay(solver.weight_decay));
}

// metrics.json. `recent` are the training loss terms of the last iterations: with the mask loss
// computed at ground-truth centers and boxes, a measure of mask quality that does not depend on
// detection (what the ablation compares when a short budget leaves AP near zero).
void save_metrics(const std::filesystem::path& path, std::int64_t iteration, TrainStatus status,
                  const EvaluationReport& report, const std::deque<LossTerms>& recent) {
  std::string text;
  json::Writer w(text);
  w.begin_object();
  w.key("iter").value(iteration);
  w.key("status").value(status == TrainStatus::kFinished ? "finished" : "time_limit");
  w.key("images").value(report.run.images);
  LossTerms sum;
  for (const LossTerms& terms : recent) sum += terms;
  const LossTerms loss = sum / static_cast<double>(std::max<std::size_t>(1, recent.size()));
  w.key("train_loss").begin_object();
  w.key("iterations").value(static_cast<std::int64_t>(recent.size()));
  w.key("total").value(loss.total);
  for (const auto& [name, value] : loss.terms) w.key(name).value(value);
  w.end_object();
  for (const CocoEvalResult* result : {&report.segm, &report.bbox}) {
    w.key(iou_type_name(result->iou_type)).begin_object();
    for (std::size_t i = 0; i < 12; ++i) w.key(coco_stat_name(i)).value(result->stats[i]);
    w.end_object();
  }
  w.end_object();
  write_file_atomically(path, text + "\n");
}

// Each step's loss terms and gradient norm, kept on the device until read. Reading a CUDA
// scalar waits for the GPU to finish the step and stalls the launch of the next, so the trainer
// reads them every log period and before each checkpoint and evaluation on CUDA (a divergence is
// then reported with its iteration a few steps late, and no checkpoint holds the diverged
// weights); on the CPU there is nothing to wait for and it reads every step.
class StepValueQueue {
 public:
  struct Step {
    std::int64_t iteration = 0;
    LossTerms loss;
    double grad_norm = 0;  ///< 0 without clipping
    bool skipped = false;  ///< fp16: the gradients overflowed and the step was not taken
  };

  void add(std::int64_t iteration, const MethodLosses& losses, const torch::Tensor& grad_norm,
           bool skipped) {
    if (names_.empty())
      for (const auto& term : losses.terms) names_.push_back(term.first);
    std::vector<torch::Tensor> row{losses.total.detach().to(torch::kFloat32)};
    for (const auto& term : losses.terms) row.push_back(term.second.detach().to(torch::kFloat32));
    row.push_back(grad_norm.defined() ? grad_norm.detach().to(torch::kFloat32).to(row[0].device())
                                      : torch::zeros({}, row[0].options()));
    rows_.push_back(torch::stack(row));
    pending_.push_back({iteration, skipped});
  }
  bool empty() const { return rows_.empty(); }

  /// Reads every queued step (one transfer) in order. A non-finite loss, or a non-finite
  /// gradient norm of a step that was taken, throws TrainingDiverged naming the iteration.
  std::vector<Step> read(bool clipping, DataParallelGroup* data_parallel) {
    std::vector<Step> steps;
    if (rows_.empty()) return steps;
    // Taken out first: whatever is read (or thrown) below, the queue is empty afterwards.
    const std::vector<torch::Tensor> rows = std::exchange(rows_, {});
    const std::vector<std::pair<std::int64_t, bool>> pending = std::exchange(pending_, {});
    torch::Tensor values = torch::stack(rows);
    // Each rank's losses are its shard's: the mean over ranks is the global batch's loss (the
    // gradient norm, of averaged gradients, is the same on every rank already).
    if (data_parallel != nullptr) data_parallel->average_over_ranks(values, "averaging the losses");
    values = values.to(torch::kCPU, torch::kFloat64).contiguous();
    const double* v = values.data_ptr<double>();
    const std::size_t width = names_.size() + 2;
    for (std::size_t i = 0; i < pending.size(); ++i, v += width) {
      Step step;
      step.iteration = pending[i].first;
      step.skipped = pending[i].second;
      step.loss.total = v[0];
      for (std::size_t t = 0; t < names_.size(); ++t)
        step.loss.terms.emplace_back(names_[t], v[1 + t]);
      step.grad_norm = v[width - 1];
      if (!std::isfinite(step.loss.total))
        throw_diverged(step.iteration, non_finite_loss_message(step.loss));
      if (clipping && !step.skipped && !std::isfinite(step.grad_norm))
        throw_diverged(step.iteration, fmt::format("the gradient norm is {}", step.grad_norm));
      steps.push_back(std::move(step));
    }
    return steps;
  }

  /// What every divergence says: the iteration, the cause, and what the user has left.
  static std::string diverged_message(std::int64_t iteration, const std::string& cause,
                                      const std::string& checkpoint_note) {
    return fmt::format(
        "iteration {}: {}; training stopped without saving. {}. Try a lower solver.lr, "
        "solver.warmup_iters or solver.clip_grad_norm.",
        iteration, cause, checkpoint_note);
  }
  std::string checkpoint_note;  ///< set by the trainer as checkpoints are written

 private:
  [[noreturn]] void throw_diverged(std::int64_t iteration, const std::string& cause) const {
    throw TrainingDiverged(diverged_message(iteration, cause, checkpoint_note));
  }
  // The first non-finite term by name (the total when every term is finite).
  static std::string non_finite_loss_message(const LossTerms& loss) {
    std::string bad = "total", values;
    double bad_value = loss.total;
    for (const auto& [name, value] : loss.terms) {
      if (!std::isfinite(value) && bad == "total") bad = name, bad_value = value;
      values += fmt::format(" {} {}", name, value);
    }
    return fmt::format("loss term '{}' is {} (terms:{})", bad, bad_value, values);
  }

  std::vector<std::string> names_;
  std::vector<torch::Tensor> rows_;
  std::vector<std::pair<std::int64_t, bool>> pending_;  // iteration, skipped
};

// A loss may refuse non-finite inputs (CenterMask's BCE on NaN probabilities): turn that into
// the same divergence report, naming the network output that went non-finite.
MethodLosses loss_or_divergence(const MetaArchitectureImpl& model, const MethodOutputs& outputs,
                                const BatchTargets& targets, const torch::Device& device) {
  try {
    return model.compute_losses(outputs, targets, device);
  } catch (const c10::Error&) {
    const std::string output = model.first_non_finite_output(outputs);
    if (!output.empty())
      throw TrainingDiverged(fmt::format(
          "the network's {} output is not finite, so the loss cannot be computed", output));
    throw;
  }
}

// While alive, the model holds the weight average's weights (when there is one): what
// evaluations and the final checkpoint use. Swaps back even when evaluation throws.
class AveragedWeightsInModel {
 public:
  AveragedWeightsInModel(WeightAverage* average, torch::nn::Module& model)
      : average_(average), model_(model) {
    if (average_ != nullptr) average_->swap_with(model_);
  }
  ~AveragedWeightsInModel() {
    if (average_ != nullptr) average_->swap_with(model_);
  }
  AveragedWeightsInModel(const AveragedWeightsInModel&) = delete;
  AveragedWeightsInModel& operator=(const AveragedWeightsInModel&) = delete;

 private:
  WeightAverage* average_;
  torch::nn::Module& model_;
};

}  // namespace

void request_training_stop() { g_stop_requested.store(true); }

void install_training_signal_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
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

void set_training_mode(torch::nn::Module& model, BatchNormMode batch_norm) {
  model.train();
  if (batch_norm == BatchNormMode::kFrozen)
    model.apply([](torch::nn::Module& module) {
      if (dynamic_cast<torch::nn::BatchNorm2dImpl*>(&module) != nullptr ||
          dynamic_cast<torch::nn::BatchNorm1dImpl*>(&module) != nullptr)
        module.eval();
    });
}

TrainConfig load_run_config(const std::filesystem::path& run_dir,
                            const std::vector<std::string>& overrides) {
  const std::filesystem::path path = run_dir / "config.yaml";
  if (!std::filesystem::exists(path))
    throw InputError(path.string() + ": no saved config: is this a run folder?");
  const TrainConfig saved = load_train_config(path);
  TrainConfig config = saved;
  apply_config_overrides(&config, overrides);
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw InputError(path.string() + " with --set: " + e.what());
  }
  // The saved config was resolved (classes known); changing the model would not load.
  if (model_section(to_yaml(config)) != model_section(to_yaml(saved)))
    throw InputError(
        "--set: a resumed run cannot change model.* keys (its weights are of that "
        "model); start a new run instead");
  return config;
}

TrainOutcome train(const TrainConfig& input_config, const std::filesystem::path& run_dir,
                   const TrainerOptions& options) {
  g_stop_requested.store(false);
  g_stop_signals.store(0);
  TrainConfig config = input_config;
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("config: ") + e.what());
  }
  const std::optional<DistributedEnvironment>& distributed = options.distributed;
  const int world_size = distributed ? distributed->world_size : 1;
  // Rank 0 writes the run folder, logs, checkpoints and evaluations; the other ranks train.
  const bool writes_run = !distributed || distributed->rank == 0;
  if (config.solver.batch_size % world_size != 0)
    throw InputError(fmt::format(
        "solver.batch_size is {}, which {} processes cannot share evenly: it is the global batch "
        "(each process takes batch_size / WORLD_SIZE); make it a multiple of {}",
        config.solver.batch_size, world_size, world_size));
  check_run_directory(run_dir, options);
  std::ostream* console = writes_run ? options.console : nullptr;
  const bool interactive = console == &std::cerr && isatty(STDERR_FILENO);

  std::optional<CheckpointReader> checkpoint;
  if (options.resume) checkpoint.emplace(run_dir / "last.pt");
  const TrainProgress start = checkpoint ? checkpoint->contents().progress : TrainProgress{};
  std::vector<std::string> data_messages;  // logged once the run folder is ready

  // runtime.threads (0: the cores) is the node's: its ranks (LOCAL_WORLD_SIZE) share it out.
  const int node_threads = config.runtime.threads > 0 ? config.runtime.threads : available_cores();
  const int threads = configure_runtime(
      distributed ? std::max(1, node_threads / distributed->local_world_size) : node_threads,
      config.runtime.blas_threads);
  torch::Device device = resolve_device(config.runtime.device);
  // One GPU per rank: "cuda" means this node's GPU LOCAL_RANK.
  if (distributed && device.is_cuda() && !device.has_index())
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(distributed->local_rank));
  // Checked before anything is read or written: bf16 needs a CPU that has it (or CUDA), fp16
  // needs CUDA.
  const InferencePrecision precision = parse_inference_precision(
      training_precision_name(config.solver.precision), device, "solver.precision");

  auto train_set = open_split(config.data.train_json, config.data.train_images, "data.train_json",
                              config.data.strict, &data_messages);
  const auto& categories = train_set->dataset().categories();
  const int dataset_classes = static_cast<int>(train_set->num_classes());
  if (config.model.num_classes != 0 && config.model.num_classes != dataset_classes)
    throw InputError(
        fmt::format("model.num_classes is {} but data.train_json ({}) has {} categories ({}); set "
                    "model.num_classes={} or 0 (= from the dataset)",
                    config.model.num_classes, config.data.train_json, dataset_classes,
                    describe_categories(categories), dataset_classes));
  config.model.num_classes = dataset_classes;
  std::shared_ptr<const TrainingSet> val_set;
  if (!config.data.val_json.empty()) {
    val_set = open_split(config.data.val_json, config.data.val_images, "data.val_json",
                         config.data.strict, &data_messages);
    if (!same_categories(val_set->dataset().categories(), categories))
      throw InputError(
          fmt::format("data.val_json ({}): categories ({}) differ from data.train_json's ({})",
                      config.data.val_json, describe_categories(val_set->dataset().categories()),
                      describe_categories(categories)));
  }
  if (checkpoint && !same_categories(checkpoint->contents().categories, categories))
    throw InputError(fmt::format(
        "{}: trained on categories ({}), but data.train_json has ({})", checkpoint->path().string(),
        describe_categories(checkpoint->contents().categories), describe_categories(categories)));
  const std::string config_yaml = to_yaml(config);
  // Compared as resolved configs: a checkpoint written before a model key existed has the
  // key's default.
  const std::optional<TrainConfig> checkpoint_config =
      checkpoint ? std::optional<TrainConfig>(parse_train_config(checkpoint->contents().config_yaml,
                                                                 checkpoint->path().string()))
                 : std::nullopt;
  if (checkpoint_config && checkpoint_config->model.meta_arch != config.model.meta_arch)
    throw InputError(fmt::format("{}: a {} checkpoint, but model.meta_arch is {}",
                                 checkpoint->path().string(), checkpoint_config->model.meta_arch,
                                 config.model.meta_arch));
  if (checkpoint_config && model_section(to_yaml(*checkpoint_config)) != model_section(config_yaml))
    throw InputError(checkpoint->path().string() +
                     ": its model config differs from the run's config.yaml");

  // The model, from the seed and, in a new run, model.backbone_weights: built before anything
  // is written, so that a weights file that does not fit stops the run with the folder as it
  // was.
  torch::manual_seed(config.runtime.seed);
  const std::shared_ptr<MetaArchitectureImpl> model = build_meta_architecture(config.model);
  std::string backbone_weights_message;
  if (!config.model.backbone_weights.empty() && !checkpoint) {
    const std::string& file = config.model.backbone_weights;
    const BackboneWeightsReport report =
        load_backbone_weights(model->backbone_module(), read_state_dict(file), file);
    backbone_weights_message = fmt::format("model.backbone_weights {}: {}", file, describe(report));
  }

  // Joined once this rank's inputs are known to be good and before anything is written: a rank
  // whose inputs fail stops here, and the others stop at the join's timeout naming it.
  std::unique_ptr<DataParallelGroup> data_parallel;
  if (distributed)
    data_parallel = DataParallelGroup::join(
        *distributed, std::chrono::milliseconds(static_cast<std::int64_t>(
                          config.runtime.distributed_timeout_minutes * 60 * 1000)));

  if (writes_run) {
    prepare_run_directory(run_dir, options);
    write_file_atomically(run_dir / "config.yaml", config_yaml);
  }
  TrainingLog log(writes_run ? run_dir / "log.jsonl" : std::filesystem::path(),
                  options.resume ? start.iteration : -1, console, interactive);
  for (const std::string& message : data_messages) log.event(message);
  if (!backbone_weights_message.empty()) log.event(backbone_weights_message);

  model->to(device);
  std::unique_ptr<torch::optim::Optimizer> optimizer = make_optimizer(*model, config.solver);
  if (checkpoint) {
    checkpoint->load_model(*model);
    checkpoint->load_optimizer(*optimizer);
    checkpoint->restore_rng_state();
  }
  // Every rank built the same weights from the same seed or checkpoint; rank 0's are copied
  // anyway, so that nothing (a checkpoint read from another node's disk) can start them apart.
  if (data_parallel) data_parallel->broadcast_weights(*model);
  // After the broadcast: the collectives see the layout every rank starts from.
  const bool channels_last = use_channels_last(config.runtime.memory_format, precision, device);
  if (channels_last) convert_to_channels_last(*model);
  std::optional<WeightAverage> average;
  if (config.solver.ema_decay > 0) {
    average.emplace(*model, config.solver.ema_decay);
    if (checkpoint && !checkpoint->load_weight_average(*average))
      log.event(fmt::format(
          "{}: holds no weight average (solver.ema_decay was off when it was written): the "
          "average starts from the resumed weights",
          checkpoint->path().string()));
  }

  LoaderOptions loader_options;
  loader_options.batch_size = config.solver.batch_size / world_size;
  loader_options.shard_index = distributed ? distributed->rank : 0;
  loader_options.shard_count = world_size;
  loader_options.workers = config.data.workers;
  loader_options.seed = config.runtime.seed;
  loader_options.strict = config.data.strict;
  TrainAugmentOptions& augment = loader_options.augment;
  augment.input_height = augment.input_width = config.data.input_size;
  augment.scale_min = config.data.scale_min;
  augment.scale_max = config.data.scale_max;
  augment.scale_step = config.data.scale_step;
  augment.center_border_px = config.data.center_border_px;
  augment.flip_probability = config.data.flip_probability;
  augment.color_jitter = config.data.color_jitter;
  loader_options.target_encoder = model->make_target_encoder(config.data.max_objects);
  DataLoader loader(train_set, loader_options);
  const std::int64_t iters_per_epoch = loader.batches_per_epoch();
  const LrScheduleFunction schedule(config.solver, iters_per_epoch,
                                    config.runtime.time_limit_minutes * 60);
  const std::int64_t total_iters = schedule.total_iters();

  InferenceOptions inference;
  inference.test = config.test;
  inference.device = device;
  inference.workers = config.data.workers;
  // Evaluations keep the training's layout (an explicit contiguous stays contiguous).
  inference.memory_format =
      channels_last ? MemoryFormatChoice::kChannelsLast : MemoryFormatChoice::kContiguous;

  // fp16's narrow range needs the loss scaled (engine/gradients.h); bf16 has float32's range.
  std::optional<GradientScaler> scaler;
  if (precision == InferencePrecision::kFloat16) {
    scaler.emplace();
    if (start.loss_scale > 0) scaler->restore(start.loss_scale, start.loss_scale_finite_steps);
  }

  TrainProgress progress = start;
  const std::filesystem::path last_path = run_dir / "last.pt";
  StepValueQueue step_values;
  const auto note_checkpoint_kept = [&] {
    step_values.checkpoint_note =
        fmt::format("The last good checkpoint is {} (kept)", last_path.string());
  };
  step_values.checkpoint_note = "No checkpoint had been written yet";
  if (checkpoint) note_checkpoint_kept();
  if (!writes_run)
    step_values.checkpoint_note = fmt::format("(rank {}; rank 0 writes the checkpoints, in {})",
                                              distributed->rank, last_path.string());
  // On the CPU every step's values are read at once; on CUDA every log period (and before
  // checkpoints and evaluations, see flush_step_values).
  const bool read_every_step = !device.is_cuda();

  log.event(fmt::format(
      "{} {}: {} training images ({} per epoch in batches of {}), {} classes, {} on {} with {} "
      "threads{}, {}{}",
      options.resume ? "resuming" : "training", run_dir.string(), train_set->size(),
      iters_per_epoch * config.solver.batch_size, config.solver.batch_size, dataset_classes,
      fmt::format("{} ({})", model->method_name(), config.model.backbone), device.str(), threads,
      world_size > 1
          ? fmt::format(" in each of {} data-parallel processes ({} images each per step, "
                        "gradients averaged)",
                        world_size, config.solver.batch_size / world_size)
          : "",
      config.solver.schedule_length == ScheduleLength::kTimeLimit
          ? fmt::format("{} iterations or {:g} minutes of training, whichever comes first (the "
                        "cosine ends there)",
                        total_iters, config.runtime.time_limit_minutes)
          : fmt::format("{} iterations", total_iters),
      options.resume ? fmt::format(" (from iteration {})", progress.iteration) : ""));
  if (average)
    log.event(fmt::format(
        "weights averaged with decay {:g} (solver.ema_decay): evaluations and model_final.pt "
        "use the average",
        average->decay()));

  if (precision != InferencePrecision::kFloat32)
    log.event(fmt::format(
        "mixed precision (solver.precision {}): the network runs in {} under autocast; losses, "
        "gradients, weights and the optimizer in float32{}",
        training_precision_name(config.solver.precision), inference_precision_name(precision),
        scaler ? fmt::format(", the loss scaled (from {:g}) and overflowing steps skipped",
                             scaler->scale())
               : ""));
  if (channels_last)
    log.event(fmt::format("tensors channels-last (runtime.memory_format {})",
                          config.runtime.memory_format == MemoryFormatChoice::kAuto
                              ? "auto: bf16 on the CPU"
                              : "channels_last"));

  TrainOutcome outcome;
  outcome.status = TrainStatus::kFinished;
  TrainWindow window;
  std::deque<LossTerms> recent;  // the last 100 iterations, for metrics.json
  const bool clipping = config.solver.clip_grad_norm > 0;
  // Reads the queued step values into the log window and `recent`; throws on divergence.
  const auto flush_step_values = [&] {
    for (StepValueQueue::Step& step : step_values.read(clipping, data_parallel.get())) {
      recent.push_back(step.loss);
      if (recent.size() > 100) recent.pop_front();
      window.loss_sum += step.loss;
      if (step.skipped) {
        window.skipped_steps += 1;
      } else {
        window.grad_norm += step.grad_norm;
        window.grad_norm_steps += 1;
      }
    }
  };
  auto save_last = [&] {
    flush_step_values();  // no checkpoint of diverged weights
    if (!writes_run) return;
    if (scaler) {
      progress.loss_scale = scaler->scale();
      progress.loss_scale_finite_steps = scaler->finite_steps();
    }
    save_checkpoint(last_path, *model, optimizer.get(), config_yaml, categories, progress,
                    average ? &*average : nullptr);
    note_checkpoint_kept();
  };
  const double time_limit_seconds = config.runtime.time_limit_minutes * 60;
  const std::vector<torch::Tensor> parameters = model->parameters();
  // Training mode, with BatchNorm's statistics frozen when asked (again after each evaluation,
  // which puts every module back in training mode).
  const auto enter_training_mode = [&] { set_training_mode(*model, config.solver.batch_norm); };
  enter_training_mode();
  bool stop_agreed = false;
  loader.start_stream(progress.epoch, progress.batch_in_epoch);
  while (progress.iteration < total_iters) {
    // In a group every rank must leave the loop at the same iteration: the agreed request.
    if (data_parallel ? stop_agreed : g_stop_requested.load()) {
      outcome.status = TrainStatus::kInterrupted;
      break;
    }
    if (time_limit_seconds > 0 && progress.train_seconds >= time_limit_seconds) {
      outcome.status = TrainStatus::kTimeLimit;
      break;
    }
    const auto step_start = Clock::now();
    std::optional<Batch> batch = loader.next();
    if (!batch) throw std::logic_error("train: the loader's stream ended");
    const double data_wait = seconds_since(step_start);
    const double lr = schedule.at(progress.iteration, progress.train_seconds);
    for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);

    torch::Tensor images =
        torch::from_blob(batch->images.data(), {batch->size, 3, batch->height, batch->width})
            .to(device);
    if (channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
    MethodLosses losses;
    try {
      std::shared_ptr<const MethodOutputs> outputs;
      {
        // Only the network under autocast: the method's losses widen its outputs to float32.
        const AutocastScope autocast(precision, device);
        outputs = model->run_network(images);
      }
      losses = loss_or_divergence(*model, *outputs, *batch->targets, device);
    } catch (const TrainingDiverged& e) {
      throw TrainingDiverged(StepValueQueue::diverged_message(progress.iteration + 1, e.what(),
                                                              step_values.checkpoint_note));
    }
    optimizer->zero_grad();
    (scaler ? scaler->scaled(losses.total) : losses.total).backward();
    if (data_parallel) data_parallel->average_gradients(parameters);
    const bool gradients_finite = scaler ? scaler->unscale(parameters) : true;
    torch::Tensor grad_norm;
    if (clipping) grad_norm = clip_gradient_norm(parameters, config.solver.clip_grad_norm);
    // An fp16 overflow is the scaler's to handle: the step is skipped and the scale lowered.
    if (gradients_finite) optimizer->step();
    if (scaler) scaler->update(gradients_finite);
    if (average) average->update(*model);
    step_values.add(progress.iteration + 1, losses, grad_norm, !gradients_finite);
    if (read_every_step) flush_step_values();

    ++progress.iteration;
    if (batch->index + 1 >= iters_per_epoch) {
      progress.epoch = batch->epoch + 1;
      progress.batch_in_epoch = 0;
    } else {
      progress.epoch = batch->epoch;
      progress.batch_in_epoch = batch->index + 1;
    }
    const double step_seconds = seconds_since(step_start);
    progress.train_seconds += step_seconds;
    if (data_parallel) {
      // The ranks agree on the time (the schedule's lr and the time limit depend on it) and on
      // a stop request (Ctrl-C reaches one rank or all): the slowest rank's clock, any request.
      const std::vector<double> agreed = data_parallel->max_over_ranks(
          {progress.train_seconds, g_stop_requested.load() ? 1.0 : 0.0},
          "agreeing on the training time");
      progress.train_seconds = agreed[0];
      stop_agreed = agreed[1] > 0;
    }
    window.steps += 1;
    window.images += static_cast<std::int64_t>(batch->size) * world_size;
    window.step_seconds += step_seconds;
    window.data_wait_seconds += data_wait;

    const std::int64_t it = progress.iteration;
    if (it % config.runtime.log_every_iters == 0 || it == total_iters) {
      flush_step_values();
      TrainPosition position;
      position.iteration = it;
      position.total_iterations = total_iters;
      position.epoch = static_cast<double>(it) / static_cast<double>(iters_per_epoch);
      position.total_epochs = config.solver.epochs;
      position.lr = lr;
      position.train_seconds = progress.train_seconds;
      position.time_limit_seconds = time_limit_seconds;
      position.loss_scale = scaler ? scaler->scale() : 0;
      position.world_size = world_size;
      log.train_period(position, window, clipping);
      window.clear();
    }
    if (config.runtime.checkpoint_every_iters > 0 &&
        it % config.runtime.checkpoint_every_iters == 0 && it < total_iters)
      save_last();
    if (val_set && config.runtime.eval_every_iters > 0 &&
        it % config.runtime.eval_every_iters == 0 && it < total_iters) {
      flush_step_values();  // every rank: reading the losses is a collective
    }
    if (writes_run && val_set && config.runtime.eval_every_iters > 0 &&
        it % config.runtime.eval_every_iters == 0 && it < total_iters) {
      {
        const AveragedWeightsInModel averaged(average ? &*average : nullptr, *model);
        const EvaluationReport report = evaluate_model(*model, val_set, inference);
        log.evaluation(it, report.segm, report.bbox, report.run.images, report.run.seconds);
      }
      enter_training_mode();
    }
  }
  save_last();
  outcome.iteration = progress.iteration;
  outcome.train_seconds = progress.train_seconds;
  if (outcome.status == TrainStatus::kInterrupted) {
    log.event(
        fmt::format("interrupted at iteration {}/{}: checkpoint {} written; continue with "
                    "`centermask train --resume --out {}`",
                    progress.iteration, total_iters, last_path.string(), run_dir.string()));
    return outcome;
  }
  if (!writes_run) return outcome;  // rank 0 writes model_final.pt and evaluates
  // From here on the model holds what the run delivers: the averaged weights when averaging.
  const AveragedWeightsInModel averaged(average ? &*average : nullptr, *model);
  save_checkpoint(run_dir / "model_final.pt", *model, nullptr, config_yaml, categories, progress);
  log.event(fmt::format(
      "{} after {} iterations ({} of training): weights in {}",
      outcome.status == TrainStatus::kTimeLimit ? "time limit reached" : "training finished",
      progress.iteration, format_duration(progress.train_seconds),
      (run_dir / "model_final.pt").string()));
  if (val_set) {
    const EvaluationReport report = evaluate_model(*model, val_set, inference);
    log.evaluation(progress.iteration, report.segm, report.bbox, report.run.images,
                   report.run.seconds);
    save_metrics(run_dir / "metrics.json", progress.iteration, outcome.status, report, recent);
    outcome.mask_ap = report.segm.stats[0];
    outcome.box_ap = report.bbox.stats[0];
  }
  return outcome;
}

}  // namespace centermask
