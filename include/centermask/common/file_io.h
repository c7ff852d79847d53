#pragma once
// Whole-file reads and crash-safe writes: a write goes to a temporary file in the same folder
// that is renamed over the target only when complete, so a failure never leaves a half file
// and never destroys what was there.

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

namespace centermask {

/// Reads a whole file; InputError naming the path if it is missing, a folder or unreadable.
std::string read_file(const std::filesystem::path& path);

/// A read-only memory map of a whole file: no copy and no zero-filled buffer, which matters
/// for 450 MB annotation files. Throws InputError naming the path when it cannot be opened.
///
/// A file of 4 MB or more is also read ahead on another thread, one byte per page from the
/// front, while its owner parses it: the first access to each page costs a fault even when
/// the file is cached (microseconds each on a virtual machine such as the project's, where
/// this took 20 ms off evaluating a 38 MB results file), and the reader then finds the pages
/// already there. Destroying the map stops and joins that thread.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view text() const { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::atomic<bool> stop_reading_ahead_{false};
  std::thread read_ahead_;
};

/// A file written piece by piece that appears at `path` only on commit() (temp file in the same
/// folder + fsync + rename): for large outputs such as checkpoints, which need not be held in
/// memory whole. Destroying it uncommitted (an exception part way) removes the temp file and
/// leaves any previous file untouched. Failures are InputError naming `path`.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::filesystem::path path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, std::size_t size);
  void commit();

 private:
  [[noreturn]] void fail(const char* what);
  void abandon();
  std::filesystem::path path_;
  std::filesystem::path temp_;
  int fd_ = -1;
};

/// Writes `content` to `path` atomically (temp file + fsync + rename). InputError on failure,
/// with the previous file, if any, left untouched.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace centermask
