#pragma once
// Reading and writing images with errors that name the file. Decoding is OpenCV's; the size
// probe reads only a PNG or JPEG header, so a whole dataset can be checked against its JSON
// without decoding every image.

#include <filesystem>
#include <opencv2/core/mat.hpp>
#include <optional>
#include <string>

namespace centermask {

struct ImageSize {
  int height = 0;
  int width = 0;
};

/// Decodes an image as 8-bit BGR. InputError naming the path when it is missing, not a
/// regular file, or does not decode.
cv::Mat read_image_bgr(const std::filesystem::path& path);

/// The size stored in a PNG or JPEG header, without decoding pixels. std::nullopt when the
/// file is missing, unreadable, of another format or has a corrupt header; `problem` (when
/// given) then says which.
std::optional<ImageSize> probe_image_size(const std::filesystem::path& path,
                                          std::string* problem = nullptr);

/// Encodes by the extension of `path` (.png, .jpg) and writes atomically (temp + rename).
void write_image(const std::filesystem::path& path, const cv::Mat& image);

}  // namespace centermask
