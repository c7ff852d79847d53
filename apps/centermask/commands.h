#pragma once
// Each subcommand registers itself on the root app and returns the function that runs it.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "centermask/common/error.h"
#include "centermask/data/training_set.h"
#include "centermask/predictor.h"
#include "command_runner.h"

namespace centermask::cli {

/// The whole program: parses argv (argv[1] the subcommand) and runs it; returns the exit code
/// (0 success, 1 unusable input, 2 bad command line).

/// What the commands that run a trained model (predict, test) share.
struct ModelRunOptions {
  std::string weights;
  std::string device = "cpu";
  int input_size = 0;  ///< 0 = the model's test.input_size
  int threads = 0;     ///< 0 = all cores
  /// Cut on the assembled mask probability; ≤ 0 = the model's test.mask_threshold.
  double mask_threshold = 0;
  /// "on" / "off": scores × mask quality; empty = the model's test.mask_quality_scoring.
  std::string mask_quality_scoring;
  /// "on" / "off": CenterNet's flip test; empty = the model's test.flip_test.
  std::string flip_test;
  /// fp32, bf16, fp16: the network's precision (engine/inference.h).
  std::string dtype = "fp32";
};

/// Appends CENTERMASK_SET's overrides (config.h: environment_overrides) after the command
/// line's, saying so on stderr: a shortened run should not pass for a full one.
inline void append_environment_overrides(std::vector<std::string>* overrides) {
  const std::vector<std::string> from_environment = environment_overrides();
  if (from_environment.empty()) return;
  std::string listed;
  for (const std::string& item : from_environment) listed += " --set " + item;
  std::fprintf(stderr, "CENTERMASK_SET: also%s\n", listed.c_str());
  overrides->insert(overrides->end(), from_environment.begin(), from_environment.end());
}

inline void add_model_run_options(CLI::App* cmd, ModelRunOptions* o) {
  cmd->add_option("--weights", o->weights, "checkpoint (model_final.pt or last.pt)")->required();
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N");
  cmd->add_option("--input-size", o->input_size,
                  "test input side (multiple of 32; default: the model's test.input_size)");
  cmd->add_option("--threads", o->threads, "intra-op threads, 0 = all cores")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--mask-thr", o->mask_threshold,
                  "cut on the mask probability, in (0, 1) (default: the model's "
                  "test.mask_threshold)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              const double v = std::stod(text);
              if (v > 0 && v < 1) return "";
            } catch (const std::exception&) {
            }
            return "must be a probability strictly between 0 and 1, got " + text;
          },
          "in (0, 1)"));
  cmd->add_option("--mask-quality-scoring", o->mask_quality_scoring,
                  "on: each score × its mask's mean probability over the kept pixels; off: the "
                  "heatmap peak alone (default: the model's test.mask_quality_scoring)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--flip-test", o->flip_test,
                  "on: also run the network on each image's left-right mirror and average the "
                  "outputs (twice the network's time); off: one pass (default: the model's "
                  "test.flip_test)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--dtype", o->dtype,
                  "fp32; bf16 (a CPU with AVX-512 BF16 or AMX, or a GPU); fp16 (GPU): "
                  "convolutions and products under autocast; auto: bf16 where the hardware has "
                  "it, else fp32");
}

/// The Predictor's options from the command line (what is not given stays the model's).
inline PredictorOptions predictor_options(const ModelRunOptions& o) {
  PredictorOptions options;
  options.device = o.device;
  options.dtype = o.dtype;
  if (o.input_size > 0) options.input_size = o.input_size;
  if (o.mask_threshold > 0) options.mask_threshold = o.mask_threshold;
  if (!o.mask_quality_scoring.empty())
    options.mask_quality_scoring = o.mask_quality_scoring == "on";
  if (!o.flip_test.empty()) options.flip_test = o.flip_test == "on";
  return options;
}

/// A ground-truth COCO file and its image folder as a checked set for evaluation: load
/// warnings printed once to stderr, InputError when no image is usable (test, upper-bound).
inline std::shared_ptr<const TrainingSet> open_evaluation_set(const std::string& gt_path,
                                                              const std::string& images,
                                                              bool strict) {
  CocoLoadReport report;
  auto gt = std::make_shared<const CocoDataset>(CocoDataset::load(gt_path, {strict}, &report));
  TrainingSetOptions set_options;
  set_options.strict = strict;
  auto set = TrainingSet::open(gt, images, set_options, &report);
  for (const std::string& line : report.lines())
    std::fprintf(stderr, "warning: %s: %s\n", gt_path.c_str(), line.c_str());
  if (set->size() == 0)
    throw InputError(fmt::format("{}: no usable images in {}", gt_path, images));
  return set;
}

CommandRunner add_synth_command(CLI::App& app);
CommandRunner add_show_command(CLI::App& app);
CommandRunner add_convert_command(CLI::App& app);
CommandRunner add_check_data_command(CLI::App& app);
#ifdef CENTERMASK_WITH_TORCH
CommandRunner add_train_command(CLI::App& app);
CommandRunner add_predict_command(CLI::App& app);
CommandRunner add_test_command(CLI::App& app);
CommandRunner add_ablate_command(CLI::App& app);
CommandRunner add_upper_bound_command(CLI::App& app);
CommandRunner add_bench_command(CLI::App& app);
CommandRunner add_export_weights_command(CLI::App& app);
CommandRunner add_export_command(CLI::App& app);
CommandRunner add_report_command(CLI::App& app);
#endif

}  // namespace centermask::cli
