// COCOeval in three stages, as pycocotools: per image and category, match detections to
// ground truth at every IoU threshold and area range (parallel over images); accumulate
// precision/recall per category, area and maxDets; summarise. Orders and tie-breaks (stable
// sorts by score, ignored ground truth last, file order within a cell) follow the reference
// because they change the numbers.

#include "centermask/evaluation/coco_evaluator.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "centermask/common/error.h"
#include "centermask/common/huge_pages.h"
#include "common/parallel.h"

namespace centermask {
namespace {

constexpr double kAreaRanges[kNumAreaRanges][2] = {
    {0, 1e5 * 1e5}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e5 * 1e5}};
constexpr const char* kAreaNames[kNumAreaRanges] = {"all", "small", "medium", "large"};

// numpy.linspace(start, stop, num): i * step + start, with the last value set to stop.
std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> v(static_cast<std::size_t>(num));
  const double step = (stop - start) / (num - 1);
  for (int i = 0; i < num; ++i) v[static_cast<std::size_t>(i)] = i * step + start;
  v.back() = stop;
  return v;
}

constexpr std::size_t kNumIouThresholds = 10;
// Per detection, one bit per (area range, threshold) fits a 64-bit word.
static_assert(kNumAreaRanges * kNumIouThresholds <= 64, "flags must fit a 64-bit word");

// The matching outcome of one (image, category) cell. Detections are in descending score
// order, truncated to the largest maxDets. Bit (a * T + t) of matched / ignored says whether
// the detection matched ground truth / is ignored, at area range a and threshold t.
struct EvaluatedCell {
  std::int32_t k = 0;
  std::vector<double> scores;
  std::array<std::int32_t, kNumAreaRanges> num_gt_counted{};  // ground truth not ignored
  std::vector<std::uint64_t> matched;
  std::vector<std::uint64_t> ignored;
};

class Evaluator {
 public:
  Evaluator(const CocoDataset& gt, const CocoResults& dt, const CocoEvalParams& params)
      : gt_(gt), dt_(dt), params_(params), lvis_(params.rules == EvalRules::kLvis) {}

  CocoEvalResult run() {
    select_images_and_categories();
    group_by_image();
    evaluate_images();
    CocoEvalResult result = accumulate();
    summarize(result);
    return result;
  }

 private:
  void select_images_and_categories() {
    iou_thresholds_ = linspace(0.5, 0.95, static_cast<int>(kNumIouThresholds));
    recall_thresholds_ = linspace(0.0, 1.0, 101);
    max_dets_ = params_.max_detections;
    std::sort(max_dets_.begin(), max_dets_.end());
    if (max_dets_.empty() || max_dets_.front() <= 0) {
      throw InputError("evaluation: max_detections must hold positive numbers");
    }
    if (params_.iou_type == IouType::kSegm && !dt_.all_have_masks()) {
      throw InputError(
          "evaluation: segm needs a \"segmentation\" in every result; these results "
          "have boxes only (evaluate them with the bbox IoU type)");
    }

    std::vector<std::int64_t> image_ids = params_.image_ids;
    if (image_ids.empty()) {
      for (const CocoImage& image : gt_.images()) image_ids.push_back(image.id);
    }
    std::sort(image_ids.begin(), image_ids.end());
    image_ids.erase(std::unique(image_ids.begin(), image_ids.end()), image_ids.end());
    image_position_.assign(gt_.images().size(), -1);
    for (std::size_t i = 0; i < image_ids.size(); ++i) {
      std::int32_t index = gt_.image_index(image_ids[i]);
      if (index < 0)
        throw InputError(
            fmt::format("evaluation: image id {} is not in the ground truth", image_ids[i]));
      image_position_[static_cast<std::size_t>(index)] = static_cast<std::int32_t>(i);
      eval_images_.push_back(index);
    }

    std::vector<std::int64_t> category_ids = params_.category_ids;
    if (category_ids.empty()) {
      for (const CocoCategory& c : gt_.categories()) category_ids.push_back(c.id);
    }
    std::sort(category_ids.begin(), category_ids.end());
    category_ids.erase(std::unique(category_ids.begin(), category_ids.end()), category_ids.end());
    class_position_.assign(gt_.num_classes(), -1);
    for (std::size_t k = 0; k < category_ids.size(); ++k) {
      std::int32_t cls = gt_.class_index(category_ids[k]);
      if (cls < 0)
        throw InputError(
            fmt::format("evaluation: category id {} is not in the ground truth", category_ids[k]));
      class_position_[static_cast<std::size_t>(cls)] =
          params_.use_categories ? static_cast<std::int32_t>(k) : 0;
    }
    category_ids_ = params_.use_categories ? category_ids : std::vector<std::int64_t>{-1};
    if (lvis_) prepare_federated_rules();
  }

  // LVIS: what each evaluated image is annotated for, and each category's frequency group.
  void prepare_federated_rules() {
    if (max_dets_.size() != 1)
      throw InputError(
          "LVIS evaluation: max_detections must be one number, the detections kept per image "
          "(LVIS v1: 300)");
    if (!params_.use_categories)
      throw InputError(
          "LVIS evaluation: categories cannot be ignored (its rules are per category)");
    const auto class_indices = [this](const std::vector<std::int64_t>& ids) {
      std::vector<std::int32_t> classes;
      for (std::int64_t id : ids) {
        const std::int32_t cls = gt_.class_index(id);
        if (cls >= 0) classes.push_back(cls);  // an id of no category: no detection has it
      }
      std::sort(classes.begin(), classes.end());
      return classes;
    };
    negative_of_image_.resize(eval_images_.size());
    not_exhaustive_of_image_.resize(eval_images_.size());
    for (std::size_t i = 0; i < eval_images_.size(); ++i) {
      const auto index = static_cast<std::size_t>(eval_images_[i]);
      const CocoImage& image = gt_.images()[index];
      for (const auto& [list, name] :
           {std::pair{&image.neg_category_ids, "neg_category_ids"},
            std::pair{&image.not_exhaustive_category_ids, "not_exhaustive_category_ids"}})
        if (!list->has_value())
          throw InputError(fmt::format(
              "LVIS evaluation: images[{}] (id {}) has no \"{}\": LVIS's federated rules need "
              "neg_category_ids and not_exhaustive_category_ids on every image (a COCO file is "
              "evaluated without --lvis)",
              index, image.id, name));
      negative_of_image_[i] = class_indices(*image.neg_category_ids);
      not_exhaustive_of_image_[i] = class_indices(*image.not_exhaustive_category_ids);
    }
    frequency_group_.resize(category_ids_.size());
    for (std::size_t k = 0; k < category_ids_.size(); ++k) {
      const std::int32_t cls = gt_.class_index(category_ids_[k]);
      const CocoCategory& category = gt_.categories()[static_cast<std::size_t>(cls)];
      const std::size_t group = std::string("rcf").find(category.frequency);
      if (category.frequency.size() != 1 || group == std::string::npos)
        throw InputError(fmt::format(
            "LVIS evaluation: categories[{}] (id {}, \"{}\") has frequency \"{}\": expected r, "
            "c or f (rare, common, frequent)",
            cls, category.id, category.name, category.frequency));
      frequency_group_[k] = static_cast<int>(group);
    }
  }

  static bool contains(const std::vector<std::int32_t>& sorted, std::int32_t value) {
    return std::binary_search(sorted.begin(), sorted.end(), value);
  }

  // Per evaluated image: ground truth and detections, each sorted stably by category so that a
  // cell is a contiguous run in file order (and, without categories, the reference's order).
  void group_by_image() {
    const std::size_t num_images = eval_images_.size();
    gt_of_image_.assign(num_images, {});
    dt_of_image_.assign(num_images, {});
    for (std::size_t i = 0; i < num_images; ++i) {
      for (std::uint32_t a : gt_.annotations_of_image(static_cast<std::size_t>(eval_images_[i]))) {
        if (class_position_[static_cast<std::size_t>(gt_.annotations()[a].class_index)] >= 0) {
          gt_of_image_[i].push_back(a);
        }
      }
    }
    const auto& dets = dt_.detections();
    for (std::size_t d = 0; d < dets.size(); ++d) {
      std::int32_t i = image_position_[static_cast<std::size_t>(dets[d].image_index)];
      if (i < 0) continue;
      // LVIS cuts each image's detections before looking at categories.
      if (!lvis_ && class_position_[static_cast<std::size_t>(dets[d].class_index)] < 0) continue;
      dt_of_image_[static_cast<std::size_t>(i)].push_back(static_cast<std::uint32_t>(d));
    }
    if (lvis_) {
      const auto max_per_image = static_cast<std::size_t>(max_dets_.front());
      for (std::size_t i = 0; i < num_images; ++i) {
        std::vector<std::uint32_t>& mine = dt_of_image_[i];
        if (mine.size() > max_per_image) {
          std::stable_sort(mine.begin(), mine.end(), [&dets](std::uint32_t a, std::uint32_t b) {
            return dets[a].score > dets[b].score;
          });
          mine.resize(max_per_image);
        }
        // Only categories the image is annotated for: present in its ground truth (any
        // category of the evaluation) or verified absent.
        std::vector<std::int32_t> present;
        for (std::uint32_t a : gt_of_image_[i]) present.push_back(gt_.annotations()[a].class_index);
        std::sort(present.begin(), present.end());
        mine.erase(std::remove_if(mine.begin(), mine.end(),
                                  [&](std::uint32_t d) {
                                    const std::int32_t cls = dets[d].class_index;
                                    return class_position_[static_cast<std::size_t>(cls)] < 0 ||
                                           !(contains(present, cls) ||
                                             contains(negative_of_image_[i], cls));
                                  }),
                   mine.end());
      }
    }
    auto by_class = [](const auto& records) {
      return [&records](std::uint32_t a, std::uint32_t b) {
        return records[a].class_index < records[b].class_index;
      };
    };
    for (std::size_t i = 0; i < num_images; ++i) {
      std::stable_sort(gt_of_image_[i].begin(), gt_of_image_[i].end(), by_class(gt_.annotations()));
      std::stable_sort(dt_of_image_[i].begin(), dt_of_image_[i].end(), by_class(dets));
    }
  }

  std::int32_t cell_of_gt(std::uint32_t a) const {
    return class_position_[static_cast<std::size_t>(gt_.annotations()[a].class_index)];
  }
  std::int32_t cell_of_dt(std::uint32_t d) const {
    return class_position_[static_cast<std::size_t>(dt_.detections()[d].class_index)];
  }

  void evaluate_images() {
    const std::size_t num_images = eval_images_.size();
    cells_.assign(num_images, {});
    parallel_for(num_images, resolve_thread_count(params_.num_threads, num_images),
                 [this](std::size_t i) { evaluate_image(i); });
  }

  void evaluate_image(std::size_t i) {
    const std::vector<std::uint32_t>& gts = gt_of_image_[i];
    const std::vector<std::uint32_t>& dts = dt_of_image_[i];
    std::size_t g0 = 0, d0 = 0;
    while (g0 < gts.size() || d0 < dts.size()) {
      const std::int32_t k = std::min(
          g0 < gts.size() ? cell_of_gt(gts[g0]) : std::numeric_limits<std::int32_t>::max(),
          d0 < dts.size() ? cell_of_dt(dts[d0]) : std::numeric_limits<std::int32_t>::max());
      std::size_t g1 = g0, d1 = d0;
      while (g1 < gts.size() && cell_of_gt(gts[g1]) == k) ++g1;
      while (d1 < dts.size() && cell_of_dt(dts[d1]) == k) ++d1;
      // LVIS: a category not annotated exhaustively in this image has no false positives.
      const bool unmatched_ignored =
          lvis_ && contains(not_exhaustive_of_image_[i],
                            gt_.class_index(category_ids_[static_cast<std::size_t>(k)]));
      cells_[i].push_back(evaluate_cell(k, gts, g0, g1, dts, d0, d1, unmatched_ignored));
      g0 = g1;
      d0 = d1;
    }
  }

  EvaluatedCell evaluate_cell(std::int32_t k, const std::vector<std::uint32_t>& gts, std::size_t g0,
                              std::size_t g1, const std::vector<std::uint32_t>& dts, std::size_t d0,
                              std::size_t d1, bool unmatched_ignored) const {
    const auto& dets = dt_.detections();
    const auto& anns = gt_.annotations();
    // Detections by descending score (stable), cut to the largest maxDets.
    std::vector<std::uint32_t> order(dts.begin() + static_cast<std::ptrdiff_t>(d0),
                                     dts.begin() + static_cast<std::ptrdiff_t>(d1));
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return dets[a].score > dets[b].score;
    });
    if (order.size() > static_cast<std::size_t>(max_dets_.back()))
      order.resize(static_cast<std::size_t>(max_dets_.back()));
    const std::size_t D = order.size();
    const std::size_t G = g1 - g0;
    const std::size_t T = iou_thresholds_.size();

    std::vector<std::uint8_t> crowd(G);
    // LVIS has no crowd regions (its evaluation treats every annotation as an object).
    for (std::size_t g = 0; g < G; ++g) crowd[g] = !lvis_ && anns[gts[g0 + g]].iscrowd ? 1 : 0;
    std::vector<double> ious;  // (D, G)
    // Masks are made only for cells that need an IoU: ground truth that no detection of its
    // category competes for is never rasterised.
    if (D > 0 && G > 0) {
      if (params_.iou_type == IouType::kSegm) {
        // Each worker's masks keep their storage from cell to cell: allocating them afresh
        // for every cell cost more than decoding them (the freed memory went back to the
        // system and came back as page faults).
        thread_local std::vector<Rle> dt_masks;
        if (dt_masks.size() < D) dt_masks.resize(D);
        for (std::size_t d = 0; d < D; ++d) dt_.mask_into(order[d], dt_masks[d]);
        std::vector<Rle> gt_masks;
        gt_masks.reserve(G);
        for (std::size_t g = g0; g < g1; ++g) gt_masks.push_back(gt_.mask(gts[g]));
        ious = rle_iou_matrix(Span<Rle>(dt_masks.data(), D), gt_masks, crowd);
      } else {
        ious.resize(D * G);
        for (std::size_t d = 0; d < D; ++d) {
          for (std::size_t g = 0; g < G; ++g)
            ious[d * G + g] = box_iou(dets[order[d]].bbox, anns[gts[g0 + g]].bbox, crowd[g]);
        }
      }
    }

    EvaluatedCell cell;
    cell.k = k;
    cell.scores.resize(D);
    for (std::size_t d = 0; d < D; ++d) cell.scores[d] = dets[order[d]].score;
    cell.matched.assign(D, 0);
    cell.ignored.assign(D, 0);
    std::vector<std::size_t> gt_order(G);
    std::vector<std::uint8_t> gt_ignored(G);
    std::vector<std::int32_t> gt_match(G);
    for (int a = 0; a < kNumAreaRanges; ++a) {
      const double lo = kAreaRanges[a][0], hi = kAreaRanges[a][1];
      std::int32_t counted = 0;
      for (std::size_t g = 0; g < G; ++g) {
        const CocoAnnotation& ann = anns[gts[g0 + g]];
        gt_ignored[g] = (crowd[g] || ann.area < lo || ann.area > hi) ? 1 : 0;
        counted += gt_ignored[g] ? 0 : 1;
      }
      cell.num_gt_counted[static_cast<std::size_t>(a)] = counted;
      // Ground truth that counts first, ignored last, each in file order.
      std::iota(gt_order.begin(), gt_order.end(), 0);
      std::stable_sort(gt_order.begin(), gt_order.end(),
                       [&](std::size_t x, std::size_t y) { return gt_ignored[x] < gt_ignored[y]; });
      for (std::size_t t = 0; t < T; ++t) {
        const std::uint64_t bit = std::uint64_t{1} << (static_cast<std::size_t>(a) * T + t);
        std::fill(gt_match.begin(), gt_match.end(), -1);
        for (std::size_t d = 0; d < D && G > 0; ++d) {
          double best = std::min(iou_thresholds_[t], 1 - 1e-10);
          std::ptrdiff_t m = -1;
          for (std::size_t gi = 0; gi < G; ++gi) {
            const std::size_t g = gt_order[gi];
            if (gt_match[g] >= 0 && !crowd[g]) continue;
            // Once matched to ground truth that counts, ignored ground truth cannot win.
            if (m > -1 && !gt_ignored[static_cast<std::size_t>(m)] && gt_ignored[g]) break;
            const double iou = ious[d * G + g];
            if (iou < best) continue;
            best = iou;
            m = static_cast<std::ptrdiff_t>(g);
          }
          if (m == -1) continue;
          const auto mg = static_cast<std::size_t>(m);
          gt_match[mg] = static_cast<std::int32_t>(d);
          // pycocotools records the match as the ground truth's id and tests it for truth, so
          // a match to an annotation with id 0 counts as unmatched there; we agree.
          if (anns[gts[g0 + mg]].id != 0) cell.matched[d] |= bit;
          if (gt_ignored[mg]) cell.ignored[d] |= bit;
        }
        for (std::size_t d = 0; d < D; ++d) {
          const double area = dets[order[d]].area;
          if (!(cell.matched[d] & bit) && (unmatched_ignored || area < lo || area > hi))
            cell.ignored[d] |= bit;
        }
      }
    }
    return cell;
  }

  CocoEvalResult accumulate() {
    const std::size_t T = iou_thresholds_.size(), R = recall_thresholds_.size();
    const std::size_t K = category_ids_.size(), A = kNumAreaRanges, M = max_dets_.size();
    CocoEvalResult result;
    result.iou_type = params_.iou_type;
    result.iou_thresholds = iou_thresholds_;
    result.recall_thresholds = recall_thresholds_;
    result.category_ids = category_ids_;
    result.max_detections = max_dets_;
    reserve_in_huge_pages(result.precision, T * R * K * A * M);
    result.precision.assign(T * R * K * A * M, -1.0);
    result.recall.assign(T * K * A * M, -1.0);

    // Cells of each category, in image order.
    std::vector<std::vector<const EvaluatedCell*>> cells_of_category(K);
    for (const std::vector<EvaluatedCell>& image_cells : cells_) {
      for (const EvaluatedCell& cell : image_cells)
        cells_of_category[static_cast<std::size_t>(cell.k)].push_back(&cell);
    }

    parallel_for(K, resolve_thread_count(params_.num_threads, K),
                 [&](std::size_t k) { accumulate_category(k, cells_of_category[k], result); });
    return result;
  }

  // Precision and recall of one category for every area range, maxDets and threshold.
  void accumulate_category(std::size_t k, const std::vector<const EvaluatedCell*>& cells,
                           CocoEvalResult& result) const {
    if (cells.empty()) return;
    const std::size_t T = iou_thresholds_.size(), R = recall_thresholds_.size();
    const std::size_t K = category_ids_.size(), A = kNumAreaRanges, M = max_dets_.size();
    struct Entry {
      double score;
      std::uint64_t matched;
      std::uint64_t ignored;
      std::uint32_t rank;  // within its image (cells are cut by rank for each maxDets)
    };
    // One stable sort for the largest maxDets; each smaller one keeps the entries of rank
    // below it, which, being a filter of a stable order, is its own stable order.
    std::vector<Entry> all_entries, entries;
    for (const EvaluatedCell* cell : cells) {
      for (std::size_t d = 0; d < cell->scores.size(); ++d) {
        all_entries.push_back(
            {cell->scores[d], cell->matched[d], cell->ignored[d], static_cast<std::uint32_t>(d)});
      }
    }
    // numpy's mergesort on -score: stable, so ties keep image order.
    std::stable_sort(all_entries.begin(), all_entries.end(),
                     [](const Entry& x, const Entry& y) { return x.score > y.score; });
    // Per (area range, threshold) bit, the false positives counted before each true positive:
    // all that precision and recall need. Precision tp / (fp + tp) only rises at a true
    // positive and never rises elsewhere, so its envelope from the right is the running
    // maximum over the true positives, and each recall threshold is first reached at one:
    // the reference's per-detection arrays give the same numbers (the same expressions on
    // the same counts) without a division per detection and threshold.
    const std::size_t num_bits = A * T;
    const std::uint64_t all_bits =
        num_bits == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << num_bits) - 1;
    std::vector<std::vector<std::uint32_t>> fp_before_tp(num_bits);
    std::vector<std::uint32_t> fp(num_bits);
    std::vector<double> envelope;
    for (std::size_t m = 0; m < M; ++m) {
      const std::size_t max_det = static_cast<std::size_t>(max_dets_[m]);
      for (std::vector<std::uint32_t>& events : fp_before_tp) events.clear();
      std::fill(fp.begin(), fp.end(), 0);
      std::size_t nd = 0;
      for (const Entry& entry : all_entries) {
        if (entry.rank >= max_det) continue;
        ++nd;
        const std::uint64_t counted = ~entry.ignored & all_bits;
        const std::uint64_t false_positive = counted & ~entry.matched;
        for (std::size_t bit = 0; bit < num_bits; ++bit)
          fp[bit] += static_cast<std::uint32_t>((false_positive >> bit) & 1);
        for (std::uint64_t tps = counted & entry.matched; tps != 0; tps &= tps - 1) {
          const auto bit = static_cast<std::size_t>(__builtin_ctzll(tps));
          fp_before_tp[bit].push_back(fp[bit]);
        }
      }
      for (std::size_t a = 0; a < A; ++a) {
        std::int64_t num_gt = 0;
        for (const EvaluatedCell* cell : cells) num_gt += cell->num_gt_counted[a];
        if (num_gt == 0) continue;
        const double n = static_cast<double>(num_gt);
        for (std::size_t t = 0; t < T; ++t) {
          const std::vector<std::uint32_t>& events = fp_before_tp[a * T + t];
          result.recall[((t * K + k) * A + a) * M + m] =
              nd ? static_cast<double>(events.size()) / n : 0.0;
          envelope.resize(events.size());
          for (std::size_t j = events.size(); j-- > 0;) {
            const double tp = static_cast<double>(j + 1), fp_count = static_cast<double>(events[j]);
            const double precision = tp / (fp_count + tp + std::numeric_limits<double>::epsilon());
            envelope[j] = j + 1 < events.size() ? std::max(precision, envelope[j + 1]) : precision;
          }
          // The first true positive whose recall (j + 1) / n reaches each threshold.
          std::size_t j = 0;
          for (std::size_t r = 0; r < R; ++r) {
            while (j < events.size() && static_cast<double>(j + 1) / n < recall_thresholds_[r]) ++j;
            const double q = j < events.size() ? envelope[j] : 0.0;
            result.precision[(((t * R + r) * K + k) * A + a) * M + m] = q;
          }
        }
      }
    }
  }

  void summarize(CocoEvalResult& result) const {
    const std::size_t T = iou_thresholds_.size(), R = recall_thresholds_.size();
    const std::size_t K = category_ids_.size(), A = kNumAreaRanges, M = max_dets_.size();
    auto max_det_index = [&](int max_det) -> std::ptrdiff_t {
      for (std::size_t m = 0; m < M; ++m) {
        if (max_dets_[m] == max_det) return static_cast<std::ptrdiff_t>(m);
      }
      return -1;
    };
    auto mean_defined = [](double sum, std::size_t count) {
      return count ? sum / static_cast<double>(count) : -1.0;
    };
    // ap: AP over (T or one threshold) x R x K; else AR over (T or one) x K. `group`: only
    // the categories of that LVIS frequency group (-1: all).
    auto stat = [&](bool ap, double iou, std::size_t a, int max_det, int group = -1) {
      const std::ptrdiff_t m = max_det_index(max_det);
      if (m < 0) return -1.0;
      double sum = 0;
      std::size_t count = 0;
      for (std::size_t t = 0; t < T; ++t) {
        if (iou >= 0 && iou_thresholds_[t] != iou) continue;
        for (std::size_t k = 0; k < K; ++k) {
          if (group >= 0 && frequency_group_[k] != group) continue;
          if (ap) {
            for (std::size_t r = 0; r < R; ++r) {
              const double v =
                  result
                      .precision[(((t * R + r) * K + k) * A + a) * M + static_cast<std::size_t>(m)];
              if (v > -1) {
                sum += v;
                ++count;
              }
            }
          } else {
            const double v = result.recall[((t * K + k) * A + a) * M + static_cast<std::size_t>(m)];
            if (v > -1) {
              sum += v;
              ++count;
            }
          }
        }
      }
      return mean_defined(sum, count);
    };
    result.rules = params_.rules;
    if (lvis_) {
      const int d = max_dets_.front();
      result.stats.fill(-1.0);
      result.lvis_stats = {
          stat(true, -1, 0, d),    stat(true, 0.5, 0, d),   stat(true, 0.75, 0, d),
          stat(true, -1, 1, d),    stat(true, -1, 2, d),    stat(true, -1, 3, d),
          stat(true, -1, 0, d, 0), stat(true, -1, 0, d, 1), stat(true, -1, 0, d, 2),
          stat(false, -1, 0, d),   stat(false, -1, 1, d),   stat(false, -1, 2, d),
          stat(false, -1, 3, d)};
      return;
    }
    const int d2 = M > 2 ? max_dets_[2] : max_dets_.back();
    const int d0 = max_dets_[0];
    const int d1 = M > 1 ? max_dets_[1] : max_dets_.back();
    result.stats = {stat(true, -1, 0, d2),  stat(true, 0.5, 0, d2), stat(true, 0.75, 0, d2),
                    stat(true, -1, 1, d2),  stat(true, -1, 2, d2),  stat(true, -1, 3, d2),
                    stat(false, -1, 0, d0), stat(false, -1, 0, d1), stat(false, -1, 0, d2),
                    stat(false, -1, 1, d2), stat(false, -1, 2, d2), stat(false, -1, 3, d2)};
  }

  const CocoDataset& gt_;
  const CocoResults& dt_;
  const CocoEvalParams& params_;
  const bool lvis_;
  // LVIS: per evaluated image, the classes verified absent and those not annotated
  // exhaustively (sorted); per category position, its frequency group (0 r, 1 c, 2 f).
  std::vector<std::vector<std::int32_t>> negative_of_image_, not_exhaustive_of_image_;
  std::vector<int> frequency_group_;
  std::vector<double> iou_thresholds_, recall_thresholds_;
  std::vector<int> max_dets_;
  std::vector<std::int64_t> category_ids_;
  std::vector<std::int32_t> eval_images_;     // gt image index of each evaluated image
  std::vector<std::int32_t> image_position_;  // gt image index -> evaluated position or -1
  std::vector<std::int32_t> class_position_;  // gt class index -> k or -1
  std::vector<std::vector<std::uint32_t>> gt_of_image_, dt_of_image_;
  std::vector<std::vector<EvaluatedCell>> cells_;
};

}  // namespace

const char* iou_type_name(IouType type) { return type == IouType::kSegm ? "segm" : "bbox"; }

const char* const kLvisStatNames[kNumLvisStats] = {"AP",      "AP50",    "AP75",   "APs", "APm",
                                                   "APl",     "APr",     "APc",    "APf", "AR@300",
                                                   "ARs@300", "ARm@300", "ARl@300"};

CocoEvalParams lvis_eval_params(IouType iou_type) {
  CocoEvalParams params;
  params.iou_type = iou_type;
  params.rules = EvalRules::kLvis;
  params.max_detections = {300};
  return params;
}

double CocoEvalResult::precision_at(std::size_t t, std::size_t r, std::size_t k, std::size_t a,
                                    std::size_t m) const {
  const std::size_t R = recall_thresholds.size(), K = category_ids.size(),
                    M = max_detections.size();
  return precision[(((t * R + r) * K + k) * kNumAreaRanges + a) * M + m];
}

double CocoEvalResult::recall_at(std::size_t t, std::size_t k, std::size_t a, std::size_t m) const {
  const std::size_t K = category_ids.size(), M = max_detections.size();
  return recall[((t * K + k) * kNumAreaRanges + a) * M + m];
}

std::vector<std::pair<std::int64_t, double>> CocoEvalResult::per_category_ap() const {
  std::vector<std::pair<std::int64_t, double>> out;
  const std::size_t m = max_detections.size() - 1;
  for (std::size_t k = 0; k < category_ids.size(); ++k) {
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t t = 0; t < iou_thresholds.size(); ++t) {
      for (std::size_t r = 0; r < recall_thresholds.size(); ++r) {
        const double v = precision_at(t, r, k, 0, m);
        if (v > -1) {
          sum += v;
          ++count;
        }
      }
    }
    out.emplace_back(category_ids[k], count ? sum / static_cast<double>(count) : -1.0);
  }
  return out;
}

std::string CocoEvalResult::summary_text() const {
  if (rules == EvalRules::kLvis) {
    // LVISEval.print_results(): the key's third letter names the threshold, area or group.
    std::string out;
    for (int i = 0; i < kNumLvisStats && static_cast<std::size_t>(i) < lvis_stats.size(); ++i) {
      const std::string key = kLvisStatNames[i];
      const bool ap = key.rfind("AP", 0) == 0;
      const char third = key.size() > 2 ? key[2] : ' ';
      const std::string iou =
          third >= '0' && third <= '9'
              ? fmt::format("{:0.2f}", std::stod(key.substr(2)) / 100)
              : fmt::format("{:0.2f}:{:0.2f}", iou_thresholds.front(), iou_thresholds.back());
      const std::string group =
          third == 'r' || third == 'c' || third == 'f' ? std::string(1, third) : std::string("all");
      const std::string area =
          third == 's' || third == 'm' || third == 'l' ? std::string(1, third) : std::string("all");
      out += fmt::format(
          " {:<18} {} @[ IoU={:<9} | area={:>6} | maxDets={:>3} catIds={:>3}] = {:0.3f}\n",
          ap ? "Average Precision" : "Average Recall", ap ? "(AP)" : "(AR)", iou, area,
          max_detections.front(), group, lvis_stats[static_cast<std::size_t>(i)]);
    }
    return out;
  }
  struct Line {
    bool ap;
    double iou;
    int area;
    std::size_t max_det_slot;
  };
  const std::size_t last = max_detections.size() - 1;
  const std::size_t slot2 = std::min<std::size_t>(2, last), slot1 = std::min<std::size_t>(1, last);
  const Line lines[12] = {{true, -1, 0, slot2},  {true, 0.5, 0, slot2}, {true, 0.75, 0, slot2},
                          {true, -1, 1, slot2},  {true, -1, 2, slot2},  {true, -1, 3, slot2},
                          {false, -1, 0, 0},     {false, -1, 0, slot1}, {false, -1, 0, slot2},
                          {false, -1, 1, slot2}, {false, -1, 2, slot2}, {false, -1, 3, slot2}};
  std::string out;
  for (int i = 0; i < 12; ++i) {
    const Line& l = lines[i];
    const std::string iou =
        l.iou < 0 ? fmt::format("{:0.2f}:{:0.2f}", iou_thresholds.front(), iou_thresholds.back())
                  : fmt::format("{:0.2f}", l.iou);
    out += fmt::format(" {:<18} {} @[ IoU={:<9} | area={:>6} | maxDets={:>3} ] = {:0.3f}\n",
                       l.ap ? "Average Precision" : "Average Recall", l.ap ? "(AP)" : "(AR)", iou,
                       kAreaNames[l.area], max_detections[l.max_det_slot],
                       stats[static_cast<std::size_t>(i)]);
  }
  return out;
}

CocoEvalResult evaluate_coco(const CocoDataset& ground_truth, const CocoResults& results,
                             const CocoEvalParams& params) {
  return Evaluator(ground_truth, results, params).run();
}

}  // namespace centermask
