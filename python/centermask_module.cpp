// The Python package: a trained model and the COCO evaluator called from Python, through the
// same C++ as the command line (centermask/predictor.h, evaluation/coco_evaluator.h), so a
// Predictor's detections are `centermask predict`'s and evaluate() is `centermask eval --json
// --per-class`.
//
//   import centermask
//   predictor = centermask.Predictor("runs/demo/model_final.pt")
//   for d in predictor.predict(image_bgr):   # H × W × 3 uint8, as cv2.imread gives
//       d["category_name"], d["score"], d["bbox"], d["mask"]   # mask: H × W bool array
//   centermask.evaluate("val.json", "results.json", iou="segm")["stats"]

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "centermask/common/error.h"
#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"
#include "centermask/data/image_io.h"
#include "centermask/deploy/exported_detections.h"
#include "centermask/engine/trainer.h"
#include "centermask/evaluation/coco_evaluator.h"
#include "centermask/predictor.h"

namespace py = pybind11;

namespace centermask::python {
namespace {

/// A checkpoint with the inference options `centermask predict` would use for the same
/// arguments: the model's own test settings, then the caller's overrides.
class PythonPredictor {
 public:
  PythonPredictor(const std::string& weights, const std::string& device, const std::string& dtype,
                  int threads, double score_threshold, int input_size, double mask_threshold,
                  std::optional<bool> flip_test, std::optional<bool> mask_quality_scoring)
      : predictor_(weights, options(device, dtype, score_threshold, input_size, mask_threshold,
                                    flip_test, mask_quality_scoring, threads)) {}

  py::list predict(const py::array& image) {
    const cv::Mat bgr = borrow_bgr_image(image);
    std::vector<Instance> instances;
    {
      // The network runs on LibTorch's threads: other Python threads go on meanwhile.
      py::gil_scoped_release release;
      instances = predictor_.predict(bgr);
    }
    py::list detections;
    for (const Instance& d : instances) detections.append(detection_dict(d, bgr.rows, bgr.cols));
    return detections;
  }

  py::list categories() const {
    py::list out;
    for (const CocoCategory& c : predictor_.categories()) {
      py::dict category;
      category["id"] = c.id;
      category["name"] = c.name;
      category["supercategory"] = c.supercategory;
      out.append(category);
    }
    return out;
  }

  py::dict test_settings() const {
    py::dict settings;
    const TestConfig& test = predictor_.config().test;
    settings["input_size"] = test.input_size;
    settings["score_threshold"] = test.score_threshold;
    settings["mask_threshold"] = test.mask_threshold;
    settings["flip_test"] = test.flip_test;
    settings["mask_quality_scoring"] = test.mask_quality_scoring;
    settings["dtype"] = predictor_.dtype_name();
    settings["device"] = predictor_.device_name();
    return settings;
  }

 private:
  /// The array as an OpenCV image without copying; ValueError (InputError) naming what was
  /// expected for anything but H × W × 3 uint8.
  static cv::Mat borrow_bgr_image(const py::array& image) {
    if (image.ndim() != 3 || image.shape(2) != 3)
      throw InputError("image: expected an H x W x 3 array (BGR, as cv2.imread gives), got shape " +
                       shape_text(image));
    if (!py::dtype::of<std::uint8_t>().is(image.dtype()))
      throw InputError("image: expected dtype uint8 (8-bit BGR), got " +
                       std::string(py::str(image.dtype())));
    if (image.shape(0) == 0 || image.shape(1) == 0)
      throw InputError("image: empty (shape " + shape_text(image) + ")");
    // A strided view (a crop, a channel flip) is copied into one contiguous block.
    const auto contiguous =
        py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(image);
    const cv::Mat view(static_cast<int>(contiguous.shape(0)), static_cast<int>(contiguous.shape(1)),
                       CV_8UC3, const_cast<std::uint8_t*>(contiguous.data()));
    return view.clone();  // owned: the array may be released while the network runs
  }

  static std::string shape_text(const py::array& a) {
    std::string text = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) text += (i ? ", " : "") + std::to_string(a.shape(i));
    return text + (a.ndim() == 1 ? ",)" : ")");
  }

  py::dict detection_dict(const Instance& d, int height, int width) const {
    const CocoCategory& category =
        predictor_.categories().at(static_cast<std::size_t>(d.class_index));
    py::dict out;
    out["category_id"] = category.id;
    out["category_name"] = category.name;
    out["score"] = static_cast<double>(d.score);
    out["bbox"] = py::make_tuple(d.box.x0, d.box.y0, d.box.width(), d.box.height());
    // The patch over the box spread onto the full image, clipped to it.
    py::array_t<bool> mask({static_cast<py::ssize_t>(height), static_cast<py::ssize_t>(width)});
    bool* pixels = mask.mutable_data();
    std::fill(pixels, pixels + static_cast<std::size_t>(height) * width, false);
    if (d.has_mask) {
      const MaskPatch& p = d.mask;
      const int x0 = std::max(0, p.left), x1 = std::min(width, p.left + p.width);
      const int y0 = std::max(0, p.top), y1 = std::min(height, p.top + p.height);
      for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
          pixels[static_cast<std::size_t>(y) * width + x] =
              p.pixels[static_cast<std::size_t>(y - p.top) * p.width + (x - p.left)] != 0;
    }
    out["mask"] = mask;
    return out;
  }

  // The Python arguments as the Predictor's options: 0 means the model's own, as in the CLI.
  static PredictorOptions options(const std::string& device, const std::string& dtype,
                                  double score_threshold, int input_size, double mask_threshold,
                                  std::optional<bool> flip_test,
                                  std::optional<bool> mask_quality_scoring, int threads) {
    if (!(mask_threshold >= 0 && mask_threshold < 1))
      throw InputError("mask_threshold must be in (0, 1) (0 = the model's), got " +
                       std::to_string(mask_threshold));
    if (input_size < 0 || input_size % 32 != 0)
      throw InputError("input_size must be a multiple of 32 (0 = the model's), got " +
                       std::to_string(input_size));
    if (!(score_threshold >= 0 && score_threshold <= 1))
      throw InputError("score_threshold must be in [0, 1], got " + std::to_string(score_threshold));
    configure_runtime(threads);
    PredictorOptions o;
    o.device = device;
    o.dtype = dtype;
    o.score_threshold = score_threshold;
    if (input_size > 0) o.input_size = input_size;
    if (mask_threshold > 0) o.mask_threshold = mask_threshold;
    o.flip_test = flip_test;
    o.mask_quality_scoring = mask_quality_scoring;
    return o;
  }

  Predictor predictor_;
};

py::dict evaluate(const std::string& gt_json, const std::string& results_json,
                  const std::string& iou, int threads, bool lvis) {
  if (iou != "segm" && iou != "bbox")
    throw InputError("iou: expected \"segm\" or \"bbox\", got \"" + iou + "\"");
  CocoEvalResult result;
  std::size_t images = 0, detections = 0;
  {
    py::gil_scoped_release release;
    const CocoDataset gt = CocoDataset::load(gt_json, CocoLoadOptions{});
    const CocoResults results = CocoResults::load(results_json, gt);
    const IouType iou_type = iou == "bbox" ? IouType::kBbox : IouType::kSegm;
    CocoEvalParams params = lvis ? lvis_eval_params(iou_type) : CocoEvalParams{};
    params.iou_type = iou_type;
    params.num_threads = threads;
    result = evaluate_coco(gt, results, params);
    images = gt.images().size();
    detections = results.size();
  }
  py::dict out;
  out["iou_type"] = iou_type_name(result.iou_type);
  out["num_images"] = images;
  out["num_detections"] = detections;
  out["rules"] = lvis ? "lvis" : "coco";
  if (lvis) {
    out["stats"] = result.lvis_stats;
    out["names"] = std::vector<std::string>(kLvisStatNames, kLvisStatNames + kNumLvisStats);
  } else {
    out["stats"] = result.stats;
  }
  py::dict per_class;
  for (const auto& [category_id, ap] : result.per_category_ap())
    per_class[py::int_(category_id)] = ap;
  out["per_class"] = per_class;
  return out;
}

py::array read_image(const std::string& path) {
  const cv::Mat bgr = read_image_bgr(path);
  py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(bgr.rows),
                                 static_cast<py::ssize_t>(bgr.cols), static_cast<py::ssize_t>(3)});
  for (int y = 0; y < bgr.rows; ++y)
    std::memcpy(out.mutable_data(y), bgr.ptr(y), static_cast<std::size_t>(bgr.cols) * 3);
  return out;
}

// ---- Exported graphs (deploy/exported_detections.h) -------------------------------------

cv::Mat borrowed_bgr(const py::array& image) {
  if (image.ndim() != 3 || image.shape(2) != 3 || !py::dtype::of<std::uint8_t>().is(image.dtype()))
    throw InputError("image: expected an H x W x 3 uint8 array (BGR, as cv2.imread gives)");
  if (image.shape(0) == 0 || image.shape(1) == 0) throw InputError("image: empty");
  const auto contiguous =
      py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>::ensure(image);
  return cv::Mat(static_cast<int>(contiguous.shape(0)), static_cast<int>(contiguous.shape(1)),
                 CV_8UC3, const_cast<std::uint8_t*>(contiguous.data()))
      .clone();
}

py::dict transform_dict(const deploy::InputTransform& t) {
  py::dict out;
  out["scale"] = t.scale;
  out["offset_x"] = t.offset_x;
  out["offset_y"] = t.offset_y;
  out["input_width"] = t.input_width;
  out["input_height"] = t.input_height;
  out["original_width"] = t.original_width;
  out["original_height"] = t.original_height;
  return out;
}

deploy::InputTransform transform_of(const py::dict& d) {
  deploy::InputTransform t;
  try {
    t.scale = d["scale"].cast<double>();
    t.offset_x = d["offset_x"].cast<double>();
    t.offset_y = d["offset_y"].cast<double>();
    t.input_width = d["input_width"].cast<int>();
    t.input_height = d["input_height"].cast<int>();
    t.original_width = d["original_width"].cast<int>();
    t.original_height = d["original_height"].cast<int>();
  } catch (const py::error_already_set&) {
    throw InputError("transform: expected the dict network_input returned");
  }
  return t;
}

/// (input (1, 3, size, size) float32, transform): an image as an exported graph takes it.
py::tuple network_input(const py::array& image, int input_size) {
  if (input_size <= 0) throw InputError("input_size: must be positive");
  const cv::Mat bgr = borrowed_bgr(image);
  const deploy::InputTransform t = deploy::fit_into(bgr, input_size, input_size);
  const std::vector<float> values = deploy::network_input(bgr, t);
  py::array_t<float> out({py::ssize_t{1}, py::ssize_t{3}, static_cast<py::ssize_t>(input_size),
                          static_cast<py::ssize_t>(input_size)});
  std::memcpy(out.mutable_data(), values.data(), values.size() * sizeof(float));
  return py::make_tuple(out, transform_dict(t));
}

template <typename T>
py::array_t<T, py::array::c_style | py::array::forcecast> output_array(const py::dict& outputs,
                                                                       const char* name,
                                                                       py::ssize_t dims) {
  if (!outputs.contains(name))
    throw InputError(std::string("outputs: no '") + name +
                     "' (give the graph's outputs by name: boxes, scores, classes, count, and "
                     "masks, mask_boxes where the method has masks)");
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(outputs[name]);
  if (!a || a.ndim() != dims)
    throw InputError(std::string("outputs['") + name + "']: expected " + std::to_string(dims) +
                     " dimensions");
  return a;
}

/// An exported graph's outputs (export --postprocess on) as Predictor.predict's detections.
py::list exported_detections(const py::dict& outputs, const py::dict& transform,
                             double mask_threshold, int image) {
  const deploy::InputTransform t = transform_of(transform);
  const auto boxes = output_array<float>(outputs, "boxes", 3);
  const auto scores = output_array<float>(outputs, "scores", 2);
  const auto classes = output_array<std::int64_t>(outputs, "classes", 2);
  const auto count = output_array<std::int64_t>(outputs, "count", 1);
  deploy::ExportedOutputs view;
  view.boxes = boxes.data();
  view.scores = scores.data();
  view.classes = classes.data();
  view.count = count.data();
  view.top_k = static_cast<int>(boxes.shape(1));
  if (image < 0 || image >= count.shape(0))
    throw InputError("image: " + std::to_string(image) + " is not in the batch");
  py::array_t<float, py::array::c_style | py::array::forcecast> masks, mask_boxes, polygons;
  if (outputs.contains("polygons")) {  // PolarMask
    polygons = output_array<float>(outputs, "polygons", 4);
    view.polygons = polygons.data();
    view.polygon_points = static_cast<int>(polygons.shape(2));
  }
  if (outputs.contains("masks")) {
    masks = output_array<float>(outputs, "masks", 4);
    mask_boxes = output_array<float>(outputs, "mask_boxes", 3);
    view.masks = masks.data();
    view.mask_boxes = mask_boxes.data();
    view.mask_size = static_cast<int>(masks.shape(3));
  }
  py::list out;
  for (const deploy::Detection& d :
       deploy::detections(view, image, t, static_cast<float>(mask_threshold))) {
    py::dict item;
    item["class_index"] = d.class_index;
    item["score"] = static_cast<double>(d.score);
    item["bbox"] = py::make_tuple(d.box.x, d.box.y, d.box.width, d.box.height);
    if (view.masks != nullptr || view.polygons != nullptr) {
      py::array_t<bool> mask({static_cast<py::ssize_t>(t.original_height),
                              static_cast<py::ssize_t>(t.original_width)});
      bool* pixels = mask.mutable_data();
      std::fill(pixels, pixels + static_cast<std::size_t>(t.original_height) * t.original_width,
                false);
      const cv::Rect inside = d.mask.rect & cv::Rect(0, 0, t.original_width, t.original_height);
      for (int y = inside.y; y < inside.y + inside.height; ++y)
        for (int x = inside.x; x < inside.x + inside.width; ++x)
          pixels[static_cast<std::size_t>(y) * t.original_width + x] =
              d.mask.pixels.at<std::uint8_t>(y - d.mask.rect.y, x - d.mask.rect.x) != 0;
      item["mask"] = mask;
    }
    out.append(item);
  }
  return out;
}

}  // namespace
}  // namespace centermask::python

PYBIND11_MODULE(centermask, m) {
  using centermask::python::PythonPredictor;
  m.doc() =
      "CenterMask-C++ from Python: Predictor (a trained checkpoint, the same detections as "
      "`centermask predict`), evaluate (COCO metrics, the same as `centermask eval --json`), "
      "read_image.";
  // Our input errors name the file or the field: Python sees them as ValueError.
  py::register_exception<centermask::InputError>(m, "InputError", PyExc_ValueError);

  py::class_<PythonPredictor>(m, "Predictor")
      .def(py::init<const std::string&, const std::string&, const std::string&, int, double, int,
                    double, std::optional<bool>, std::optional<bool>>(),
           py::arg("weights"), py::arg("device") = "cpu", py::arg("dtype") = "fp32",
           py::arg("threads") = 0, py::arg("score_threshold") = 0.3, py::arg("input_size") = 0,
           py::arg("mask_threshold") = 0.0, py::arg("flip_test") = py::none(),
           py::arg("mask_quality_scoring") = py::none(),
           "Loads a checkpoint (model_final.pt or last.pt; it carries its config and classes). "
           "device: cpu, cuda or cuda:N; dtype: fp32, bf16, fp16 or auto; threads: 0 = all "
           "cores; score_threshold as `predict --score-thr`; input_size, mask_threshold, "
           "flip_test, mask_quality_scoring: 0 / None = the model's test settings.")
      .def("predict", &PythonPredictor::predict, py::arg("image"),
           "Detections in one H x W x 3 uint8 BGR image, highest score first: a list of dicts "
           "{category_id, category_name, score, bbox (x, y, w, h), mask (H x W bool array)}.")
      .def_property_readonly("categories", &PythonPredictor::categories,
                             "the model's classes: [{id, name, supercategory}]")
      .def_property_readonly("test_settings", &PythonPredictor::test_settings,
                             "the inference settings in use");

  m.def("evaluate", &centermask::python::evaluate, py::arg("gt_json"), py::arg("results_json"),
        py::arg("iou") = "segm", py::arg("threads") = 0, py::arg("lvis") = false,
        "COCO evaluation of a results file against ground truth, as pycocotools: {iou_type, "
        "rules, num_images, num_detections, stats (the 12 numbers), per_class {category_id: "
        "AP}}; lvis=True: LVIS v1's federated rules, stats the 13 of LVISEval with their names.");
  m.def("network_input", &centermask::python::network_input, py::arg("image"),
        py::arg("input_size"),
        "For a graph `centermask export` wrote: the H x W x 3 uint8 BGR image fitted into "
        "input_size x input_size and normalised as the graph takes it, (1, 3, S, S) float32, "
        "and the transform (a dict) that exported_detections maps back with.");
  m.def("exported_detections", &centermask::python::exported_detections, py::arg("outputs"),
        py::arg("transform"), py::arg("mask_threshold") = 0.4, py::arg("image") = 0,
        "An exported graph's outputs (export --postprocess on; a dict name -> array as the "
        "runtime returned them) as detections in the original image: a list of dicts "
        "{class_index, score, bbox (x, y, w, h), mask (H x W bool array: the M x M mask "
        "pasted, or PolarMask's polygon filled)}; mask_threshold: the metadata's "
        "test.mask_threshold.");
  m.def("read_image", &centermask::python::read_image, py::arg("path"),
        "An image file as an H x W x 3 uint8 BGR array (OpenCV's decoding; ValueError naming "
        "the file when it is missing or does not decode).");
}
