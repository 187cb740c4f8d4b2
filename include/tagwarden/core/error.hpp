#pragma once

#include <expected>
#include <string>
#include <utility>

namespace tagwarden {

// What went wrong, in the classes the CLI maps to exit codes (see exit_code()).
enum class ErrorKind {
    internal,          // a bug or an unexpected local failure            -> 1
    invalid_input,     // usage, bad reference, malformed layout, ...     -> 2
    guard_refused,     // a preflight guard refused the operation          -> 3
    tag_conflict,      // a tag exists with another digest                 -> 4
    lock_unavailable,  // a tag lock could not be acquired                 -> 5
    verification,      // post-push verification failed                    -> 6
    auth,              // authentication or authorization failed           -> 7
    registry,          // registry or network error after retries          -> 8
    not_found,         // the registry answered 404; callers usually reclassify -> 8
    cancelled,         // SIGINT/SIGTERM: the run stopped and undid its tags -> 130 / 143
};

struct Error {
    ErrorKind kind = ErrorKind::internal;
    std::string message;
    int http_status = 0;        // 0 when the error did not come from an HTTP response
    std::string registry_code;  // first OCI error code from the body (MANIFEST_INVALID, DENIED, ...)
    bool transient = false;     // worth retrying (network reset, 5xx, 429)
    std::string retry_after;    // the server's Retry-After, when it sent one (honoured by every retry loop)

    Error() = default;
    Error(ErrorKind k, std::string msg) : kind(k), message(std::move(msg)) {}

    // Returns a copy whose message is "context: message".
    [[nodiscard]] Error with_context(const std::string& context) const {
        Error e = *this;
        e.message = context + ": " + message;
        return e;
    }
};

template <class T> using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(ErrorKind kind, std::string message) {
    return std::unexpected(Error(kind, std::move(message)));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected(std::move(e)); }

// The documented process exit code for an error kind. `cancelled` is 128 + the signal that cancelled the
// run (130 for SIGINT, 143 for SIGTERM).
int exit_code(ErrorKind kind);
const char* kind_name(ErrorKind kind);

} // namespace tagwarden

// Propagate an error from an expression returning Result/Status.
#define TW_TRY(expr)                                                                                         \
    do {                                                                                                     \
        auto&& tw_try_result_ = (expr);                                                                      \
        if (!tw_try_result_)                                                                                 \
            return std::unexpected(std::move(tw_try_result_).error());                                       \
    } while (0)
