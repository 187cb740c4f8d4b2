#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden {

// `text` without leading and trailing whitespace.
std::string_view trim(std::string_view text);

// The items with `separator` between them.
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

// Valid `%XX` triplets decoded; anything else ('+' included) stays literal.
std::string percent_decode(std::string_view text);

// The value of environment variable `name`, or an empty string when unset.
std::string env_or_empty(const char* name);

// UTC time as "2026-01-31T12:00:00Z" (second precision).
std::string format_utc(std::chrono::system_clock::time_point time);

} // namespace tagwarden
