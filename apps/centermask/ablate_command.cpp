// `centermask ablate`: a method's ablation table on our data. Trains the same config once per
// variant of the method's (each method's registration, method_registry.h: CenterMask's Table 1c–1e
// and its saliency stride, PolarMask's Table 1a–1c: rays, ray loss, centerness) under the same
// budget, and prints mask AP per variant. Each variant is a run folder under --out; rerunning
// the command resumes unfinished ones and reuses finished ones.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/engine/config.h"
#include "centermask/engine/trainer.h"
#include "centermask/modeling/method_registry.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct AblateOptions {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string out_dir;
  std::vector<std::string> only;
};

struct VariantResult {
  std::string name;
  double stats_segm[3] = {-1, -1, -1};
  double box_ap = -1;
  double train_mask_loss = -1;
  double train_seconds = 0;
  std::int64_t iteration = 0;
};

// Reads a finished run's metrics.json (written by the trainer).
bool read_metrics(const std::filesystem::path& run_dir, VariantResult* result) {
  const std::filesystem::path path = run_dir / "metrics.json";
  if (!std::filesystem::exists(path)) return false;
  const std::string text = read_file(path);
  json::Reader reader(text, path.string());
  reader.begin_object();
  std::string_view key;
  while (reader.next_key(key)) {
    const std::string section(key);
    if (section == "iter") {
      result->iteration = reader.read_int64();
    } else if (section == "segm" || section == "bbox" || section == "train_loss") {
      reader.begin_object();
      while (reader.next_key(key)) {
        const std::string stat(key);
        const double value = reader.read_double();
        if (section == "train_loss" && stat == "mask") result->train_mask_loss = value;
        if (section == "bbox" && stat == "AP") result->box_ap = value;
        if (section == "segm" && stat == "AP") result->stats_segm[0] = value;
        if (section == "segm" && stat == "AP50") result->stats_segm[1] = value;
        if (section == "segm" && stat == "AP75") result->stats_segm[2] = value;
      }
    } else {
      reader.skip_value();
    }
  }
  return true;
}

int run_ablate(AblateOptions o) {
  install_training_signal_handlers();
  append_environment_overrides(&o.overrides);
  // The method is the config's (with the overrides): its variants are what is trained.
  const TrainConfig base = load_train_config(o.config_path, o.overrides);
  const std::string method = base.model.meta_arch;
  // Every variant trains the same number of epochs; a recipe with no epoch cap (epochs 0: the
  // time limit ends it) has none to give.
  if (base.solver.epochs <= 0)
    throw InputError(fmt::format(
        "{}: solver.epochs is 0 (no cap: time-limited training); ablate trains every variant "
        "for the same number of epochs: give --set solver.epochs=N",
        o.config_path));
  const std::vector<AblationVariant> variants = ablation_variants(method);
  for (const std::string& name : o.only)
    if (std::none_of(variants.begin(), variants.end(),
                     [&](const AblationVariant& v) { return v.name == name; })) {
      std::string known;
      for (const AblationVariant& v : variants) known += (known.empty() ? "" : ", ") + v.name;
      throw InputError(
          fmt::format("--only: {} has no variant '{}' (its variants: {})", method, name, known));
    }
  std::vector<VariantResult> results;
  for (const AblationVariant& variant : variants) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), variant.name) == o.only.end())
      continue;
    const std::filesystem::path run_dir = std::filesystem::path(o.out_dir) / variant.name;
    VariantResult result;
    result.name = variant.name;
    std::fprintf(stderr, "\n== %s %s: %s\n", method.c_str(), variant.name.c_str(),
                 variant.description.c_str());
    if (!read_metrics(run_dir, &result)) {
      // The budget is the config's epochs: a time limit would give each variant whatever the
      // machine's load allowed (a --set can still ask for one, with
      // solver.schedule_length=time_limit if its schedule should follow the clock).
      std::vector<std::string> overrides = {"runtime.time_limit_minutes=0",
                                            "solver.schedule_length=epochs"};
      overrides.insert(overrides.end(), o.overrides.begin(), o.overrides.end());
      overrides.insert(overrides.end(), variant.overrides.begin(), variant.overrides.end());
      TrainerOptions options;
      options.console = &std::cerr;
      options.resume = std::filesystem::exists(run_dir / "last.pt");
      const TrainConfig config = options.resume ? load_run_config(run_dir, {})
                                                : load_train_config(o.config_path, overrides);
      if (config.data.val_json.empty())
        throw InputError(o.config_path + ": data.val_json: the ablation needs a validation set");
      options.overwrite = !options.resume;
      const TrainOutcome outcome = train(config, run_dir, options);
      if (outcome.status == TrainStatus::kInterrupted) return 130;
      read_metrics(run_dir, &result);
      result.train_seconds = outcome.train_seconds;
    } else {
      std::fprintf(stderr, "finished earlier: %s\n", (run_dir / "metrics.json").c_str());
    }
    results.push_back(result);
  }
  // The mask loss is measured at ground-truth centers and boxes (as in training): it compares
  // mask quality alone, also when a short budget leaves detection, and so AP, weak.
  std::string table =
      "| variant | mask AP | AP50 | AP75 | box AP | train mask loss (last 100 it.) | iterations "
      "|\n|---|---|---|---|---|---|---|\n";
  for (const VariantResult& r : results)
    table += fmt::format("| {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {} |\n", r.name,
                         r.stats_segm[0], r.stats_segm[1], r.stats_segm[2], r.box_ap,
                         r.train_mask_loss, r.iteration);
  write_file_atomically(std::filesystem::path(o.out_dir) / "ablation.md", table);
  std::printf("\n%s\n(also in %s/ablation.md)\n", table.c_str(), o.out_dir.c_str());
  return 0;
}

}  // namespace

CommandRunner add_ablate_command(CLI::App& app) {
  auto options = std::make_shared<AblateOptions>();
  // Each registered method's variants, as its registration lists them.
  std::string per_method;
  for (const std::string& method : registered_method_names()) {
    std::string names;
    for (const AblationVariant& v : ablation_variants(method))
      names += (names.empty() ? "" : ", ") + v.name;
    if (!names.empty())
      per_method += fmt::format("{}{}: {}", per_method.empty() ? "" : "; ", method, names);
  }
  CLI::App* cmd = app.add_subcommand(
      "ablate", "train the config's method once per ablation variant and print a mask AP table (" +
                    per_method + ")");
  cmd->add_option("--config", options->config_path, "YAML config shared by every variant")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides, "override a config key, KEY=VALUE (repeatable)");
  cmd->add_option("--out", options->out_dir, "folder for one run folder per variant")->required();
  cmd->add_option("--only", options->only,
                  "comma-separated subset of the method's variants (see above)")
      ->delimiter(',');
  return [options]() { return run_ablate(*options); };
}

}  // namespace centermask::cli
