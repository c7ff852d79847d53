// `centermask check-data`: one screen on a COCO dataset before training (what is in it, what
// is wrong with it, which input size its objects need), or --json for scripts.

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "centermask/common/error.h"
#include "centermask/common/json_reader.h"
#include "centermask/common/json_writer.h"
#include "centermask/data/data_check.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct CheckDataOptions {
  std::string gt;
  std::string images;
  std::vector<int> input_sizes = {256, 384, 512};
  bool headers_only = false;
  bool json = false;
  int threads = 0;
  // With a config, the ceiling at each input size is measured too (`upper-bound --sweep`).
  std::string config;
  std::vector<std::string> overrides;
};

// A ceiling at least this fraction of the best measured one does not bind: the smallest input
// size that reaches it is recommended, since every step up costs training images/s. Measured
// on 120 real photos of circuit boards: the CPU recipe reached mask AP 0.70 in 20 minutes
// at test size 320, under a ceiling of 0.93 there (0.98 at 512); a model is far from its
// ceiling long before a few percent of it matter (docs/results/real_photos.md).
constexpr double kCeilingFraction = 0.9;

// The test side that goes with a training input side: 1.25x, as the CPU recipes test (a
// training crop shows objects at 0.8-1.2 of their size), rounded to the network's stride 32.
int test_size_for(int input_size) {
  return std::max(32, static_cast<int>(std::lround(input_size * 1.25 / 32)) * 32);
}

struct CeilingRow {
  int train_input_size = 0;
  int test_input_size = 0;
  double segm_ap = 0, bbox_ap = 0, mean_mask_iou = 0;
};

// The program that computes the ceiling: the LibTorch build beside this one, else this program
// itself (which is the LibTorch build, or hands the command to it).
std::string ceiling_program() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/proc/self/exe";
  const std::filesystem::path torch_program = self.parent_path() / "centermask-torch";
  return std::filesystem::exists(torch_program, ec) ? torch_program.string() : self.string();
}

// Runs `upper-bound --sweep test.input_size=...` in a child process (the model lives in the
// LibTorch build; this command's library has none) and reads its --json rows. Its errors go
// to stderr as they are and end check-data with them.
std::vector<CeilingRow> measure_ceilings(const CheckDataOptions& o) {
  std::string sizes;
  for (const int size : o.input_sizes)
    sizes += (sizes.empty() ? "" : ",") + std::to_string(test_size_for(size));
  const std::string program = ceiling_program();
  std::vector<std::string> args = {
      program,  "upper-bound", "--gt",   o.gt,      "--images",
      o.images, "--config",    o.config, "--sweep", "test.input_size=" + sizes,
      "--json"};
  // The config's own training set need not exist here: the set checked stands in for it.
  args.insert(args.end(),
              {"--set", "data.train_json=" + o.gt, "--set", "data.train_images=" + o.images});
  for (const std::string& setting : o.overrides) args.insert(args.end(), {"--set", setting});
  if (o.threads > 0) args.insert(args.end(), {"--threads", std::to_string(o.threads)});
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int pipe_ends[2];
  if (::pipe(pipe_ends) != 0)
    throw InputError(
        fmt::format("check-data: cannot start the upper bound: {}", std::strerror(errno)));
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child < 0)
    throw InputError(
        fmt::format("check-data: cannot start the upper bound: {}", std::strerror(errno)));
  if (child == 0) {
    ::dup2(pipe_ends[1], STDOUT_FILENO);
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    ::execv(program.c_str(), argv.data());
    std::fprintf(stderr, "error: %s: %s\n", program.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(pipe_ends[1]);
  std::string output;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_ends[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw InputError(fmt::format(
        "check-data --config {}: the upper bound ({} upper-bound ...) failed{}; its message is "
        "above",
        o.config, program,
        WIFEXITED(status) ? fmt::format(" with exit code {}", WEXITSTATUS(status))
                          : std::string(" (killed by a signal)")));

  std::vector<CeilingRow> rows;
  json::Reader r(output, "the upper bound's --json output");
  r.begin_object();
  std::string_view key;
  while (r.next_key(key)) {
    if (key != "rows") {
      r.skip_value();
      continue;
    }
    r.begin_array();
    while (r.next_element()) {
      CeilingRow row;
      r.begin_object();
      std::string_view field;
      while (r.next_key(field)) {
        if (field == "input_size")
          row.test_input_size = static_cast<int>(r.read_int64());
        else if (field == "segm_ap")
          row.segm_ap = r.read_double();
        else if (field == "bbox_ap")
          row.bbox_ap = r.read_double();
        else if (field == "mean_mask_iou") {
          r.begin_object();
          std::string_view range;
          while (r.next_key(range)) {
            if (range == "all")
              row.mean_mask_iou = r.read_double();
            else
              r.skip_value();
          }
        } else {
          r.skip_value();
        }
      }
      rows.push_back(row);
    }
  }
  if (rows.size() != o.input_sizes.size())
    throw InputError(fmt::format("check-data: the upper bound gave {} rows for {} input sizes",
                                 rows.size(), o.input_sizes.size()));
  for (std::size_t s = 0; s < rows.size(); ++s) rows[s].train_input_size = o.input_sizes[s];
  return rows;
}

// The row of the smallest input size whose ceiling is at least kCeilingFraction of the best.
const CeilingRow& row_by_ceiling(const std::vector<CeilingRow>& rows) {
  double best = 0;
  for (const CeilingRow& row : rows) best = std::max(best, row.segm_ap);
  const CeilingRow* chosen = nullptr;
  for (const CeilingRow& row : rows)
    if (row.segm_ap >= kCeilingFraction * best &&
        (chosen == nullptr || row.test_input_size < chosen->test_input_size))
      chosen = &row;
  return *chosen;
}

std::string bar(std::int64_t count, std::int64_t largest) {
  const int width = largest > 0 ? static_cast<int>(std::lround(30.0 * count / largest)) : 0;
  return std::string(static_cast<std::size_t>(width), '#');
}

void print_histogram(const Histogram& h) {
  const std::int64_t largest = *std::max_element(h.counts.begin(), h.counts.end());
  for (std::size_t b = 0; b < h.labels.size(); ++b)
    std::printf("    %-10s %7lld %s\n", h.labels[b].c_str(), static_cast<long long>(h.counts[b]),
                bar(h.counts[b], largest).c_str());
}

void print_examples(const char* what, std::int64_t count,
                    const std::vector<std::string>& examples) {
  if (count == 0) return;
  std::printf("  %s: %lld, e.g.\n", what, static_cast<long long>(count));
  for (const std::string& e : examples) std::printf("    %s\n", e.c_str());
}

void write_histogram(json::Writer& w, const Histogram& h) {
  w.begin_object();
  for (std::size_t b = 0; b < h.labels.size(); ++b) w.key(h.labels[b]).value(h.counts[b]);
  w.end_object();
}

int run_check_data(const CheckDataOptions& o) {
  DataCheckOptions options;
  options.input_sizes = o.input_sizes;
  options.headers_only = o.headers_only;
  options.threads = o.threads;
  const DataCheckReport r = check_dataset(o.gt, o.images, options);
  const bool problems = r.num_missing + r.num_unreadable + r.num_size_mismatches > 0;
  // Missing or broken images would fail the upper bound too: the report names them first.
  const std::vector<CeilingRow> ceilings =
      !o.config.empty() && !problems ? measure_ceilings(o) : std::vector<CeilingRow>{};
  const CeilingRow* chosen = ceilings.empty() ? nullptr : &row_by_ceiling(ceilings);
  if (o.json) {
    std::string out;
    json::Writer w(out);
    w.begin_object();
    w.key("gt").value(o.gt).key("images").value(r.images).key("annotations").value(r.annotations);
    w.key("instances_per_class").begin_object();
    for (const auto& [name, count] : r.instances_per_class) w.key(name).value(count);
    w.end_object();
    w.key("instances_per_image");
    write_histogram(w, r.instances_per_image);
    w.key("images_over_100_objects").value(r.images_over_100_objects);
    w.key("crowd").value(r.crowd).key("without_mask").value(r.without_mask);
    w.key("degenerate").value(r.degenerate);
    w.key("object_sides").begin_object();
    for (std::size_t s = 0; s < o.input_sizes.size(); ++s) {
      w.key(std::to_string(o.input_sizes[s]));
      write_histogram(w, r.object_sides[s]);
    }
    w.end_object();
    w.key("fraction_under_8px").begin_object();
    for (std::size_t s = 0; s < o.input_sizes.size(); ++s)
      w.key(std::to_string(o.input_sizes[s])).value(r.fraction_under_8px[s]);
    w.end_object();
    w.key("missing_images").value(r.num_missing);
    w.key("unreadable_images").value(r.num_unreadable);
    w.key("size_mismatches").value(r.num_size_mismatches);
    w.key("load_warnings").begin_array();
    for (const std::string& line : r.load_warnings) w.value(line);
    w.end_array();
    w.key("recommended_input_size").value(static_cast<std::int64_t>(r.recommended_input_size));
    if (!ceilings.empty()) {
      w.key("config").value(o.config).key("ceiling").begin_array();
      for (const CeilingRow& row : ceilings)
        w.begin_object()
            .key("input_size")
            .value(row.train_input_size)
            .key("test_input_size")
            .value(row.test_input_size)
            .key("mask_ap")
            .value(row.segm_ap)
            .key("box_ap")
            .value(row.bbox_ap)
            .key("mean_mask_iou")
            .value(row.mean_mask_iou)
            .end_object();
      w.end_array();
      w.key("recommended_input_size_by_ceiling").value(chosen->train_input_size);
      w.key("recommended_test_input_size").value(chosen->test_input_size);
    }
    w.end_object();
    std::printf("%s\n", out.c_str());
    return problems ? 1 : 0;
  }
  std::printf("%s: %lld images, %lld annotations, %zu classes\n", o.gt.c_str(),
              static_cast<long long>(r.images), static_cast<long long>(r.annotations),
              r.instances_per_class.size());
  std::string classes;
  for (const auto& [name, count] : r.instances_per_class)
    classes += fmt::format("{}{} {}", classes.empty() ? "" : ", ", name, count);
  std::printf("  per class: %s\n", classes.c_str());
  std::printf("  objects per image:\n");
  print_histogram(r.instances_per_image);
  if (r.images_over_100_objects > 0)
    std::printf(
        "  %lld images hold more than 100 objects: COCO evaluation keeps 100 detections per "
        "image, so even perfect predictions score below AP 1 there\n",
        static_cast<long long>(r.images_over_100_objects));
  for (std::size_t s = 0; s < o.input_sizes.size(); ++s) {
    std::printf("  object side (sqrt of mask area) at input size %d (longer side scaled to it):\n",
                o.input_sizes[s]);
    print_histogram(r.object_sides[s]);
  }
  std::printf("  crowd %lld, without a mask %lld, degenerate (no pixel or box < 1 px) %lld\n",
              static_cast<long long>(r.crowd), static_cast<long long>(r.without_mask),
              static_cast<long long>(r.degenerate));
  for (const std::string& line : r.load_warnings) std::printf("  loader: %s\n", line.c_str());
  print_examples("missing images", r.num_missing, r.missing_images);
  print_examples("images that do not decode", r.num_unreadable, r.unreadable_images);
  print_examples("images whose size disagrees with the JSON", r.num_size_mismatches,
                 r.size_mismatches);
  if (!problems) std::printf("  every image is present, decodes and has the JSON's size\n");
  std::printf("Recommendation: %s\n", r.recommendation.c_str());
  if (ceilings.empty()) {
    std::printf(
        "The ceiling at each size (the model's own encoding of the ground truth, decoded): "
        "centermask check-data ... --config CONFIG, or centermask upper-bound --gt %s --images "
        "%s --config CONFIG --sweep test.input_size=%d,%d\n",
        o.gt.c_str(), o.images.c_str(), test_size_for(r.recommended_input_size),
        test_size_for(r.recommended_input_size + r.recommended_input_size / 2 / 32 * 32));
    return problems ? 1 : 0;
  }
  std::printf(
      "The ceiling of %s at each size, tested at 1.25x (its own encoding of the ground truth, "
      "decoded: no trained model scores above it):\n",
      o.config.c_str());
  std::printf("    data.input_size  test.input_size  mask AP  box AP  mean mask IoU\n");
  for (const CeilingRow& row : ceilings)
    std::printf("    %15d  %15d  %7.3f  %6.3f  %13.3f\n", row.train_input_size, row.test_input_size,
                row.segm_ap, row.bbox_ap, row.mean_mask_iou);
  std::printf(
      "Recommendation by the ceiling: data.input_size %d, test.input_size %d: the smallest whose "
      "ceiling is %.0f%% of the best measured or more\n",
      chosen->train_input_size, chosen->test_input_size, 100 * kCeilingFraction);
  return 0;
}

}  // namespace

CommandRunner add_check_data_command(CLI::App& app) {
  auto o = std::make_shared<CheckDataOptions>();
  CLI::App* cmd = app.add_subcommand(
      "check-data", "Look at a COCO dataset before training: contents, problems, input size");
  cmd->add_option("--gt", o->gt, "COCO annotations JSON")->required()->check(CLI::ExistingFile);
  cmd->add_option("--images", o->images, "Its images folder")->required();
  cmd->add_option("--input-size", o->input_sizes,
                  "Input sides to measure object sizes at (the first is the recipe's)")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_flag("--headers-only", o->headers_only,
                "Read each image's header (size) instead of decoding it (faster; corrupt pixel "
                "data goes unseen)");
  cmd->add_flag("--json", o->json, "One JSON object instead of the report");
  cmd->add_option("--threads", o->threads, "Worker threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--config", o->config,
                  "Also measure this model config's ceiling (upper bound) at each input size "
                  "(needs the LibTorch build)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", o->overrides, "Override a config value of --config, KEY=VALUE");
  return [o] { return run_check_data(*o); };
}

}  // namespace centermask::cli
