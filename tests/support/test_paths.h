#pragma once
// Where test inputs live, and helpers for temporary files.

#include <filesystem>
#include <functional>
#include <string>

namespace centermask::testing {

/// The project's own test data (tests/data).
std::filesystem::path test_data_dir();
/// ../shared beside the checkout, when present (CI has it; a fresh clone does not).
std::filesystem::path shared_dir();
bool has_shared_dir();

/// A fresh, empty directory under the system temp folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// The message of the std::exception `fn` throws (InputError and the like), or "no error": for
/// tests that check what an error says.
std::string error_message_of(const std::function<void()>& fn);

/// Writes `content` to `path`, creating parent folders.
void write_text(const std::filesystem::path& path, const std::string& content);
std::string read_text(const std::filesystem::path& path);

}  // namespace centermask::testing
