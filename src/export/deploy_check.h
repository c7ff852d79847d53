#pragma once
// Checking an exported graph in a real runtime, for the export test and bench_export_masks:
// running it in ONNX Runtime (the npm package onnxruntime-node, through node and
// scripts/onnxruntime/run_model.js), and how close its detections, pasted by the deploy header,
// come to Predictor::predict's — each of ours matched to one of theirs of the same class with
// the score and box within tolerances, the matched masks compared pixel by pixel.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "centermask/deploy/exported_detections.h"
#include "centermask/export/network_export.h"
#include "centermask/structures/instances.h"

namespace centermask {

/// Where onnxruntime-node is: CENTERMASK_ONNXRUNTIME_NODE_PATH, or install-deps' folder.
inline std::string onnxruntime_node_path() {
  if (const char* path = std::getenv("CENTERMASK_ONNXRUNTIME_NODE_PATH")) return path;
  return "/usr/local/lib/centermask-onnxruntime/node_modules";
}

inline bool onnxruntime_available() {
  return std::system("command -v node > /dev/null 2>&1") == 0 &&
         std::filesystem::exists(std::filesystem::path(onnxruntime_node_path()) /
                                 "onnxruntime-node" / "package.json");
}

/// A raw little-endian file as a tensor; std::runtime_error when its size is not the shape's.
inline torch::Tensor read_raw(const std::filesystem::path& path,
                              const std::vector<std::int64_t>& shape, torch::Dtype dtype) {
  std::ifstream file(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  torch::Tensor t = torch::empty(shape, dtype);
  if (static_cast<std::size_t>(t.nbytes()) != bytes.size())
    throw std::runtime_error(
        fmt::format("{}: {} bytes, expected {}", path.string(), bytes.size(), t.nbytes()));
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

/// Runs `dir`/model.onnx in ONNX Runtime on `input` (float32) with run_model.js from
/// `source_dir` and reads back the outputs `report` lists (int64 for classes and count,
/// float32 otherwise). std::runtime_error when node fails.
inline std::map<std::string, torch::Tensor> run_onnxruntime(const std::filesystem::path& dir,
                                                            const torch::Tensor& input,
                                                            const ExportReport& report,
                                                            const std::string& source_dir) {
  {
    std::ofstream file(dir / "input.f32", std::ios::binary);
    file.write(static_cast<const char*>(input.data_ptr()), input.nbytes());
  }
  const std::string command = fmt::format(
      "NODE_PATH={} INPUT_SHAPE={} node {}/scripts/onnxruntime/run_model.js {} {} {} 1 2>&1",
      onnxruntime_node_path(), fmt::join(input.sizes(), ","), source_dir,
      (dir / "model.onnx").string(), (dir / "input.f32").string(), (dir / "ort").string());
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("ONNX Runtime failed: " + command);
  std::map<std::string, torch::Tensor> outputs;
  for (std::size_t i = 0; i < report.output_names.size(); ++i) {
    const std::string& name = report.output_names[i];
    const bool integral = name == "classes" || name == "count";
    outputs[name] = read_raw(dir / "ort" / (name + ".bin"), report.output_shapes[i],
                             integral ? torch::kInt64 : torch::kFloat32);
  }
  return outputs;
}

/// The deploy header's view of a decoded graph's outputs (image 0 of the batch).
inline deploy::ExportedOutputs exported_view(const std::map<std::string, torch::Tensor>& outputs,
                                             int mask_size) {
  deploy::ExportedOutputs view;
  view.boxes = outputs.at("boxes").data_ptr<float>();
  view.scores = outputs.at("scores").data_ptr<float>();
  view.classes = outputs.at("classes").data_ptr<std::int64_t>();
  view.count = outputs.at("count").data_ptr<std::int64_t>();
  view.top_k = static_cast<int>(outputs.at("boxes").size(1));
  if (outputs.count("polygons") != 0) {
    view.polygons = outputs.at("polygons").data_ptr<float>();
    view.polygon_points = static_cast<int>(outputs.at("polygons").size(2));
  }
  if (outputs.count("masks") != 0) {
    view.masks = outputs.at("masks").data_ptr<float>();
    view.mask_boxes = outputs.at("mask_boxes").data_ptr<float>();
    view.mask_size = mask_size;
  }
  return view;
}

struct MaskAgreement {
  double iou = 1;
  std::int64_t differing = 0;  ///< pixels in one mask only
  std::int64_t boundary = 0;   ///< pixels of ours with a 4-neighbour outside it
  std::int64_t area = 0;       ///< pixels of ours
};

inline MaskAgreement compare_masks(const MaskPatch& ours, const deploy::MaskPatch& theirs) {
  MaskAgreement out;
  std::int64_t both = 0, either = 0;
  const int x0 = std::min(ours.left, theirs.rect.x), y0 = std::min(ours.top, theirs.rect.y);
  const int x1 = std::max(ours.left + ours.width, theirs.rect.x + theirs.rect.width);
  const int y1 = std::max(ours.top + ours.height, theirs.rect.y + theirs.rect.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const bool a = ours.at_image(x, y) != 0;
      const bool b = theirs.rect.contains({x, y}) &&
                     theirs.pixels.at<std::uint8_t>(y - theirs.rect.y, x - theirs.rect.x) != 0;
      both += a && b;
      either += a || b;
      out.area += a;
      out.boundary += a && (!ours.at_image(x - 1, y) || !ours.at_image(x + 1, y) ||
                            !ours.at_image(x, y - 1) || !ours.at_image(x, y + 1));
    }
  out.iou = either == 0 ? 1.0 : static_cast<double>(both) / static_cast<double>(either);
  out.differing = either - both;
  return out;
}

/// For each of `ours`, the index of the unmatched detection of `theirs` with the same class,
/// the score within `score_tolerance` and every box side within `box_tolerance` pixels, or −1.
/// Equal scores may come in another order, hence the matching.
inline std::vector<int> match_detections(const std::vector<Instance>& ours,
                                         const std::vector<deploy::Detection>& theirs,
                                         float score_tolerance = 1e-4f,
                                         float box_tolerance = 0.5f) {
  std::vector<int> match(ours.size(), -1);
  std::vector<bool> taken(theirs.size(), false);
  for (std::size_t i = 0; i < ours.size(); ++i) {
    const Instance& object = ours[i];
    for (std::size_t j = 0; j < theirs.size(); ++j) {
      const cv::Rect2f& box = theirs[j].box;
      if (!taken[j] && theirs[j].class_index == object.class_index &&
          std::abs(theirs[j].score - object.score) <= score_tolerance &&
          std::abs(box.x - object.box.x0) <= box_tolerance &&
          std::abs(box.y - object.box.y0) <= box_tolerance &&
          std::abs(box.x + box.width - object.box.x1) <= box_tolerance &&
          std::abs(box.y + box.height - object.box.y1) <= box_tolerance) {
        taken[j] = true;
        match[i] = static_cast<int>(j);
        break;
      }
    }
  }
  return match;
}

}  // namespace centermask
