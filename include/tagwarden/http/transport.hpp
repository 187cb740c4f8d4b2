#pragma once

#include <tagwarden/core/error.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tagwarden::http {

// Header fields in order; lookups are case-insensitive.
class Headers {
public:
    void add(std::string name, std::string value) { m_fields.emplace_back(std::move(name), std::move(value)); }
    // Replaces every field called `name` with one.
    void set(std::string name, std::string value);
    void remove(std::string_view name);
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
    [[nodiscard]] std::vector<std::string> get_all(std::string_view name) const;
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& fields() const { return m_fields; }

private:
    std::vector<std::pair<std::string, std::string>> m_fields;
};

// A request body that is streamed to the server, never held whole by the transport.
class BodySource {
public:
    virtual ~BodySource() = default;
    // Reads up to `size` bytes. Returns the count (0 at the end) or an error, which aborts the request
    // and is returned from Transport::send unchanged.
    virtual Result<std::size_t> read(char* buffer, std::size_t size) = 0;
    // The exact length, sent as Content-Length.
    [[nodiscard]] virtual std::uint64_t size() const = 0;
    // Starts over for a resend. Returns false when the body cannot be replayed.
    virtual bool rewind() = 0;
};

class StringBody final : public BodySource {
public:
    explicit StringBody(std::string data) : m_data(std::move(data)) {}
    Result<std::size_t> read(char* buffer, std::size_t size) override;
    [[nodiscard]] std::uint64_t size() const override { return m_data.size(); }
    bool rewind() override {
        m_offset = 0;
        return true;
    }

private:
    std::string m_data;
    std::size_t m_offset = 0;
};

struct Request {
    std::string method = "GET";
    std::string url;  // absolute http:// or https:// URL
    Headers headers;
    std::shared_ptr<BodySource> body;  // null: no body
    // Whether the transport may resend this request on its own (408, 429, 5xx, connection failures).
    // Multi-request sequences (a blob upload) set false and are retried whole by their owner.
    bool retryable = true;
    // Redirects are followed for GET and HEAD only; Authorization is dropped when the host changes.
    bool follow_redirects = true;
    // When set, a 2xx response body is streamed here instead of being collected into Response::body.
    // An error returned from the sink aborts the transfer and is returned from send().
    std::function<Status(const char*, std::size_t)> body_sink;
    // Responses larger than this (when collected) fail the request.
    std::size_t max_body = 16 * 1024 * 1024;
    // Called right before every send of this request, retries and re-authenticated resends included; an
    // error stops the request unsent and is returned. Tag writes use it for fencing (the lock must still
    // be held, with more time left than `timeout`).
    std::function<Status()> before_send;
    // The whole exchange must finish within this (0: only the stall limit applies).
    std::chrono::milliseconds timeout{0};
    // Polled about once a second while the transfer runs (from the sending thread); true aborts it and
    // send() returns an error. For a streamed body whose consumer went away before the first byte came.
    std::function<bool()> abort_if;
};

struct Response {
    int status = 0;
    Headers headers;
    std::string body;       // empty when streamed to Request::body_sink
    std::string final_url;  // after redirects
};

// Sends one request. Returns the response whatever its status, or an Error for a failure that produced
// no response (DNS, connection refused or reset, TLS, timeouts: Error{registry, transient}).
// Cancellation (core/cancel.hpp): a thread that should stop sends nothing, and a transfer in progress is
// aborted within about a second; both return Error{cancelled}.
class Transport {
public:
    virtual ~Transport() = default;
    virtual Result<Response> send(const Request& request) = 0;
};

struct TransportOptions {
    std::string ca_file;          // extra CA bundle for TLS verification (verification is always on)
    std::string user_agent = "tagwarden";
    std::chrono::seconds connect_timeout{30};
    // A transfer slower than 1 KiB/s for this long is aborted as stalled.
    std::chrono::seconds stall_timeout{60};
    // Host pinning as curl's --resolve: "HOST:PORT:ADDRESS" entries (TAGWARDEN_RESOLVE), for registries
    // reached through a tunnel, a private endpoint without DNS, or a test bed.
    std::vector<std::string> resolve;
    // Connect to this unix socket instead of the URL's host (the Docker Engine API); proxies are not used.
    std::string unix_socket;
    // A TLS client certificate and its key, PEM files (the Docker Engine API over tcp:// with DOCKER_CERT_PATH).
    std::string client_cert;
    std::string client_key;
};

// The libcurl transport. Proxies come from the environment (http_proxy, https_proxy, no_proxy).
// Thread-safe: each thread borrows a pooled easy handle, so connections are reused.
std::unique_ptr<Transport> make_curl_transport(TransportOptions options);

// Retry policy: the one place where retry decisions are made.
struct RetryPolicy {
    int max_attempts = 5;
    std::chrono::milliseconds base_delay{250};
    std::chrono::milliseconds max_delay{8000};
    // A server's Retry-After is honoured up to this (the command's --timeout may end the wait sooner).
    std::chrono::milliseconds max_retry_after{std::chrono::minutes(15)};

    // Whether a response status is worth retrying (408, 429, 500, 502, 503, 504).
    [[nodiscard]] static bool retryable_status(int status);
    // A retryable status, or an error body whose code is TOOMANYREQUESTS or UNAVAILABLE.
    [[nodiscard]] static bool retryable_response(const Response& response);
    // The delay before attempt `attempt` (1-based count of failures so far), jittered, honouring a
    // Retry-After value (seconds or HTTP-date) when the server sent one.
    [[nodiscard]] std::chrono::milliseconds delay(int attempt, const std::optional<std::string>& retry_after) const;
};

// Wraps a transport and resends retryable requests per the policy.
std::unique_ptr<Transport> make_retry_transport(std::shared_ptr<Transport> inner, RetryPolicy policy);

// Runs `attempt` until it succeeds, fails with a non-transient error, or the policy's attempts run out.
// For multi-request sequences whose inner requests are not retried individually.
template <class T, class F> Result<T> retry_sequence(const RetryPolicy& policy, std::string_view what, F&& attempt);

// Sleeps for `d` unless the run is cancelled first (then returns false).
bool sleep_for(std::chrono::milliseconds d);
// Error{cancelled} for a retry wait that a signal ended.
Error cancelled_wait(std::string_view what);
void log_retry(std::string_view what, int attempt, int max_attempts, std::chrono::milliseconds delay,
               const std::string& reason);

template <class T, class F> Result<T> retry_sequence(const RetryPolicy& policy, std::string_view what, F&& attempt) {
    for (int i = 1;; ++i) {
        Result<T> r = attempt();
        if (r || !r.error().transient || i >= policy.max_attempts)
            return r;
        auto d = policy.delay(i, r.error().retry_after.empty() ? std::nullopt
                                                               : std::optional<std::string>(r.error().retry_after));
        log_retry(what, i, policy.max_attempts, d, r.error().message);
        if (!sleep_for(d))
            return std::unexpected(cancelled_wait(what));
    }
}

} // namespace tagwarden::http
