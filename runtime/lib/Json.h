//===- Json.h - A small JSON reader and writer ------------------*- C++ -*-===//
//
// Enough JSON for safetensors headers: objects keep their member order,
// integers are exact 64-bit values, nesting is limited so that a hostile
// file cannot exhaust the stack.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_JSON_H
#define GALVATRON_RUNTIME_JSON_H

#include "galvatron/Runtime/Status.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace galvatron::runtime {

struct JsonValue {
  enum class Kind { null, boolean, integer, real, string, array, object };
  Kind kind = Kind::null;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string string;
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;

  /// The member called `key` of an object, or null.
  const JsonValue *get(std::string_view key) const;
};

Expected<JsonValue> parseJson(std::string_view text);

/// `text` as a JSON string literal, quotes included.
std::string quoteJson(std::string_view text);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_JSON_H
