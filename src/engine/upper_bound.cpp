#include "centermask/engine/upper_bound.h"

#include <fmt/format.h>

#include <chrono>

#include "centermask/common/error.h"
#include "centermask/data/loader.h"
#include "centermask/engine/inference.h"
#include "centermask/modeling/method_registry.h"
#include "centermask/structures/rle.h"

namespace centermask {

namespace {

// COCO's area ranges (all, small < 32², medium, large > 96²) as indices 1..3.
int size_range(double area) {
  if (area < 32.0 * 32.0) return 1;
  if (area <= 96.0 * 96.0) return 2;
  return 3;
}

bool any_mask(const TrainingSet& set) {
  const CocoDataset& dataset = set.dataset();
  for (std::size_t i = 0; i < set.size(); ++i)
    for (std::uint32_t a :
         dataset.annotations_of_image(static_cast<std::size_t>(set.dataset_image_index(i))))
      if (dataset.annotations()[a].segmentation_format != SegmentationFormat::kNone) return true;
  return false;
}

}  // namespace

UpperBoundReport compute_upper_bound(const ModelConfig& model_options,
                                     const std::shared_ptr<const TrainingSet>& set,
                                     const TestConfig& test, const std::string& set_name,
                                     int workers) {
  if (!any_mask(*set))
    throw InputError(fmt::format(
        "{}: no annotation of the usable images has a segmentation (polygons or RLE): the "
        "upper bound of a mask representation needs ground-truth masks",
        set_name));
  const auto start = std::chrono::steady_clock::now();
  ModelConfig options = model_options;
  options.num_classes = static_cast<int>(set->num_classes());
  const std::shared_ptr<MetaArchitectureImpl> model = build_meta_architecture(options);
  model->eval();

  LoaderOptions loader_options;
  loader_options.training = false;
  loader_options.batch_size = test.batch_size;
  loader_options.workers = workers;
  loader_options.test_transform.input_height = test.input_size;
  loader_options.test_transform.input_width = test.input_size;
  DataLoader loader(set, loader_options);
  PredictOptions decode;
  decode.top_k = test.top_k;
  decode.mask_threshold = static_cast<float>(test.mask_threshold);
  // Perfect outputs score objects near 1 and the rest near 0: CenterMask's peaks are 1 − 1e-4,
  // PolarMask's p · (centerness + 0.5) with p = 1 − 1e-4 passes wherever the centerness target
  // is above 1e-4, which holds at every positive but those on the contour itself.
  decode.score_threshold = 0.5f;

  const CocoDataset& dataset = set->dataset();
  UpperBoundReport report;
  CocoResults results;
  std::array<double, 4> iou_sum{};
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  while (std::optional<Batch> batch = loader.next()) {
    const auto outputs =
        model->perfect_network_outputs(batch->instances, batch->height, batch->width);
    const auto detections = model->detect(*outputs, batch->infos, decode);
    for (std::size_t i = 0; i < detections.size(); ++i) {
      const std::int64_t image_id = batch->infos[i].image_id;
      append_coco_results(dataset, image_id, detections[i], &results);
      report.detections += static_cast<std::int64_t>(detections[i].size());
      const auto image_index = static_cast<std::size_t>(dataset.image_index(image_id));
      const CocoImage& image = dataset.images()[image_index];
      std::vector<Rle> predicted;
      for (const Instance& d : detections[i])
        predicted.push_back(patch_to_rle(d.mask, image.height, image.width));
      for (std::uint32_t a : dataset.annotations_of_image(image_index)) {
        const CocoAnnotation& gt = dataset.annotations()[a];
        if (gt.iscrowd || gt.segmentation_format == SegmentationFormat::kNone) continue;
        const Rle gt_mask = dataset.mask(a);
        double best = 0;
        for (std::size_t d = 0; d < predicted.size(); ++d)
          if (detections[i][d].class_index == gt.class_index)
            best = std::max(best, rle_iou(predicted[d], gt_mask, false));
        for (int range : {0, size_range(gt.area)}) {
          iou_sum[static_cast<std::size_t>(range)] += best;
          ++report.objects[static_cast<std::size_t>(range)];
        }
      }
    }
    report.images += batch->size;
  }
  for (std::size_t r = 0; r < 4; ++r)
    report.mean_mask_iou[r] =
        report.objects[r] > 0 ? iou_sum[r] / static_cast<double>(report.objects[r]) : 0.0;

  CocoEvalParams params;
  if (set->size() != dataset.images().size())
    for (std::size_t i = 0; i < set->size(); ++i)
      params.image_ids.push_back(
          dataset.images()[static_cast<std::size_t>(set->dataset_image_index(i))].id);
  params.iou_type = IouType::kSegm;
  report.segm = evaluate_coco(dataset, results, params);
  params.iou_type = IouType::kBbox;
  report.bbox = evaluate_coco(dataset, results, params);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace centermask
