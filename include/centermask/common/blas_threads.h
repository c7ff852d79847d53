#pragma once
// The BLAS library's own thread pool, set at run time.
//
// Debian's LibTorch parallelises its CPU ops with OpenMP and calls OpenBLAS (the pthread build
// that libopenblas0-pthread installs) from inside those parallel regions. OpenBLAS then starts
// its own threads, one per core, beside OpenMP's: on 2 cores four busy threads fight for two,
// and a training step of the CPU recipe took twice as long (34-39 against 73-74 images/s at 192
// px, README "Throughput"). With one BLAS thread each call runs on the thread that makes it and
// LibTorch's threads are the only parallelism.

namespace centermask {

/// What set_blas_threads found and did.
struct BlasThreadsResult {
  bool found = false;  ///< a BLAS with a run-time thread setting is loaded (OpenBLAS)
  int previous = 0;    ///< its thread count before the call (0 when not found)
};

/// Sets OpenBLAS's thread count when OpenBLAS is loaded in the process (looked up by name, so
/// builds against another BLAS, or a CUDA LibTorch with MKL, are left alone). threads ≤ 0
/// leaves the library's own setting.
BlasThreadsResult set_blas_threads(int threads);
/// OpenBLAS's current thread count, or 0 when no OpenBLAS is loaded.
int blas_threads();

}  // namespace centermask
