#include "centermask/common/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "centermask/common/error.h"

namespace centermask {
namespace {

std::string errno_text() { return std::strerror(errno); }

// Opens a regular file for reading; returns the descriptor and sets `size`.
int open_regular_file(const std::filesystem::path& path, std::size_t& size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path.string() + ": cannot open: " + errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(path.string() + ": not a regular file");
  }
  size = static_cast<std::size_t>(st.st_size);
  return fd;
}

}  // namespace

std::string read_file(const std::filesystem::path& path) {
  std::size_t size = 0;
  const int fd = open_regular_file(path, size);
  std::string content(size, '\0');
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::read(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = errno_text();
      ::close(fd);
      throw InputError(path.string() + ": read failed: " + why);
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  content.resize(done);
  return content;
}

MappedFile::MappedFile(const std::filesystem::path& path) {
  const int fd = open_regular_file(path, size_);
  if (size_ > 0) {
    // MAP_POPULATE maps every page now, in one call, instead of a fault per page as the
    // parser walks the file (which it reads in full anyway): fewer kernel entries.
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      std::string why = errno_text();
      ::close(fd);
      throw InputError(path.string() + ": cannot map: " + why);
    }
    ::madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(p);
  }
  ::close(fd);
  constexpr std::size_t kReadAheadFrom = std::size_t{4} << 20;
  if (size_ >= kReadAheadFrom && std::thread::hardware_concurrency() > 1) {
    read_ahead_ = std::thread([this] {
      constexpr std::size_t kPage = 4096;
      unsigned char sum = 0;
      for (std::size_t i = 0; i < size_; i += kPage) {
        if ((i & ((std::size_t{1} << 20) - 1)) == 0 &&
            stop_reading_ahead_.load(std::memory_order_relaxed))
          break;
        sum = static_cast<unsigned char>(sum + static_cast<unsigned char>(data_[i]));
      }
      volatile unsigned char keep = sum;  // the reads must happen
      (void)keep;
    });
  }
}

MappedFile::~MappedFile() {
  if (read_ahead_.joinable()) {
    stop_reading_ahead_ = true;
    read_ahead_.join();
  }
  if (data_) ::munmap(const_cast<char*>(data_), size_);
}

AtomicFileWriter::AtomicFileWriter(std::filesystem::path path) : path_(std::move(path)) {
  temp_ = path_;
  temp_ += ".tmp." + std::to_string(::getpid());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(path_.string() + ": cannot create: " + errno_text());
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

void AtomicFileWriter::abandon() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(temp_.c_str());
  fd_ = -1;
}

void AtomicFileWriter::fail(const char* what) {
  const std::string why = errno_text();
  abandon();
  throw InputError(path_.string() + ": " + what + ": " + why);
}

void AtomicFileWriter::write(const void* data, std::size_t size) {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter: write after commit or failure");
  const char* bytes = static_cast<const char*>(data);
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd_, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write failed");
    done += static_cast<std::size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  if (fd_ < 0) throw std::logic_error("AtomicFileWriter: commit after commit or failure");
  if (::fsync(fd_) != 0) fail("fsync failed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(temp_.c_str());
    throw InputError(path_.string() + ": close failed: " + why);
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(temp_.c_str());
    throw InputError(path_.string() + ": rename failed: " + why);
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view content) {
  AtomicFileWriter file(path);
  file.write(content.data(), content.size());
  file.commit();
}

}  // namespace centermask
