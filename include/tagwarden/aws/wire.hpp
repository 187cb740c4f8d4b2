#pragma once

#include <tagwarden/core/error.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// Small, pure parsers for what AWS services send back: ISO 8601 and epoch-seconds timestamps, and just
// enough XML for the STS query protocol. No XML library: STS answers are flat and machine-written.
namespace tagwarden::aws {

using Clock = std::chrono::system_clock;

// ISO 8601 / RFC 3339 date-time: "2026-11-22T01:06:11Z", with optional fractional seconds (moto sends
// microseconds, AWS none), 'z', or a "+hh:mm"/"-hh:mm"/"+hhmm" offset; a space is accepted for 'T'.
Result<Clock::time_point> parse_iso8601(std::string_view text);
// "2026-11-22T01:06:11Z" (UTC, whole seconds).
std::string format_iso8601(Clock::time_point time);

// A JSON-protocol timestamp: epoch seconds as a number, possibly fractional (Smithy's epoch-seconds);
// a numeric string or an ISO 8601 string is also accepted. Error{registry} otherwise.
Result<Clock::time_point> parse_epoch_seconds(const nlohmann::json& value);
// Epoch seconds (whole).
long long to_epoch_seconds(Clock::time_point time);

// Decodes the five predefined XML entities and numeric character references (&#NN; &#xHH;).
std::string xml_unescape(std::string_view text);

// The text content of the element reached by `path` (each name found inside the previous element; tags
// may carry attributes and a namespace prefix, which is ignored), unescaped and trimmed. nullopt when an
// element on the path is missing. A self-closing element has empty text. CDATA sections are kept verbatim.
std::optional<std::string> xml_text(std::string_view xml, std::initializer_list<std::string_view> path);

// application/x-www-form-urlencoded body (RFC 3986 unreserved characters kept, everything else %XX).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

} // namespace tagwarden::aws
