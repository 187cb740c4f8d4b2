#include <tagwarden/http/transport.hpp>
#include <tagwarden/http/url.hpp>

#include <catch2/catch.hpp>

#include <deque>

using namespace tagwarden;
using namespace tagwarden::http;

TEST_CASE("URL resolution for Location and Link headers", "[unit][http]") {
    const std::string base = "http://127.0.0.1:5000/v2/app/blobs/uploads/";
    CHECK(*resolve_url(base, "/v2/app/blobs/uploads/uuid?_state=x") == "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid?_state=x");
    CHECK(*resolve_url(base, "https://s3.example.com/bucket/x") == "https://s3.example.com/bucket/x");
    CHECK(*resolve_url(base, "uuid") == "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid");
    CHECK(*resolve_url("https://r/v2/app/tags/list?n=1", "?n=1&last=b") == "https://r/v2/app/tags/list?n=1&last=b");
    CHECK(*resolve_url("https://r/a", "//cdn.example.com/x") == "https://cdn.example.com/x");
}

TEST_CASE("same origin includes default ports", "[unit][http]") {
    CHECK(same_origin("https://r.example.com/a", "https://r.example.com:443/b"));
    CHECK(same_origin("http://127.0.0.1:5000/a", "http://127.0.0.1:5000/b?x"));
    CHECK_FALSE(same_origin("https://r.example.com/a", "https://s3.amazonaws.com/b"));
    CHECK_FALSE(same_origin("http://r:5000/a", "https://r:5000/a"));
    CHECK_FALSE(same_origin("http://r:5000/a", "http://r:5001/a"));
    auto u = Url::parse("https://user:pw@r.example.com/x");
    REQUIRE(u);
    CHECK(u->host == "r.example.com");
}

TEST_CASE("query encoding", "[unit][http]") {
    CHECK(url_encode("repository:a/b:pull,push") == "repository%3Aa%2Fb%3Apull%2Cpush");
    CHECK(append_query("http://r/x", "digest", "sha256:ab") == "http://r/x?digest=sha256%3Aab");
    CHECK(append_query("http://r/x?_state=1", "digest", "d") == "http://r/x?_state=1&digest=d");
}

namespace {
// A scripted transport: each send() pops the next outcome.
class ScriptedTransport final : public Transport {
public:
    std::deque<Result<Response>> script;
    int calls = 0;
    Result<Response> send(const Request&) override {
        ++calls;
        auto r = script.front();
        script.pop_front();
        return r;
    }
};

Response status(int code, std::optional<std::string> retry_after = std::nullopt) {
    Response r;
    r.status = code;
    if (retry_after)
        r.headers.add("Retry-After", *retry_after);
    return r;
}

RetryPolicy fast_policy() {
    RetryPolicy p;
    p.max_attempts = 4;
    p.base_delay = std::chrono::milliseconds(1);
    p.max_delay = std::chrono::milliseconds(2);
    return p;
}
} // namespace

TEST_CASE("retry transport: 503 then 200", "[unit][http][retry]") {
    auto inner = std::make_shared<ScriptedTransport>();
    inner->script = {status(503), status(429, "0"), status(200)};
    auto t = make_retry_transport(inner, fast_policy());
    auto r = t->send(Request{});
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(inner->calls == 3);
}

TEST_CASE("retry transport: gives up after max attempts and returns the last response", "[unit][http][retry]") {
    auto inner = std::make_shared<ScriptedTransport>();
    for (int i = 0; i < 4; ++i)
        inner->script.push_back(status(502));
    auto r = make_retry_transport(inner, fast_policy())->send(Request{});
    REQUIRE(r);
    CHECK(r->status == 502);
    CHECK(inner->calls == 4);
}

TEST_CASE("retry transport: no retry for 4xx, non-transient errors, or non-retryable requests",
          "[unit][http][retry]") {
    auto inner = std::make_shared<ScriptedTransport>();
    inner->script = {status(404)};
    CHECK(make_retry_transport(inner, fast_policy())->send(Request{})->status == 404);
    CHECK(inner->calls == 1);

    auto tls = std::make_shared<ScriptedTransport>();
    Error e(ErrorKind::registry, "certificate");
    e.transient = false;
    tls->script = {std::unexpected(e)};
    CHECK_FALSE(make_retry_transport(tls, fast_policy())->send(Request{}));
    CHECK(tls->calls == 1);

    auto once = std::make_shared<ScriptedTransport>();
    once->script = {status(503)};
    Request no_retry;
    no_retry.retryable = false;
    CHECK(make_retry_transport(once, fast_policy())->send(no_retry)->status == 503);
    CHECK(once->calls == 1);
}

TEST_CASE("retry transport: transient connection errors are retried", "[unit][http][retry]") {
    auto inner = std::make_shared<ScriptedTransport>();
    Error reset(ErrorKind::registry, "connection reset");
    reset.transient = true;
    inner->script = {std::unexpected(reset), status(201)};
    auto r = make_retry_transport(inner, fast_policy())->send(Request{});
    REQUIRE(r);
    CHECK(r->status == 201);
}

TEST_CASE("retry policy delays", "[unit][http][retry]") {
    RetryPolicy p;
    p.base_delay = std::chrono::milliseconds(100);
    p.max_delay = std::chrono::milliseconds(1000);
    for (int attempt = 1; attempt < 10; ++attempt) {
        auto d = p.delay(attempt, std::nullopt);
        CHECK(d <= std::chrono::milliseconds(1000));
        CHECK(d >= std::chrono::milliseconds(50));
    }
    CHECK(p.delay(1, std::string("3")) == std::chrono::milliseconds(3000));
    CHECK(p.delay(1, std::string("Wed, 21 Oct 2015 07:28:00 GMT")) == std::chrono::milliseconds(0));
    CHECK(RetryPolicy::retryable_status(429));
    CHECK(RetryPolicy::retryable_status(503));
    CHECK_FALSE(RetryPolicy::retryable_status(501));
    CHECK_FALSE(RetryPolicy::retryable_status(400));
}

TEST_CASE("retry_sequence retries transient failures only", "[unit][http][retry]") {
    int calls = 0;
    auto r = retry_sequence<int>(fast_policy(), "test", [&]() -> Result<int> {
        ++calls;
        if (calls < 3) {
            Error e(ErrorKind::registry, "reset");
            e.transient = true;
            return std::unexpected(e);
        }
        return 7;
    });
    REQUIRE(r);
    CHECK(*r == 7);
    CHECK(calls == 3);

    calls = 0;
    auto bad = retry_sequence<int>(fast_policy(), "test", [&]() -> Result<int> {
        ++calls;
        return fail(ErrorKind::invalid_input, "digest mismatch");
    });
    CHECK_FALSE(bad);
    CHECK(calls == 1);
}

TEST_CASE("URLs in logs and errors lose their query and user info", "[unit][http][redact]") {
    CHECK(redact_url("https://bucket.s3.amazonaws.com/x?X-Amz-Security-Token=SECRET&X-Amz-Signature=abc") ==
          "https://bucket.s3.amazonaws.com/x?…");
    CHECK(redact_url("https://user:pw@r.example.com/v2/?sig=s") == "https://r.example.com/v2/?…");
    CHECK(redact_url("http://127.0.0.1:5000/v2/app/blobs/uploads/uuid") == "http://127.0.0.1:5000/v2/app/blobs/uploads/uuid");
    CHECK(redact_url("https://r/a#frag") == "https://r/a");
    CHECK(redact_url("https://r/p@x") == "https://r/p@x");
}
