#pragma once

// Typed reads of JSON that came from outside (a registry, a token endpoint, a docker config, a lock backend).
// nlohmann's value() throws type_error when the key holds another type, or when the document is not an
// object; these never throw. Each returns `fallback` when `o` is not an object or has no `key`, and nullopt
// when `key` holds a value of another type, so the caller can name the field in its error.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tagwarden {

std::optional<std::string> string_field(const nlohmann::json& o, std::string_view key, std::string fallback = {});
std::optional<std::int64_t> int_field(const nlohmann::json& o, std::string_view key, std::int64_t fallback);
std::optional<bool> bool_field(const nlohmann::json& o, std::string_view key, bool fallback);

// The array at `key`, or nullptr when `o` is not an object or `key` is absent or not an array.
const nlohmann::json* array_field(const nlohmann::json& o, std::string_view key);

} // namespace tagwarden
