#pragma once
// Errors that reach the user. Every one names where the bad input is (file, record, field)
// and what was expected, so that a message alone is enough to fix the input.

#include <stdexcept>
#include <string>

namespace centermask {

/// An input the program cannot use: a missing or malformed file, a field of the wrong type,
/// an id that does not exist. `what()` is the complete, user-facing message.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Builds "FILE: RECORD: MESSAGE" with empty parts left out.
std::string describe_input_problem(const std::string& file, const std::string& record,
                                   const std::string& message);

}  // namespace centermask
