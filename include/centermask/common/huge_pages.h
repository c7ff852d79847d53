#pragma once
// Large arrays filled once (a results file's detections, the evaluation's precision table) are
// asked to be backed by 2 MB pages: memory touched for the first time costs a page fault per
// page, and on virtual machines such as the project's a fault costs microseconds, so a few MB
// of fresh 4 KB pages took a tenth of a whole evaluation. Only a hint: where transparent huge
// pages are off, nothing changes.

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace centermask {

/// Advises 2 MB pages for the pages spanning [data, data + bytes). The range should be one
/// large allocation of its own (a reserved vector's storage): its first and last 4 KB pages
/// may be shared with neighbours, which is harmless.
inline void advise_huge_pages(const void* data, std::size_t bytes) {
  if (bytes < (std::size_t{2} << 20)) return;
  constexpr std::uintptr_t kPage = 4096;
  const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(kPage - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes + kPage - 1) & ~(kPage - 1);
  ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
  // malloc wrote its header into the first page before this advice, so that 2 MB would stay
  // in 4 KB pages: made one huge page now (MADV_COLLAPSE, Linux 6.1 and later, which older
  // C libraries do not name; elsewhere the call fails and changes nothing).
  constexpr int kCollapse = 25;
  ::madvise(reinterpret_cast<void*>(begin), std::min<std::uintptr_t>(end - begin, 2 << 20),
            kCollapse);
}

/// v.reserve(n), with the storage advised for 2 MB pages. The room is rounded up so that the
/// allocation, with the page malloc puts in front of a large block, is a whole number of 2 MB
/// pages: the kernel then places such a mapping on a 2 MB boundary, where every one of its
/// pages can be a huge page (an unaligned block's head and tail stay in 4 KB pages).
template <typename Vector>
void reserve_in_huge_pages(Vector& v, std::size_t n) {
  using T = typename Vector::value_type;
  constexpr std::size_t kHugePage = std::size_t{2} << 20, kHeader = 4096;
  std::size_t bytes = n * sizeof(T);
  if (bytes >= kHugePage)
    bytes = (bytes + kHeader + kHugePage - 1) / kHugePage * kHugePage - kHeader;
  v.reserve(std::max(n, bytes / sizeof(T)));
  advise_huge_pages(v.data(), v.capacity() * sizeof(T));
}

}  // namespace centermask
