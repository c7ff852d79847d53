// The JSON layer alone: our pull parser against simdjson's On-Demand API (Debian's
// libsimdjson-dev), each walking a whole file — every key, every string, every number parsed
// to a double — which is the floor under any loader built on it. Built only where simdjson is
// installed; it decided that the project keeps one JSON reader, its own (docs/results).
//
//   bench_json_walk FILE [ROUNDS]     (rounds alternate the two parsers)

#include <fmt/format.h>
#include <simdjson.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "centermask/common/file_io.h"
#include "centermask/common/json_reader.h"

namespace {

struct Totals {
  double number_sum = 0;
  std::size_t numbers = 0, strings = 0, string_bytes = 0;
};

void walk_ours(centermask::json::Reader& reader, Totals& totals) {
  using centermask::json::ValueType;
  switch (reader.peek()) {
    case ValueType::kObject: {
      reader.begin_object();
      std::string_view key;
      while (reader.next_key(key)) {
        totals.string_bytes += key.size();
        walk_ours(reader, totals);
      }
      break;
    }
    case ValueType::kArray:
      reader.begin_array();
      while (reader.next_element()) walk_ours(reader, totals);
      break;
    case ValueType::kString:
      totals.string_bytes += reader.read_string().size();
      ++totals.strings;
      break;
    case ValueType::kNumber:
      totals.number_sum += reader.read_double();
      ++totals.numbers;
      break;
    case ValueType::kBool:
      reader.read_bool();
      break;
    case ValueType::kNull:
      reader.read_null();
      break;
  }
}

void walk_simdjson(simdjson::ondemand::value value, Totals& totals) {
  using simdjson::ondemand::json_type;
  switch (value.type().value()) {
    case json_type::object:
      for (auto field : value.get_object()) {
        totals.string_bytes += field.unescaped_key().value().size();
        walk_simdjson(field.value().value(), totals);
      }
      break;
    case json_type::array:
      for (auto element : value.get_array()) walk_simdjson(element.value(), totals);
      break;
    case json_type::string:
      totals.string_bytes += value.get_string().value().size();
      ++totals.strings;
      break;
    case json_type::number:
      totals.number_sum += value.get_double().value();
      ++totals.numbers;
      break;
    case json_type::boolean:
      value.get_bool().value();
      break;
    case json_type::null:
      break;
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_json_walk FILE [ROUNDS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  fmt::print("simdjson {} ({} kernel)\n", SIMDJSON_STRINGIFY(SIMDJSON_VERSION),
             simdjson::get_active_implementation()->name());
  for (int round = 1; round <= rounds; ++round) {
    Totals ours, theirs;
    auto start = std::chrono::steady_clock::now();
    {
      const centermask::MappedFile file(path);
      centermask::json::Reader reader(file.text(), path);
      walk_ours(reader, ours);
      reader.expect_end();
    }
    const double ours_s = seconds_since(start);
    start = std::chrono::steady_clock::now();
    double walk_only_s = 0;
    {
      // simdjson needs padding after the text, so the file is read into a padded copy (it
      // cannot walk our mapping in place); the copy is part of its time, as our mapping is of
      // ours.
      const simdjson::padded_string text = simdjson::padded_string::load(path).value();
      const auto walk_start = std::chrono::steady_clock::now();
      simdjson::ondemand::parser parser;
      simdjson::ondemand::document document = parser.iterate(text).value();
      walk_simdjson(document.get_value().value(), theirs);
      walk_only_s = seconds_since(walk_start);
    }
    const double theirs_s = seconds_since(start);
    if (ours.numbers != theirs.numbers || ours.strings != theirs.strings ||
        ours.string_bytes != theirs.string_bytes || ours.number_sum != theirs.number_sum) {
      fmt::print(stderr, "the two walks disagree: {} / {} numbers, {} / {} strings\n", ours.numbers,
                 theirs.numbers, ours.strings, theirs.strings);
      return 1;
    }
    fmt::print(
        "round {}: ours {:.3f} s, simdjson {:.3f} s ({:.3f} s without reading the file into its "
        "padded copy) ({} numbers, {} strings)\n",
        round, ours_s, theirs_s, walk_only_s, ours.numbers, ours.strings);
  }
  return 0;
}
