#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/http/transport.hpp>
#include <tagwarden/http/url.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

namespace tagwarden::http {

namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

// Parses Retry-After: delta-seconds or an IMF-fixdate HTTP-date. Returns nullopt when unreadable.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
    if (!value.empty() && std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        // Any number of digits: a value too large for a long is as good as "a very long time".
        if (value.size() > 9)
            return std::chrono::milliseconds::max();
        return std::chrono::seconds(std::stol(value));
    }
    std::tm tm{};
    if (strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr)
        return std::nullopt;
    auto when = std::chrono::system_clock::from_time_t(timegm(&tm));
    auto now = std::chrono::system_clock::now();
    if (when <= now)
        return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(when - now);
}

class RetryTransport final : public Transport {
public:
    RetryTransport(std::shared_ptr<Transport> inner, RetryPolicy policy)
        : m_inner(std::move(inner)), m_policy(policy) {}

    Result<Response> send(const Request& request) override {
        for (int attempt = 1;; ++attempt) {
            auto r = m_inner->send(request);
            bool last = attempt >= m_policy.max_attempts || !request.retryable;
            std::optional<std::string> retry_after;
            std::string reason;
            if (!r) {
                if (last || !r.error().transient)
                    return r;
                reason = r.error().message;
            } else {
                if (last || !RetryPolicy::retryable_response(*r))
                    return r;
                retry_after = r->headers.get("Retry-After");
                reason = "HTTP " + std::to_string(r->status);
            }
            if (request.body && !request.body->rewind())
                return r;
            auto d = m_policy.delay(attempt, retry_after);
            log_retry(request.method + " " + redact_url(request.url), attempt, m_policy.max_attempts, d, reason);
            if (!sleep_for(d))
                return std::unexpected(cancelled_wait(request.method + " " + redact_url(request.url)));
        }
    }

private:
    std::shared_ptr<Transport> m_inner;
    RetryPolicy m_policy;
};

} // namespace

void Headers::set(std::string name, std::string value) {
    remove(name);
    add(std::move(name), std::move(value));
}

void Headers::remove(std::string_view name) {
    std::erase_if(m_fields, [&](const auto& f) { return iequal(f.first, name); });
}

std::optional<std::string> Headers::get(std::string_view name) const {
    for (const auto& [n, v] : m_fields)
        if (iequal(n, name))
            return v;
    return std::nullopt;
}

std::vector<std::string> Headers::get_all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : m_fields)
        if (iequal(n, name))
            out.push_back(v);
    return out;
}

Result<std::size_t> StringBody::read(char* buffer, std::size_t size) {
    std::size_t n = std::min(size, m_data.size() - m_offset);
    std::memcpy(buffer, m_data.data() + m_offset, n);
    m_offset += n;
    return n;
}

bool RetryPolicy::retryable_status(int status) {
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool RetryPolicy::retryable_response(const Response& response) {
    if (retryable_status(response.status))
        return true;
    // The distribution spec's "try again later" codes, whatever status carries them.
    return response.status >= 400 && response.body.size() < 64 * 1024 &&
           (response.body.find("\"TOOMANYREQUESTS\"") != std::string::npos ||
            response.body.find("\"UNAVAILABLE\"") != std::string::npos);
}

std::chrono::milliseconds RetryPolicy::delay(int attempt, const std::optional<std::string>& retry_after) const {
    if (retry_after) {
        // Honoured as asked, up to max_retry_after; the run's --timeout ends the wait earlier if it must.
        if (auto d = parse_retry_after(*retry_after))
            return std::min(*d, max_retry_after);
    }
    // Full jitter on an exponential ceiling.
    std::chrono::milliseconds ceiling = base_delay * (1LL << std::min(attempt - 1, 16));
    ceiling = std::min(ceiling, max_delay);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<long long> dist(ceiling.count() / 2, ceiling.count());
    return std::chrono::milliseconds(dist(rng));
}

std::unique_ptr<Transport> make_retry_transport(std::shared_ptr<Transport> inner, RetryPolicy policy) {
    return std::make_unique<RetryTransport>(std::move(inner), policy);
}

bool sleep_for(std::chrono::milliseconds d) { return cancel::sleep_for(d); }

Error cancelled_wait(std::string_view what) { return cancel::cancelled_error(std::string(what)); }

void log_retry(std::string_view what, int attempt, int max_attempts, std::chrono::milliseconds delay,
               const std::string& reason) {
    log::warn(std::string(what) + ": " + reason + "; retrying in " + std::to_string(delay.count()) + " ms (attempt " +
              std::to_string(attempt + 1) + " of " + std::to_string(max_attempts) + ")");
}

} // namespace tagwarden::http
