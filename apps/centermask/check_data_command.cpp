// `centermask check-data`: one screen on a COCO dataset before training (what is in it, what
// is wrong with it, which input size its objects need), or --json for scripts.

#include <fmt/format.h>

#include <cstdio>

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
};

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
  std::printf(
      "The ceiling at each size (the model's own encoding of the ground truth, decoded): "
      "centermask upper-bound --gt %s --images %s --config CONFIG --sweep "
      "test.input_size=%d,%d\n",
      o.gt.c_str(), o.images.c_str(), r.recommended_input_size,
      r.recommended_input_size + r.recommended_input_size / 2 / 32 * 32);
  return problems ? 1 : 0;
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
  return [o] { return run_check_data(*o); };
}

}  // namespace centermask::cli
