#pragma once

#include <tagwarden/core/error.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace tagwarden::policy {

// UTC instants with microsecond resolution (AWS CLI prints microseconds; the wire carries fractional
// seconds).
using TimePoint = std::chrono::sys_time<std::chrono::microseconds>;

// Parses ISO 8601 / RFC 3339 ("2025-06-15T12:00:00Z", "2025-06-15T14:00:00.123456+02:00",
// "2025-06-15 12:00:00", "2025-06-15") or epoch seconds ("1749988800", "1749988800.5").
// A date-time without an offset is UTC; a bare date is midnight UTC.
// Returns Error{invalid_input} naming what is wrong.
Result<TimePoint> parse_time(std::string_view text);

// Epoch seconds as the ECR JSON protocol sends them (possibly fractional).
Result<TimePoint> time_from_epoch_seconds(double seconds);

// "2025-06-15T12:00:00Z", with ".ffffff" only when the sub-second part is not zero.
std::string format_time(TimePoint time);

} // namespace tagwarden::policy
