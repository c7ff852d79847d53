#pragma once
// Large arrays filled once (a results file's detections, the evaluation's precision table) are
// asked to be backed by 2 MB pages: memory touched for the first time costs a page fault per
// page, and on virtual machines such as the project's a fault costs microseconds, so a few MB
// of fresh 4 KB pages took a tenth of a whole evaluation. Only a hint: where transparent huge
// pages are off, nothing changes.

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>

namespace centermask {

/// Advises 2 MB pages for the pages spanning [data, data + bytes). The range should be one
/// large allocation of its own (a reserved vector's storage): its first and last 4 KB pages
/// may be shared with neighbours, which is harmless.
inline void advise_huge_pages(const void* data, std::size_t bytes) {
  constexpr std::uintptr_t kPage = 4096;
  const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(kPage - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes + kPage - 1) & ~(kPage - 1);
  if (bytes >= (std::size_t{2} << 20))
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

/// v.reserve(n), with the storage advised for 2 MB pages.
template <typename Vector>
void reserve_in_huge_pages(Vector& v, std::size_t n) {
  v.reserve(n);
  advise_huge_pages(v.data(), v.capacity() * sizeof(typename Vector::value_type));
}

}  // namespace centermask
