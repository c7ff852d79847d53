#include "centermask/common/blas_threads.h"

#include <dlfcn.h>

namespace centermask {
namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// Looked up in everything the process has loaded: LibTorch brings OpenBLAS in through
// libblas.so.3 when the system's BLAS is OpenBLAS; nothing is linked against it by name.
template <typename Function>
Function find_function(const char* name) {
  return reinterpret_cast<Function>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

int blas_threads() {
  const GetThreads get = find_function<GetThreads>("openblas_get_num_threads");
  return get != nullptr ? get() : 0;
}

BlasThreadsResult set_blas_threads(int threads) {
  BlasThreadsResult result;
  const SetThreads set = find_function<SetThreads>("openblas_set_num_threads");
  if (set == nullptr) return result;
  result.found = true;
  result.previous = blas_threads();
  if (threads > 0) set(threads);
  return result;
}

}  // namespace centermask
