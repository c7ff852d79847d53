// `centermask convert`: a user's annotations (labelme, YOLO segmentation, instance-id PNGs) to
// one COCO JSON whose file names point at the images where they are, then a summary and the
// next commands to run.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"
#include "centermask/data/dataset_convert.h"
#include "commands.h"

namespace centermask::cli {
namespace {

struct ConvertOptions {
  std::string from;
  std::string to = "coco";
  std::string input;  // labelme folder
  std::string images;
  std::string labels;
  std::string masks;
  std::string classes;
  std::string class_map;
  std::string single_class = "object";
  int id_divisor = 0;
  std::int64_t ignore_value = -1;
  std::string out;
  // A validation split: every N-th image by file name to val_out.
  int val_every = 0;
  std::string val_out;
  bool overwrite = false;
};

std::string trim(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// Class names from classes.txt (one per line) or a YOLO data.yaml's `names:` (a list, or a
// map from class number to name).
std::vector<std::string> read_class_names(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  std::vector<std::string> names;
  if (ext == ".yaml" || ext == ".yml") {
    YAML::Node root;
    try {
      root = YAML::LoadFile(path.string());
    } catch (const YAML::Exception& e) {
      throw InputError(path.string() + ": " + e.what() + " (--classes)");
    }
    const YAML::Node list = root.IsMap() ? root["names"] : YAML::Node();
    if (!list || !(list.IsSequence() || list.IsMap()) || list.size() == 0)
      throw InputError(describe_input_problem(path.string(), "names",
                                              "expected a list of class names or a map 0: name"));
    try {
      for (std::size_t i = 0; i < list.size(); ++i) {
        const YAML::Node name = list.IsSequence() ? list[i] : list[static_cast<int>(i)];
        if (!name)
          throw InputError(describe_input_problem(path.string(), fmt::format("names.{}", i),
                                                  "is missing (classes are numbered from 0)"));
        names.push_back(name.as<std::string>());
      }
    } catch (const YAML::Exception& e) {
      throw InputError(describe_input_problem(path.string(), "names", e.what()));
    }
    return names;
  }
  std::ifstream in(path);
  if (!in) throw InputError(path.string() + ": cannot be read (--classes)");
  for (std::string line; std::getline(in, line);)
    if (!trim(line).empty()) names.push_back(trim(line));
  if (names.empty()) throw InputError(path.string() + ": no class names (one per line)");
  return names;
}

// {"26": "car", "24": "person"}: instance-id PNG class values to names.
std::map<std::int64_t, std::string> read_class_map(const std::filesystem::path& path) {
  const std::string text = read_file(path);
  json::Reader r(text, path.string());
  if (r.peek() != json::ValueType::kObject)
    r.fail_type("an object {\"VALUE\": \"class name\", ...}");
  r.begin_object();
  std::map<std::int64_t, std::string> map;
  std::string_view key;
  while (r.next_key(key)) {
    const std::string value_text(key);
    char* end = nullptr;
    const long long value = std::strtoll(value_text.c_str(), &end, 10);
    if (value_text.empty() || *end != '\0' || value <= 0)
      r.fail(fmt::format("key '{}' is not a positive class value", value_text));
    if (r.peek() != json::ValueType::kString) r.fail_type("a class name");
    map[value] = std::string(r.read_string());
  }
  r.expect_end();
  if (map.empty()) throw InputError(path.string() + ": the class map is empty");
  return map;
}

void require(const std::string& value, const char* option, const std::string& from) {
  if (value.empty()) throw InputError(fmt::format("convert --from {} needs {}", from, option));
}

int run_convert(const ConvertOptions& o) {
  if (o.to != "coco") throw InputError("convert: --to must be coco, got '" + o.to + "'");
  if (std::filesystem::exists(o.out) && !o.overwrite)
    throw InputError(o.out + ": exists; pass --overwrite to replace it");
  if ((o.val_every > 0) != !o.val_out.empty())
    throw InputError("convert: --val-every N and --val-out FILE go together");
  if (o.val_every == 1) throw InputError("convert: --val-every must be at least 2");
  if (!o.val_out.empty() && std::filesystem::exists(o.val_out) && !o.overwrite)
    throw InputError(o.val_out + ": exists; pass --overwrite to replace it");
  ConversionSummary summary;
  std::string images_folder;
  CocoDataset dataset;
  if (o.from == "labelme") {
    require(o.input, "--input (the folder of labelme .json files)", o.from);
    dataset = convert_labelme(
        o.input, o.classes.empty() ? std::vector<std::string>{} : read_class_names(o.classes),
        &summary);
    images_folder = o.input;
  } else if (o.from == "yolo-seg") {
    require(o.images, "--images", o.from);
    require(o.labels, "--labels", o.from);
    require(o.classes, "--classes (classes.txt or data.yaml)", o.from);
    dataset = convert_yolo_segmentation(o.images, o.labels, read_class_names(o.classes), &summary);
    images_folder = o.images;
  } else if (o.from == "instance-png") {
    require(o.images, "--images", o.from);
    require(o.masks, "--masks", o.from);
    InstancePngOptions options;
    options.id_divisor = o.id_divisor;
    options.ignore_value = o.ignore_value;
    options.single_class_name = o.single_class;
    if (!o.class_map.empty()) options.class_names_by_value = read_class_map(o.class_map);
    dataset = convert_instance_pngs(o.images, o.masks, options, &summary);
    images_folder = o.images;
  } else {
    throw InputError("convert: --from must be labelme, yolo-seg or instance-png, got '" + o.from +
                     "'");
  }
  const auto print_written = [](const std::string& path, const CocoDataset& written) {
    std::vector<std::size_t> per_class(written.num_classes(), 0);
    for (const CocoAnnotation& a : written.annotations())
      ++per_class[static_cast<std::size_t>(a.class_index)];
    std::size_t without_objects = 0;
    for (std::size_t i = 0; i < written.images().size(); ++i)
      without_objects += written.annotations_of_image(i).size() == 0 ? 1 : 0;
    std::printf("Wrote %s: %zu images, %zu instances, %zu classes (%zu images without objects)\n",
                path.c_str(), written.images().size(), written.annotations().size(),
                written.num_classes(), without_objects);
    std::string classes;
    for (std::size_t c = 0; c < per_class.size(); ++c)
      classes += fmt::format("{}{} {}", c ? ", " : "", written.categories()[c].name, per_class[c]);
    std::printf("  per class: %s\n", classes.c_str());
  };
  if (o.val_every > 0) {
    const DatasetSplit split = split_every_nth(dataset, o.val_every);
    split.train.save(o.out);
    split.val.save(o.val_out);
    print_written(o.out, split.train);
    print_written(o.val_out, split.val);
  } else {
    dataset.save(o.out);
    print_written(o.out, dataset);
  }
  for (const auto& [reason, count] : summary.skipped)
    std::printf("  skipped: %zu %s\n", count, reason.c_str());
  std::printf("Next: centermask check-data --gt %s --images %s\n", o.out.c_str(),
              images_folder.c_str());
  return 0;
}

}  // namespace

CommandRunner add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Convert labelme, YOLO segmentation or instance-id PNG annotations to COCO JSON");
  cmd->add_option("--from", o->from, "labelme, yolo-seg or instance-png")->required();
  cmd->add_option("--to", o->to, "coco (the only target)")->capture_default_str();
  cmd->add_option("--out", o->out, "COCO JSON to write")->required();
  cmd->add_option("--input", o->input,
                  "labelme: the folder of .json files (images where their imagePath says)");
  cmd->add_option("--images", o->images, "yolo-seg, instance-png: the images folder");
  cmd->add_option("--labels", o->labels, "yolo-seg: the folder of .txt labels (same stems)");
  cmd->add_option("--masks", o->masks,
                  "instance-png: the folder of instance-id PNGs (same stems; 0 = background)");
  cmd->add_option("--classes", o->classes,
                  "yolo-seg: classes.txt (one name per line) or data.yaml (names:); labelme: "
                  "the class order (default: labels sorted)");
  cmd->add_option("--class-map", o->class_map,
                  "instance-png: JSON {\"VALUE\": \"name\"} naming each class value");
  cmd->add_option("--class", o->single_class,
                  "instance-png without --class-map: the one class's name")
      ->capture_default_str();
  cmd->add_option("--id-divisor", o->id_divisor,
                  "instance-png: class = value / N (Cityscapes: 1000); values below N skipped")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--ignore-value", o->ignore_value,
                  "instance-png: a value marking pixels to ignore (e.g. 255)");
  cmd->add_option("--val-every", o->val_every,
                  "Split off a validation set: every N-th image by file name (N >= 2) with its "
                  "objects goes to --val-out, the rest to --out")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--val-out", o->val_out, "COCO JSON of the validation split (--val-every)");
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out (and --val-out) if it exists");
  return [o] { return run_convert(*o); };
}

}  // namespace centermask::cli
