#pragma once
// COCO detection / instance-segmentation evaluation with COCOeval's semantics (pycocotools):
// 10 IoU thresholds .50:.05:.95, 101 recall points, maxDets 1/10/100, area ranges
// all/small/medium/large, crowd regions matched with IoU = intersection / detection area,
// the 12 summary statistics and per-category AP. Agreement with the reference is tested on
// cases scored by pycocotools (tests/data/coco_eval).

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "centermask/data/coco_dataset.h"
#include "centermask/data/coco_results.h"

namespace centermask {

enum class IouType { kSegm, kBbox };
const char* iou_type_name(IouType type);

/// Whose rules: COCO's (pycocotools' COCOeval), or LVIS v1's federated ones (the lvis-api's
/// LVISEval): each image's detections cut to its highest-scoring max_detections (one value, 300
/// by default) across categories; a detection counts only for categories the image is annotated
/// for (present in its ground truth or listed in its neg_category_ids; others are dropped);
/// unmatched detections of a category in its not_exhaustive_category_ids are ignored, not
/// false positives; no crowd regions; AP also by category frequency (rare, common, frequent).
enum class EvalRules { kCoco, kLvis };

struct CocoEvalParams {
  IouType iou_type = IouType::kSegm;
  /// Images to evaluate; empty means every ground-truth image.
  std::vector<std::int64_t> image_ids;
  /// Categories to evaluate; empty means every ground-truth category.
  std::vector<std::int64_t> category_ids;
  /// false: categories are ignored when matching (COCOeval's useCats = 0).
  bool use_categories = true;
  /// Detections kept per image, ascending; the summary uses the three of COCO's default.
  std::vector<int> max_detections = {1, 10, 100};
  /// Worker threads for the per-image stage; 0 = all cores.
  int num_threads = 0;
  EvalRules rules = EvalRules::kCoco;
};

/// LVIS v1's defaults: its rules and 300 detections per image.
CocoEvalParams lvis_eval_params(IouType iou_type);

/// The names of CocoEvalResult::lvis_stats, in order.
constexpr int kNumLvisStats = 13;
extern const char* const kLvisStatNames[kNumLvisStats];

/// Area ranges in COCOeval's order: all, small (< 32²), medium, large (> 96²).
constexpr int kNumAreaRanges = 4;

struct CocoEvalResult {
  IouType iou_type = IouType::kSegm;
  EvalRules rules = EvalRules::kCoco;
  /// COCO's rules: COCOeval.stats: AP, AP50, AP75, AP small/medium/large, AR@1, AR@10, AR@100,
  /// AR small/medium/large; -1 where there is no ground truth for a statistic.
  /// (Under LVIS's rules all -1: see lvis_stats.)
  std::array<double, 12> stats{};
  /// LVIS's rules: LVISEval.results in its order — AP, AP50, AP75, APs, APm, APl, APr, APc,
  /// APf, AR@300, ARs@300, ARm@300, ARl@300 (kLvisStatNames); -1 where undefined. Empty under
  /// COCO's rules.
  std::vector<double> lvis_stats;
  std::vector<double> iou_thresholds;      ///< T
  std::vector<double> recall_thresholds;   ///< R
  std::vector<std::int64_t> category_ids;  ///< K (a single -1 when use_categories is false)
  std::vector<int> max_detections;         ///< M
  /// Interpolated precision, shape (T, R, K, A, M) row-major; -1 where undefined.
  std::vector<double> precision;
  /// Recall, shape (T, K, A, M) row-major; -1 where undefined.
  std::vector<double> recall;

  double precision_at(std::size_t t, std::size_t r, std::size_t k, std::size_t a,
                      std::size_t m) const;
  double recall_at(std::size_t t, std::size_t k, std::size_t a, std::size_t m) const;
  /// AP@[.50:.95] of each category (area all, the largest maxDets); -1 without ground truth.
  std::vector<std::pair<std::int64_t, double>> per_category_ap() const;
  /// The 12-line summary that pycocotools' summarize() prints (LVIS: the 13 lines of
  /// LVISEval.print_results()).
  std::string summary_text() const;
};

/// Evaluates `results` against `ground_truth`. Throws InputError if the params name images or
/// categories the ground truth does not have, if segm evaluation meets results without
/// masks, or (LVIS's rules) if an image lacks neg_category_ids / not_exhaustive_category_ids or
/// a category's frequency is not r, c or f. An empty results list is valid and scores 0 wherever
/// there is ground truth.
CocoEvalResult evaluate_coco(const CocoDataset& ground_truth, const CocoResults& results,
                             const CocoEvalParams& params = {});

}  // namespace centermask
