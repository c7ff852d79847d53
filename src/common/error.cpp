#include "centermask/common/error.h"

namespace centermask {

std::string describe_input_problem(const std::string& file, const std::string& record,
                                   const std::string& message) {
  std::string out;
  for (const std::string* part : {&file, &record}) {
    if (part->empty()) continue;
    out += *part;
    out += ": ";
  }
  out += message;
  return out;
}

}  // namespace centermask
