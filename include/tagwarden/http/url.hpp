#pragma once

#include <tagwarden/core/error.hpp>

#include <string>
#include <string_view>

namespace tagwarden::http {

struct Url {
    std::string scheme;  // "http" or "https"
    std::string host;    // host[:port] as written (IPv6 in brackets)
    std::string target;  // path and query, starting with '/'

    // Parses an absolute http(s) URL.
    static Result<Url> parse(std::string_view text);
    [[nodiscard]] std::string str() const { return scheme + "://" + host + target; }
    // scheme://host[:port] with the default port made explicit, for same-origin checks.
    [[nodiscard]] std::string origin() const;
};

// Resolves `reference` (absolute URL, absolute path, or relative path) against `base` (RFC 3986, enough for
// registry Location and Link headers).
Result<std::string> resolve_url(std::string_view base, std::string_view reference);
// Whether two absolute URLs share scheme, host and port.
bool same_origin(std::string_view a, std::string_view b);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string url_encode(std::string_view text);
// The URL as logs and errors may show it: no user:password@, and the query replaced by "?…" (presigned URLs
// carry credentials there: X-Amz-Security-Token, X-Goog-Signature, sig=).
std::string redact_url(std::string_view url);
// Appends "name=value" (value encoded) to a URL with '?' or '&' as needed.
std::string append_query(std::string_view url, std::string_view name, std::string_view value);

} // namespace tagwarden::http
