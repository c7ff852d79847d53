#pragma once
// A training run's configuration: YAML parsed once into typed option structs, which the
// modules take (never YAML). Every key is declared once, with its type and meaning, in
// src/engine/config.cpp; a key that is not declared is an error naming it, so a typo never
// silently trains with a default.
//
//   TrainConfig config = load_train_config("configs/centermask_demo_cpu.yaml",
//                                          {"solver.lr=1e-3", "data.train_json=my.json"});
//   std::string resolved = to_yaml(config);   // saved beside the run
//
// A file may start with `base: other.yaml` (relative to the file): the base is read first and
// this file's keys override it. Relative dataset paths are relative to the working directory.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "centermask/modeling/model_config.h"

namespace centermask {

struct DataConfig {
  std::string train_json;    ///< COCO instances JSON of the training split
  std::string train_images;  ///< folder that the training JSON's file_name values are relative to
  std::string val_json;      ///< validation split for periodic and final evaluation; "" = none
  std::string val_images;
  int input_size = 512;  ///< training input side (square), a multiple of 32
  double scale_min = 0.6;
  double scale_max = 1.3;
  double scale_step = 0.1;
  int center_border_px = 128;
  double flip_probability = 0.5;
  double copy_paste_probability = 0;  ///< simple copy-paste (transforms.h); 0 = off
  bool color_jitter = true;
  int max_objects = 128;  ///< per image (CenterNet's max_objs)
  int workers = 0;        ///< loader threads; 0 = all cores
  bool strict = false;    ///< every data problem is an error instead of a counted warning
};

enum class OptimizerKind { kAdam, kSgd };
enum class LrSchedule { kStep, kCosine };
/// Where the schedule ends: at the last iteration of `epochs`, or at the training-time budget
/// (runtime.time_limit_minutes) if that comes first, so that the cosine reaches its floor when
/// the budget is spent on whatever machine runs it.
enum class ScheduleLength { kEpochs, kTimeLimit };
/// The forward pass's arithmetic in training (engine/trainer.cpp): float32, or autocast to bf16
/// (CPUs with AVX-512 BF16 / AMX, CUDA) or fp16 with loss scaling (CUDA); kAuto: bf16 where
/// the hardware has it, fp32 elsewhere.
enum class TrainingPrecision { kFloat32, kBFloat16, kFloat16, kAuto };
/// BatchNorm in training: batch statistics (per process in data-parallel training, as PyTorch's
/// DDP without SyncBatchNorm), or frozen: the running statistics, not updated (fine-tuning
/// from pretrained weights with small per-process batches; and N processes then compute
/// exactly what one process with the whole batch does).
enum class BatchNormMode { kBatch, kFrozen };
/// How convolutions' weights and inputs lie in memory (engine/inference.h): PyTorch's default
/// (N, C, H, W) order, channels-last (N, H, W, C: what oneDNN's bf16 kernels work in), or auto:
/// channels-last where it was measured faster (bf16 on the CPU), the default elsewhere.
enum class MemoryFormatChoice { kAuto, kContiguous, kChannelsLast };

struct SolverConfig {
  OptimizerKind optimizer = OptimizerKind::kAdam;
  double lr = 2.5e-4;     ///< base learning rate (after warm-up)
  double momentum = 0.9;  ///< SGD only
  double weight_decay = 0.0;
  int batch_size = 32;
  double epochs = 130;  ///< length of the run; fractions allowed
  LrSchedule schedule = LrSchedule::kStep;
  std::vector<double> lr_step_epochs = {100, 120};  ///< step schedule: multiply by lr_gamma at each
  double lr_gamma = 0.1;
  double min_lr_factor = 0.0;  ///< cosine: the final lr as a fraction of the base
  /// kTimeLimit (cosine only): the cosine's progress is the larger of iterations done / total
  /// and training seconds / the time limit. A CPU budget is then spent annealed on a fast or a
  /// slow machine alike; the price is that the lr at an iteration depends on the machine's
  /// speed, so two runs (or a run and its resume) match only as closely as their timings.
  ScheduleLength schedule_length = ScheduleLength::kEpochs;
  int warmup_iters = 0;  ///< linear warm-up from warmup_factor · lr
  double warmup_factor = 0.001;
  double clip_grad_norm = 0.0;  ///< max global gradient L2 norm; 0 = no clipping
  /// Exponential moving average of the weights (engine/weight_average.h): its decay, 0 = off.
  /// When on, evaluations and model_final.pt use the averaged weights; last.pt keeps both.
  double ema_decay = 0.0;
  /// Mixed precision: the network runs under autocast in bf16 or fp16, the losses, gradients,
  /// weights and optimizer in float32. Whether the device can is checked when training starts.
  TrainingPrecision precision = TrainingPrecision::kFloat32;
  BatchNormMode batch_norm = BatchNormMode::kBatch;
};

struct TestConfig {
  int input_size = 512;  ///< test input side: images are fitted into it keeping aspect ratio
  int batch_size = 8;
  int top_k = 100;
  double mask_threshold = 0.4;
  double score_threshold = 0.0;  ///< for evaluation (COCO AP wants every detection)
  /// Scores × mask quality (CenterMaskInferenceOptions::mask_quality_scoring).
  bool mask_quality_scoring = false;
  /// CenterNet's flip test: the network also runs on the left–right mirror of each image and
  /// the two outputs are averaged (CenterMaskImpl::forward_flip_averaged); twice the work.
  bool flip_test = false;
};

struct RuntimeConfig {
  std::string device = "cpu";  ///< "cpu", "cuda" or "cuda:N"
  int threads = 0;             ///< intra-op threads; 0 = the cores available
  /// OpenBLAS's own threads (common/blas_threads.h): 1 (calls run on LibTorch's threads; 2x
  /// the training images/s of the CPU recipe on 2 cores), or 0 = the library's default.
  int blas_threads = 1;
  /// Training's layout: auto = channels-last when the network runs in bf16 on the CPU (the CPU
  /// recipe: 72 against 62 images/s on a Zen 4 core pair; fp32 gained nothing).
  MemoryFormatChoice memory_format = MemoryFormatChoice::kAuto;
  std::uint64_t seed = 0;
  /// Data-parallel training: how long a collective (or joining the group) may wait for the
  /// other ranks before the run stops naming the operation. Rank 0 evaluates while the others
  /// wait, so it must exceed an evaluation's time.
  double distributed_timeout_minutes = 30;
  int checkpoint_every_iters = 500;  ///< 0 = only at the end and on Ctrl-C
  int eval_every_iters = 0;          ///< 0 = only at the end
  int log_every_iters = 20;
  /// Stop training (checkpoint, then evaluate) after this much training time; 0 = no limit.
  /// The learning-rate schedule is not shortened unless solver.schedule_length is time_limit.
  double time_limit_minutes = 0;
};

struct TrainConfig {
  TrainConfig() { model.num_classes = 0; }
  ModelConfig model;  ///< model.num_classes 0 (default) = the training set's category count
  DataConfig data;
  SolverConfig solver;
  TestConfig test;
  RuntimeConfig runtime;
  /// Cross-field checks; std::invalid_argument naming the key.
  void validate() const;
};

/// Reads a YAML config (following `base:`), applies `overrides` ("key=value", value in YAML
/// syntax) and validates. InputError naming the file (or the override) and the key.
TrainConfig load_train_config(const std::filesystem::path& path,
                              const std::vector<std::string>& overrides = {});
/// The same from text in memory; `source_name` is used in messages and `base_dir` resolves
/// `base:`.
TrainConfig parse_train_config(const std::string& yaml_text, const std::string& source_name,
                               const std::vector<std::string>& overrides = {},
                               const std::filesystem::path& base_dir = ".");
/// The overrides in the environment variable CENTERMASK_SET (KEY=VALUE, separated by
/// spaces), which `train` and `ablate` apply after their --set: a short run of any documented
/// command without editing it (CENTERMASK_SET="solver.epochs=1 runtime.time_limit_minutes=0.2").
std::vector<std::string> environment_overrides();
/// Applies overrides to an existing config (e.g. a resumed run's saved one).
void apply_config_overrides(TrainConfig* config, const std::vector<std::string>& overrides);
/// Every key with its value, as YAML that parse_train_config reads back to the same config.
std::string to_yaml(const TrainConfig& config);
/// The config's method's own options (model.<meta_arch>.*) as (key relative to the method's
/// section, value as YAML writes it), in declaration order: what describes the model beyond
/// the shared keys, for reports.
std::vector<std::pair<std::string, std::string>> method_settings(const TrainConfig& config);
/// All keys, dotted, in declaration order, with their one-line meaning.
std::vector<std::pair<std::string, std::string>> config_keys();

std::string to_string(OptimizerKind kind);
std::string to_string(LrSchedule schedule);

}  // namespace centermask
