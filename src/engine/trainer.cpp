#include "centermask/engine/trainer.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <iostream>
#include <optional>
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
#include "engine/train_hooks.h"
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

namespace {

// What a run is made of, read and checked before the run folder is touched: a mistake in the
// config, the data or the checkpoint stops the run with the folder as it was.
struct PreparedRun {
  TrainConfig config;  ///< validated, model.num_classes from the data
  std::string config_yaml;
  std::optional<CheckpointReader> checkpoint;  ///< --resume
  TrainProgress start;
  std::shared_ptr<const TrainingSet> train_set, val_set;
  std::vector<std::string> data_messages;  ///< logged once the run folder is ready
  torch::Device device{torch::kCPU};
  InferencePrecision precision = InferencePrecision::kFloat32;
  int threads = 1;
  int world_size = 1;
  bool writes_run = true;  ///< rank 0 writes the folder, logs, checkpoints and evaluations
};

PreparedRun prepare_run(const TrainConfig& input_config, const std::filesystem::path& run_dir,
                        const TrainerOptions& options) {
  PreparedRun run;
  TrainConfig& config = run.config;
  config = input_config;
  try {
    config.validate();
  } catch (const std::invalid_argument& e) {
    throw InputError(std::string("config: ") + e.what());
  }
  const std::optional<DistributedEnvironment>& distributed = options.distributed;
  run.world_size = distributed ? distributed->world_size : 1;
  run.writes_run = !distributed || distributed->rank == 0;
  if (config.solver.batch_size % run.world_size != 0)
    throw InputError(fmt::format(
        "solver.batch_size is {}, which {} processes cannot share evenly: it is the global batch "
        "(each process takes batch_size / WORLD_SIZE); make it a multiple of {}",
        config.solver.batch_size, run.world_size, run.world_size));
  check_run_directory(run_dir, options);

  if (options.resume) run.checkpoint.emplace(run_dir / "last.pt");
  run.start = run.checkpoint ? run.checkpoint->contents().progress : TrainProgress{};

  // runtime.threads (0: the cores) is the node's: its ranks (LOCAL_WORLD_SIZE) share it out.
  const int node_threads = config.runtime.threads > 0 ? config.runtime.threads : available_cores();
  run.threads = configure_runtime(
      distributed ? std::max(1, node_threads / distributed->local_world_size) : node_threads,
      config.runtime.blas_threads);
  run.device = resolve_device(config.runtime.device);
  // One GPU per rank: "cuda" means this node's GPU LOCAL_RANK.
  if (distributed && run.device.is_cuda() && !run.device.has_index())
    run.device =
        torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(distributed->local_rank));
  // Checked before anything is read or written: bf16 needs a CPU that has it (or CUDA), fp16
  // needs CUDA.
  run.precision = parse_inference_precision(training_precision_name(config.solver.precision),
                                            run.device, "solver.precision");

  run.train_set = open_split(config.data.train_json, config.data.train_images, "data.train_json",
                             config.data.strict, &run.data_messages);
  const auto& categories = run.train_set->dataset().categories();
  const int dataset_classes = static_cast<int>(run.train_set->num_classes());
  if (config.model.num_classes != 0 && config.model.num_classes != dataset_classes)
    throw InputError(
        fmt::format("model.num_classes is {} but data.train_json ({}) has {} categories ({}); set "
                    "model.num_classes={} or 0 (= from the dataset)",
                    config.model.num_classes, config.data.train_json, dataset_classes,
                    describe_categories(categories), dataset_classes));
  config.model.num_classes = dataset_classes;
  if (!config.data.val_json.empty()) {
    run.val_set = open_split(config.data.val_json, config.data.val_images, "data.val_json",
                             config.data.strict, &run.data_messages);
    if (!same_categories(run.val_set->dataset().categories(), categories))
      throw InputError(fmt::format(
          "data.val_json ({}): categories ({}) differ from data.train_json's ({})",
          config.data.val_json, describe_categories(run.val_set->dataset().categories()),
          describe_categories(categories)));
  }
  run.config_yaml = to_yaml(config);
  if (!run.checkpoint) return run;

  const CheckpointReader& checkpoint = *run.checkpoint;
  if (!same_categories(checkpoint.contents().categories, categories))
    throw InputError(fmt::format(
        "{}: trained on categories ({}), but data.train_json has ({})", checkpoint.path().string(),
        describe_categories(checkpoint.contents().categories), describe_categories(categories)));
  // Compared as resolved configs: a checkpoint written before a model key existed has the
  // key's default.
  const TrainConfig checkpoint_config =
      parse_train_config(checkpoint.contents().config_yaml, checkpoint.path().string());
  if (checkpoint_config.model.meta_arch != config.model.meta_arch)
    throw InputError(fmt::format("{}: a {} checkpoint, but model.meta_arch is {}",
                                 checkpoint.path().string(), checkpoint_config.model.meta_arch,
                                 config.model.meta_arch));
  if (model_section(to_yaml(checkpoint_config)) != model_section(run.config_yaml))
    throw InputError(checkpoint.path().string() +
                     ": its model config differs from the run's config.yaml");
  return run;
}

// What the loop runs on. Built in one order (the model from the seed, then the optimizer, the
// checkpoint's weights and random state, the broadcast, the layout, the average, the loader's
// seed), which the resume and data-parallel tests hold to identical losses.
struct TrainingState {
  std::shared_ptr<MetaArchitectureImpl> model;
  std::vector<torch::Tensor> parameters;
  std::unique_ptr<DataParallelGroup> data_parallel;
  std::unique_ptr<TrainingLog> log;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  bool channels_last = false;
  std::optional<WeightAverage> average;
  std::optional<GradientScaler> scaler;  ///< fp16
  std::unique_ptr<DataLoader> loader;
  std::unique_ptr<LrScheduleFunction> schedule;
  std::int64_t iters_per_epoch = 1;
  InferenceOptions inference;  ///< for evaluations
  std::unique_ptr<StepRecord> record;
  TrainProgress progress;
  std::filesystem::path last_path;

  WeightAverage* average_or_null() { return average ? &*average : nullptr; }
};

std::unique_ptr<TrainingState> build_state(PreparedRun& run, const std::filesystem::path& run_dir,
                                           const TrainerOptions& options) {
  const TrainConfig& config = run.config;
  auto state = std::make_unique<TrainingState>();
  TrainingState& s = *state;
  // The model, from the seed and, in a new run, model.backbone_weights: built before anything
  // is written, so that a weights file that does not fit stops the run with the folder as it
  // was.
  torch::manual_seed(config.runtime.seed);
  s.model = build_meta_architecture(config.model);
  std::string backbone_weights_message;
  if (!config.model.backbone_weights.empty() && !run.checkpoint) {
    const std::string& file = config.model.backbone_weights;
    const BackboneWeightsReport report =
        load_backbone_weights(s.model->backbone_module(), read_state_dict(file), file);
    backbone_weights_message = fmt::format("model.backbone_weights {}: {}", file, describe(report));
  }

  // Joined once this rank's inputs are known to be good and before anything is written: a rank
  // whose inputs fail stops here, and the others stop at the join's timeout naming it.
  if (options.distributed)
    s.data_parallel = DataParallelGroup::join(
        *options.distributed, std::chrono::milliseconds(static_cast<std::int64_t>(
                                  config.runtime.distributed_timeout_minutes * 60 * 1000)));

  if (run.writes_run) {
    prepare_run_directory(run_dir, options);
    write_file_atomically(run_dir / "config.yaml", run.config_yaml);
  }
  std::ostream* console = run.writes_run ? options.console : nullptr;
  const bool interactive = console == &std::cerr && isatty(STDERR_FILENO);
  s.log = std::make_unique<TrainingLog>(
      run.writes_run ? run_dir / "log.jsonl" : std::filesystem::path(),
      options.resume ? run.start.iteration : -1, console, interactive);
  for (const std::string& message : run.data_messages) s.log->event(message);
  if (!backbone_weights_message.empty()) s.log->event(backbone_weights_message);

  s.model->to(run.device);
  s.optimizer = make_optimizer(*s.model, config.solver);
  if (run.checkpoint) {
    run.checkpoint->load_model(*s.model);
    run.checkpoint->load_optimizer(*s.optimizer);
    run.checkpoint->restore_rng_state();
  }
  // Every rank built the same weights from the same seed or checkpoint; rank 0's are copied
  // anyway, so that nothing (a checkpoint read from another node's disk) can start them apart.
  if (s.data_parallel) s.data_parallel->broadcast_weights(*s.model);
  // After the broadcast: the collectives see the layout every rank starts from.
  s.channels_last = use_channels_last(config.runtime.memory_format, run.precision, run.device);
  if (s.channels_last) convert_to_channels_last(*s.model);
  if (config.solver.ema_decay > 0) {
    s.average.emplace(*s.model, config.solver.ema_decay);
    if (run.checkpoint && !run.checkpoint->load_weight_average(*s.average))
      s.log->event(fmt::format(
          "{}: holds no weight average (solver.ema_decay was off when it was written): the "
          "average starts from the resumed weights",
          run.checkpoint->path().string()));
  }

  LoaderOptions loader_options;
  loader_options.batch_size = config.solver.batch_size / run.world_size;
  loader_options.shard_index = options.distributed ? options.distributed->rank : 0;
  loader_options.shard_count = run.world_size;
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
  augment.copy_paste_probability = config.data.copy_paste_probability;
  augment.color_jitter = config.data.color_jitter;
  loader_options.target_encoder = s.model->make_target_encoder(config.data.max_objects);
  s.loader = std::make_unique<DataLoader>(run.train_set, loader_options);
  s.iters_per_epoch = s.loader->batches_per_epoch();
  s.schedule = std::make_unique<LrScheduleFunction>(config.solver, s.iters_per_epoch,
                                                    config.runtime.time_limit_minutes * 60);

  s.inference.test = config.test;
  s.inference.device = run.device;
  s.inference.workers = config.data.workers;
  // Evaluations keep the training's layout (an explicit contiguous stays contiguous).
  s.inference.memory_format =
      s.channels_last ? MemoryFormatChoice::kChannelsLast : MemoryFormatChoice::kContiguous;

  // fp16's narrow range needs the loss scaled (engine/gradients.h); bf16 has float32's range.
  if (run.precision == InferencePrecision::kFloat16) {
    s.scaler.emplace();
    if (run.start.loss_scale > 0)
      s.scaler->restore(run.start.loss_scale, run.start.loss_scale_finite_steps);
  }

  s.progress = run.start;
  s.last_path = run_dir / "last.pt";
  // On the CPU every step's values are read at once; on CUDA every log period (and before
  // checkpoints and evaluations).
  s.record = std::make_unique<StepRecord>(config.solver.clip_grad_norm > 0, s.data_parallel.get(),
                                          !run.device.is_cuda());
  if (run.checkpoint)
    s.record->checkpoint_note =
        fmt::format("The last good checkpoint is {} (kept)", s.last_path.string());
  if (!run.writes_run)
    s.record->checkpoint_note = fmt::format("(rank {}; rank 0 writes the checkpoints, in {})",
                                            options.distributed->rank, s.last_path.string());
  s.parameters = s.model->parameters();
  return state;
}

// The run's first lines: what trains on what, for how long, and how.
void log_run_start(const PreparedRun& run, const TrainingState& s,
                   const std::filesystem::path& run_dir, const TrainerOptions& options) {
  const TrainConfig& config = run.config;
  const std::int64_t total_iters = s.schedule->total_iters();
  s.log->event(fmt::format(
      "{} {}: {} training images ({} per epoch in batches of {}), {} classes, {} on {} with {} "
      "threads{}, {}{}",
      options.resume ? "resuming" : "training", run_dir.string(), run.train_set->size(),
      s.iters_per_epoch * config.solver.batch_size, config.solver.batch_size,
      config.model.num_classes,
      fmt::format("{} ({})", s.model->method_name(), config.model.backbone), run.device.str(),
      run.threads,
      run.world_size > 1
          ? fmt::format(" in each of {} data-parallel processes ({} images each per step, "
                        "gradients averaged)",
                        run.world_size, config.solver.batch_size / run.world_size)
          : "",
      config.solver.schedule_length == ScheduleLength::kTimeLimit
          ? (s.schedule->has_iteration_cap()
                 ? fmt::format("{} iterations ({:g} epochs) or {:g} minutes of training, whichever "
                               "comes first (the cosine ends there; solver.epochs 0 removes the "
                               "epoch cap, so that the time limit binds on any dataset size)",
                               total_iters, config.solver.epochs, config.runtime.time_limit_minutes)
                 : fmt::format("{:g} minutes of training (solver.epochs 0: no epoch cap; the "
                               "cosine ends there)",
                               config.runtime.time_limit_minutes))
          : fmt::format("{} iterations", total_iters),
      options.resume ? fmt::format(" (from iteration {})", s.progress.iteration) : ""));
  if (s.average)
    s.log->event(fmt::format(
        "weights averaged with decay {:g} (solver.ema_decay): evaluations and model_final.pt "
        "use the average",
        s.average->decay()));
  if (run.precision != InferencePrecision::kFloat32)
    s.log->event(fmt::format(
        "mixed precision (solver.precision {}): the network runs in {} under autocast; losses, "
        "gradients, weights and the optimizer in float32{}",
        training_precision_name(config.solver.precision), inference_precision_name(run.precision),
        s.scaler ? fmt::format(", the loss scaled (from {:g}) and overflowing steps skipped",
                               s.scaler->scale())
                 : ""));
  if (s.channels_last)
    s.log->event(fmt::format("tensors channels-last (runtime.memory_format {})",
                             config.runtime.memory_format == MemoryFormatChoice::kAuto
                                 ? "auto: bf16 on the CPU"
                                 : "channels_last"));
}

// One optimizer step: a batch, the learning rate, forward (the network under autocast), the
// loss, backward, the ranks' gradient mean, fp16's unscaling, clipping, the step, the average;
// then the progress it made.
StepReport train_step(const PreparedRun& run, TrainingState& s, TrainProgress& progress) {
  const auto step_start = Clock::now();
  std::optional<Batch> batch = s.loader->next();
  if (!batch) throw std::logic_error("train: the loader's stream ended");
  StepReport report;
  report.data_wait_seconds = seconds_since(step_start);
  report.lr = s.schedule->at(progress.iteration, progress.train_seconds);
  for (auto& group : s.optimizer->param_groups()) group.options().set_lr(report.lr);

  torch::Tensor images =
      torch::from_blob(batch->images.data(), {batch->size, 3, batch->height, batch->width})
          .to(run.device);
  if (s.channels_last) images = images.contiguous(torch::MemoryFormat::ChannelsLast);
  MethodLosses losses;
  try {
    std::shared_ptr<const MethodOutputs> outputs;
    {
      // Only the network under autocast: the method's losses widen its outputs to float32.
      const AutocastScope autocast(run.precision, run.device);
      outputs = s.model->run_network(images);
    }
    losses = loss_or_divergence(*s.model, *outputs, *batch->targets, run.device);
  } catch (const TrainingDiverged& e) {
    throw TrainingDiverged(
        StepRecord::diverged_message(progress.iteration + 1, e.what(), s.record->checkpoint_note));
  }
  s.optimizer->zero_grad();
  (s.scaler ? s.scaler->scaled(losses.total) : losses.total).backward();
  if (s.data_parallel) s.data_parallel->average_gradients(s.parameters);
  const bool gradients_finite = s.scaler ? s.scaler->unscale(s.parameters) : true;
  torch::Tensor grad_norm;
  if (s.record->clipping())
    grad_norm = clip_gradient_norm(s.parameters, run.config.solver.clip_grad_norm);
  // An fp16 overflow is the scaler's to handle: the step is skipped and the scale lowered.
  if (gradients_finite) s.optimizer->step();
  if (s.scaler) s.scaler->update(gradients_finite);
  if (s.average) s.average->update(*s.model);
  s.record->add(progress.iteration + 1, losses, grad_norm, !gradients_finite);

  ++progress.iteration;
  if (batch->index + 1 >= s.iters_per_epoch) {
    progress.epoch = batch->epoch + 1;
    progress.batch_in_epoch = 0;
  } else {
    progress.epoch = batch->epoch;
    progress.batch_in_epoch = batch->index + 1;
  }
  report.step_seconds = seconds_since(step_start);
  progress.train_seconds += report.step_seconds;
  report.images = static_cast<std::int64_t>(batch->size) * run.world_size;
  return report;
}

// last.pt with everything a resume needs; the losses are read first, so that no checkpoint
// holds diverged weights.
void save_last_checkpoint(const PreparedRun& run, TrainingState& s) {
  s.record->read();
  if (!run.writes_run) return;
  if (s.scaler) {
    s.progress.loss_scale = s.scaler->scale();
    s.progress.loss_scale_finite_steps = s.scaler->finite_steps();
  }
  save_checkpoint(s.last_path, *s.model, s.optimizer.get(), run.config_yaml,
                  run.train_set->dataset().categories(), s.progress, s.average_or_null());
  s.record->checkpoint_note =
      fmt::format("The last good checkpoint is {} (kept)", s.last_path.string());
}

// Evaluates the weights the run would deliver (the average, when averaging) on the validation
// set, then puts the model back in training mode.
EvaluationReport evaluate_during_training(const PreparedRun& run, TrainingState& s) {
  EvaluationReport report;
  {
    const AveragedWeightsInModel averaged(s.average_or_null(), *s.model);
    report = evaluate_model(*s.model, run.val_set, s.inference);
  }
  set_training_mode(*s.model, run.config.solver.batch_norm);
  return report;
}

TrainHooks make_hooks(const PreparedRun& run, TrainingState& s) {
  const TrainConfig& config = run.config;
  const std::int64_t total_iters = s.schedule->total_iters();
  TrainHooks hooks;
  const auto requested = [] { return g_stop_requested.load(); };
  if (s.data_parallel)
    hooks.push_back(std::make_unique<RankAgreementHook>(*s.data_parallel, requested));
  else
    hooks.push_back(std::make_unique<StopRequestHook>(requested));
  hooks.push_back(std::make_unique<TimeBudgetHook>(config.runtime.time_limit_minutes * 60));
  LogSchedule log_schedule;
  log_schedule.every_iters = config.runtime.log_every_iters;
  log_schedule.total_iters = total_iters;
  log_schedule.iters_per_epoch = s.iters_per_epoch;
  log_schedule.total_epochs = config.solver.epochs;
  log_schedule.time_limit_seconds = config.runtime.time_limit_minutes * 60;
  log_schedule.world_size = run.world_size;
  std::function<double()> loss_scale;
  if (s.scaler) loss_scale = [&s] { return s.scaler->scale(); };
  hooks.push_back(std::make_unique<LoggingHook>(*s.log, *s.record, log_schedule, loss_scale));
  hooks.push_back(std::make_unique<CheckpointHook>(config.runtime.checkpoint_every_iters,
                                                   total_iters,
                                                   [&run, &s] { save_last_checkpoint(run, s); }));
  if (run.val_set) {
    std::function<void(std::int64_t)> evaluate;
    if (run.writes_run)
      evaluate = [&run, &s](std::int64_t iteration) {
        const EvaluationReport report = evaluate_during_training(run, s);
        s.log->evaluation(iteration, report.segm, report.bbox, report.run.images,
                          report.run.seconds);
      };
    hooks.push_back(std::make_unique<EvaluationHook>(
        config.runtime.eval_every_iters, total_iters, [&s] { s.record->read(); }, evaluate));
  }
  return hooks;
}

// After the loop: last.pt always; then, unless interrupted, model_final.pt (the averaged
// weights when averaging) and the final evaluation and metrics.json on rank 0.
TrainOutcome finish_run(const PreparedRun& run, TrainingState& s,
                        const std::filesystem::path& run_dir, TrainStatus status) {
  save_last_checkpoint(run, s);
  TrainOutcome outcome;
  outcome.status = status;
  outcome.iteration = s.progress.iteration;
  outcome.train_seconds = s.progress.train_seconds;
  if (status == TrainStatus::kInterrupted) {
    s.log->event(fmt::format(
        "interrupted at iteration {}/{}: checkpoint {} written; continue with "
        "`centermask train --resume --out {}`",
        s.progress.iteration, s.schedule->total_iters(), s.last_path.string(), run_dir.string()));
    return outcome;
  }
  if (!run.writes_run) return outcome;  // rank 0 writes model_final.pt and evaluates
  // From here on the model holds what the run delivers: the averaged weights when averaging.
  const AveragedWeightsInModel averaged(s.average_or_null(), *s.model);
  save_checkpoint(run_dir / "model_final.pt", *s.model, nullptr, run.config_yaml,
                  run.train_set->dataset().categories(), s.progress);
  s.log->event(
      fmt::format("{} after {} iterations ({} of training): weights in {}",
                  status == TrainStatus::kTimeLimit ? "time limit reached" : "training finished",
                  s.progress.iteration, format_duration(s.progress.train_seconds),
                  (run_dir / "model_final.pt").string()));
  // A recipe sized in minutes that the epoch cap ended early (a small dataset): say so, since
  // the budget the user chose was not what bound.
  const double limit_seconds = run.config.runtime.time_limit_minutes * 60;
  if (status == TrainStatus::kFinished &&
      run.config.solver.schedule_length == ScheduleLength::kTimeLimit && limit_seconds > 0 &&
      s.progress.train_seconds < 0.9 * limit_seconds) {
    s.log->event(fmt::format(
        "the epoch cap (solver.epochs {:g}) ended training after {} of the {} time limit: "
        "on a dataset this size give solver.epochs 0 (no cap) to train for the whole budget",
        run.config.solver.epochs, format_duration(s.progress.train_seconds),
        format_duration(limit_seconds)));
  }
  if (run.val_set) {
    const EvaluationReport report = evaluate_model(*s.model, run.val_set, s.inference);
    s.log->evaluation(s.progress.iteration, report.segm, report.bbox, report.run.images,
                      report.run.seconds);
    save_metrics(run_dir / "metrics.json", s.progress.iteration, status, report,
                 s.record->recent());
    outcome.mask_ap = report.segm.stats[0];
    outcome.box_ap = report.bbox.stats[0];
  }
  return outcome;
}

}  // namespace

TrainOutcome train(const TrainConfig& config, const std::filesystem::path& run_dir,
                   const TrainerOptions& options) {
  g_stop_requested.store(false);
  g_stop_signals.store(0);
  PreparedRun run = prepare_run(config, run_dir, options);
  const std::unique_ptr<TrainingState> state = build_state(run, run_dir, options);
  log_run_start(run, *state, run_dir, options);
  const TrainHooks hooks = make_hooks(run, *state);
  set_training_mode(*state->model, run.config.solver.batch_norm);
  state->loader->start_stream(state->progress.epoch, state->progress.batch_in_epoch);
  const TrainStatus status = run_train_loop(
      state->progress, state->schedule->total_iters(),
      [&](TrainProgress& progress) { return train_step(run, *state, progress); }, hooks);
  return finish_run(run, *state, run_dir, status);
}

}  // namespace centermask
