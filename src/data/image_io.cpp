#include "centermask/data/image_io.h"

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <system_error>
#include <vector>

#include "centermask/common/error.h"
#include "centermask/common/file_io.h"

namespace centermask {
namespace {

std::uint32_t big_endian(const unsigned char* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

bool set_problem(std::string* problem, std::string text) {
  if (problem) *problem = std::move(text);
  return false;
}

bool probe_png(std::ifstream& in, ImageSize* size, std::string* problem) {
  // Signature (8) + IHDR chunk length (4) + "IHDR" (4) + width (4) + height (4).
  std::array<unsigned char, 24> head{};
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(head.data()), head.size()))
    return set_problem(problem, "PNG header is truncated");
  if (std::string(reinterpret_cast<const char*>(head.data()) + 12, 4) != "IHDR")
    return set_problem(problem, "PNG does not start with an IHDR chunk");
  size->width = static_cast<int>(big_endian(head.data() + 16, 4));
  size->height = static_cast<int>(big_endian(head.data() + 20, 4));
  return true;
}

bool probe_jpeg(std::ifstream& in, ImageSize* size, std::string* problem) {
  // Walk the marker segments up to the first start-of-frame (SOF0..SOF15 without DHT C4,
  // JPG C8 and DAC CC), which holds the height and width.
  in.seekg(2);
  for (int guard = 0; guard < 1000; ++guard) {
    unsigned char marker[2];
    if (!in.read(reinterpret_cast<char*>(marker), 2))
      return set_problem(problem, "JPEG ends before its frame header");
    if (marker[0] != 0xFF) return set_problem(problem, "JPEG marker expected");
    if (marker[1] == 0xFF) {  // fill byte
      in.seekg(-1, std::ios::cur);
      continue;
    }
    if (marker[1] == 0xD8 || (marker[1] >= 0xD0 && marker[1] <= 0xD7)) continue;
    if (marker[1] == 0xD9 || marker[1] == 0xDA)
      return set_problem(problem, "JPEG has no frame header before its scan");
    unsigned char len_bytes[2];
    if (!in.read(reinterpret_cast<char*>(len_bytes), 2))
      return set_problem(problem, "JPEG segment is truncated");
    const std::uint32_t length = big_endian(len_bytes, 2);
    if (length < 2) return set_problem(problem, "JPEG segment length is invalid");
    const bool is_frame = marker[1] >= 0xC0 && marker[1] <= 0xCF && marker[1] != 0xC4 &&
                          marker[1] != 0xC8 && marker[1] != 0xCC;
    if (is_frame) {
      unsigned char frame[5];
      if (!in.read(reinterpret_cast<char*>(frame), 5))
        return set_problem(problem, "JPEG frame header is truncated");
      size->height = static_cast<int>(big_endian(frame + 1, 2));
      size->width = static_cast<int>(big_endian(frame + 3, 2));
      return true;
    }
    in.seekg(static_cast<std::streamoff>(length) - 2, std::ios::cur);
  }
  return set_problem(problem, "JPEG has too many segments before its frame header");
}

}  // namespace

cv::Mat read_image_bgr(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(describe_input_problem(
        path.string(), "",
        std::filesystem::exists(path, ec) ? "not a regular file" : "image file does not exist"));
  }
  cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (image.empty()) {
    throw InputError(describe_input_problem(
        path.string(), "", "image does not decode (corrupt or unsupported format)"));
  }
  return image;
}

std::optional<ImageSize> probe_image_size(const std::filesystem::path& path, std::string* problem) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    set_problem(problem, "image file does not exist or cannot be read");
    return std::nullopt;
  }
  unsigned char magic[8] = {};
  in.read(reinterpret_cast<char*>(magic), 8);
  if (in.gcount() < 3) {
    set_problem(problem, "image file is empty or truncated");
    return std::nullopt;
  }
  ImageSize size;
  bool ok = false;
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (in.gcount() == 8 && std::equal(magic, magic + 8, kPng)) {
    in.clear();
    ok = probe_png(in, &size, problem);
  } else if (magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) {
    in.clear();
    ok = probe_jpeg(in, &size, problem);
  } else {
    set_problem(problem, "not a PNG or JPEG file");
    return std::nullopt;
  }
  if (!ok) return std::nullopt;
  if (size.width <= 0 || size.height <= 0) {
    set_problem(problem, "image header gives a zero size");
    return std::nullopt;
  }
  return size;
}

void write_image(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<unsigned char> encoded;
  const std::string ext = path.extension().string();
  bool ok = false;
  try {
    ok = cv::imencode(ext.empty() ? ".png" : ext, image, encoded);
  } catch (const cv::Exception& e) {
    throw InputError(
        describe_input_problem(path.string(), "", std::string("cannot encode image: ") + e.what()));
  }
  if (!ok) throw InputError(describe_input_problem(path.string(), "", "cannot encode image"));
  write_file_atomically(
      path, std::string_view(reinterpret_cast<const char*>(encoded.data()), encoded.size()));
}

}  // namespace centermask
