// COCO evaluation speed on 1000 images x 100 detections (5k ground truth, 100k detections).
// Reference on this machine kind: pycocotools takes 4.3 s (segm) and 3.9 s (bbox).
//
//   bench_coco_eval [--images N] [--dets-per-image D] [--threads T] [--dir DIR]
// With --dir the generated gt.json / results.json are kept there (and reused if present).

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "centermask/evaluation/coco_evaluator.h"
#include "synthetic_coco.h"

using namespace centermask;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  bench::SyntheticCocoSpec spec;
  spec.num_images = 1000;
  spec.instances_per_image = 5;
  int dets_per_image = 100;
  int threads = 0;
  std::filesystem::path dir;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--images") && i + 1 < argc)
      spec.num_images = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--dets-per-image") && i + 1 < argc)
      dets_per_image = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else {
      fmt::print(
          stderr,
          "usage: bench_coco_eval [--images N] [--dets-per-image D] [--threads T] [--dir DIR]\n");
      return 2;
    }
  }
  const bool keep = !dir.empty();
  if (!keep)
    dir = std::filesystem::temp_directory_path() /
          ("centermask_bench_eval_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto gt_path = dir / "gt.json", results_path = dir / "results.json";
  const bool reuse =
      keep && std::filesystem::exists(gt_path) && std::filesystem::exists(results_path);
  const pid_t child = reuse ? 0 : fork();
  if (reuse) {
    fmt::print("reusing {}\n", dir.string());
  } else if (child == 0) {
    bench::write_synthetic_ground_truth(gt_path, spec);
    bench::write_synthetic_results(gt_path, results_path, dets_per_image, 2);
    _exit(0);
  }
  if (!reuse) {
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
  }

  auto t0 = std::chrono::steady_clock::now();
  const CocoDataset gt = CocoDataset::load(gt_path);
  const double load_gt = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const CocoResults results = CocoResults::load(results_path, gt);
  const double load_results = seconds_since(t0);
  fmt::print("{} images, {} ground truth, {} detections; results file {:.1f} MiB\n",
             gt.images().size(), gt.annotations().size(), results.size(),
             static_cast<double>(std::filesystem::file_size(results_path)) / (1 << 20));
  fmt::print("load ground truth {:.3f} s, load results {:.3f} s\n", load_gt, load_results);
  const double reference[2] = {4.3, 3.9};
  for (IouType type : {IouType::kSegm, IouType::kBbox}) {
    CocoEvalParams params;
    params.iou_type = type;
    params.num_threads = threads;
    t0 = std::chrono::steady_clock::now();
    const CocoEvalResult r = evaluate_coco(gt, results, params);
    const double eval = seconds_since(t0);
    const double ref = reference[type == IouType::kSegm ? 0 : 1];
    fmt::print(
        "{}: evaluate {:.3f} s, with loading {:.3f} s; pycocotools {:.1f} s -> {:.0f}x (eval), "
        "{:.0f}x (with loading); AP {:.4f}\n",
        iou_type_name(type), eval, eval + load_gt + load_results, ref, ref / eval,
        ref / (eval + load_gt + load_results), r.stats[0]);
  }
  fmt::print("peak RSS: {:.0f} MiB\n", bench::peak_rss_mib());
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
