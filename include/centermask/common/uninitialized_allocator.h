#pragma once
// An allocator for large arrays of plain numbers that are sized first and then written in full
// (a decode into place): resize() leaves new numbers uninitialised instead of zeroing them
// (one pass over memory less), and a block of 8 MB or more is mapped on its own with
// transparent huge pages requested, so that filling it takes a page fault per 2 MB instead
// of one per 4 KB (page faults were a fifth of a whole evaluation's time).

#include <sys/mman.h>

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace centermask {

template <typename T>
class UninitializedAllocator : public std::allocator<T> {
  static_assert(std::is_trivially_default_constructible_v<T>, "for plain numbers only");
  static constexpr std::size_t kHugePage = std::size_t{2} << 20;
  static constexpr std::size_t kMappedFrom = std::size_t{8} << 20;
  static std::size_t mapped_bytes(std::size_t n) {
    return (n * sizeof(T) + kHugePage - 1) / kHugePage * kHugePage;
  }

 public:
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() noexcept = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}  // NOLINT: converting

  T* allocate(std::size_t n) {
    if (n * sizeof(T) < kMappedFrom) return std::allocator<T>::allocate(n);
    void* p = ::mmap(nullptr, mapped_bytes(n), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    ::madvise(p, mapped_bytes(n), MADV_HUGEPAGE);  // a hint: ignored where unsupported
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n * sizeof(T) < kMappedFrom) {
      std::allocator<T>::deallocate(p, n);
    } else {
      ::munmap(p, mapped_bytes(n));
    }
  }

  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialised: left as it is
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

template <typename T, typename U>
bool operator==(const UninitializedAllocator<T>&, const UninitializedAllocator<U>&) noexcept {
  return true;
}
template <typename T, typename U>
bool operator!=(const UninitializedAllocator<T>&, const UninitializedAllocator<U>&) noexcept {
  return false;
}

}  // namespace centermask
