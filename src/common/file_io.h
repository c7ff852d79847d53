#pragma once
// Whole-file reads and crash-safe writes: a write goes to a temporary file in the same folder
// that is renamed over the target only when complete, so a failure never leaves a half file
// and never destroys what was there.

#include <filesystem>
#include <string>
#include <string_view>

namespace centermask {

/// Reads a whole file; InputError naming the path if it is missing, a folder or unreadable.
std::string read_file(const std::filesystem::path& path);

/// Writes `content` to `path` atomically (temp file + fsync + rename). InputError on failure,
/// with the previous file, if any, left untouched.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace centermask
