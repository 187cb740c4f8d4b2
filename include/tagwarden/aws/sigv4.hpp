#pragma once

#include <tagwarden/aws/credentials.hpp>
#include <tagwarden/core/error.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// AWS Signature Version 4, Authorization-header form (no presigned URLs). Pure: the time is a parameter.
// Reference: the AWS SigV4 test suite (tests/data/sigv4), cross-checked against libcurl's CURLOPT_AWS_SIGV4
// and botocore's SigV4Auth by tests/unit/aws.
namespace tagwarden::aws {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Hex SHA-256 of the empty body, the payload hash of every GET.
inline constexpr std::string_view k_empty_payload_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view k_unsigned_payload = "UNSIGNED-PAYLOAD";

struct SigningRequest {
    std::string method; // "GET", "POST", ...
    // Absolute http(s) URL as it goes on the wire: the path and query already percent-encoded (raw bytes
    // outside the unreserved set are encoded by the signer). The fragment is ignored.
    std::string url;
    // The headers the request will carry, to be signed. Names are case-insensitive; a name may repeat.
    // Without a Host header the signer signs the URL's authority as written (userinfo and a default port
    // dropped), which is what libcurl sends. Authorization and X-Amz-Date are replaced; hop-by-hop headers,
    // User-Agent, Expect and X-Amzn-Trace-Id are never signed (botocore's list).
    HeaderList headers;
    // Lowercase hex SHA-256 of the body (see sha256_hex), or UNSIGNED-PAYLOAD; empty means an empty body.
    std::string payload_hash;
};

struct SignOptions {
    // Remove "." and ".." segments and empty segments ("//") from the path. Default: every service but s3.
    std::optional<bool> normalize_path;
    // URI-encode the (already encoded) path once more, so "%20" is signed as "%2520".
    // Default: every service but s3.
    std::optional<bool> double_encode_path;
    // Add and sign X-Amz-Content-Sha256 with the payload hash. Default: only s3.
    std::optional<bool> add_content_sha256;
    // Sign X-Amz-Security-Token; when false it is still added but left out of the signature
    // (aws-c-auth's omit_session_token, for the few services that want that).
    bool sign_session_token = true;
};

struct SignedHeaders {
    // To add to the request, in this order: X-Amz-Date, X-Amz-Security-Token (with a session token),
    // X-Amz-Content-Sha256 (when asked), Authorization.
    HeaderList headers_to_add;
    std::string authorization;     // the Authorization value, also in headers_to_add
    std::string signature;         // hex
    std::string signed_headers;    // "content-type;host;x-amz-date;x-amz-target"
    std::string canonical_request; // for tests and debugging; contains the session token: never log it
    std::string string_to_sign;
};

// Signs `request` for `region` and `service` (the signing name, e.g. "ecr") at `now` (truncated to seconds).
// Returns Error{invalid_input} for a malformed request, region or service and Error{auth} for incomplete
// credentials; error messages never contain a secret, a header value or the URL's userinfo.
Result<SignedHeaders> sign(const SigningRequest& request, const Credentials& credentials,
                           std::string_view region, std::string_view service,
                           std::chrono::system_clock::time_point now, const SignOptions& options = {});

// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// "20150830T123600Z" (ISO 8601 basic, UTC), the X-Amz-Date format.
std::string format_amz_date(std::chrono::system_clock::time_point time);
// Parses the X-Amz-Date format; Error{invalid_input} otherwise.
Result<std::chrono::system_clock::time_point> parse_amz_date(std::string_view text);

} // namespace tagwarden::aws
