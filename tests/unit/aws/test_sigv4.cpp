// SigV4 rules one at a time. Inputs and expectations follow the AWS test-suite cases that
// tests/data/sigv4 does not carry (get-header-*, get-utf8, get-unreserved, get-vanilla-*-query*,
// normalize-path/*, get-vanilla-with-session-token, post-sts-header-*), with the suite's fixed inputs.

#include <tagwarden/aws/sigv4.hpp>

#include <catch2/catch.hpp>

#include <sstream>
#include <vector>

using namespace tagwarden;
using namespace std::chrono_literals;

namespace {

const aws::Credentials k_credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
// aws-c-auth v4/get-vanilla-with-session-token/context.json
const std::string k_session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

std::chrono::system_clock::time_point suite_time() {
    auto t = aws::parse_amz_date("20150830T123600Z");
    REQUIRE(t);
    return *t;
}

aws::SignedHeaders sign_ok(const aws::SigningRequest& request, std::string_view service = "service",
                           const aws::SignOptions& options = {},
                           const aws::Credentials& credentials = k_credentials) {
    auto result = aws::sign(request, credentials, "us-east-1", service, suite_time(), options);
    if (!result)
        FAIL("sign failed: " << result.error().message);
    return *result;
}

aws::SigningRequest get(std::string url, aws::HeaderList headers = {}) {
    return {"GET", std::move(url), std::move(headers), ""};
}

// The canonical request's lines: method, URI, query, header lines..., "", signed headers, payload hash.
std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::string canonical_uri(const std::string& url, std::string_view service = "service") {
    return lines(sign_ok(get(url), service).canonical_request).at(1);
}

std::string canonical_query(const std::string& url) {
    return lines(sign_ok(get(url)).canonical_request).at(2);
}

// The canonical header lines (without the blank line that ends them).
std::vector<std::string> canonical_headers(const aws::SignedHeaders& s) {
    auto all = lines(s.canonical_request);
    return {all.begin() + 3, all.end() - 3};
}

std::optional<std::string> added(const aws::SignedHeaders& s, std::string_view name) {
    for (const auto& [n, v] : s.headers_to_add)
        if (n == name)
            return v;
    return std::nullopt;
}

} // namespace

TEST_CASE("sha256_hex", "[unit][sigv4]") {
    CHECK(aws::sha256_hex("") == aws::k_empty_payload_sha256);
    CHECK(aws::sha256_hex("Param1=value1") ==
          "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e");
}

TEST_CASE("X-Amz-Date formatting and parsing", "[unit][sigv4]") {
    using namespace std::chrono;
    auto t = sys_days{2024y / February / 29} + 23h + 59min + 59s;
    CHECK(aws::format_amz_date(t) == "20240229T235959Z");
    CHECK(aws::format_amz_date(t + 999ms) == "20240229T235959Z");
    CHECK(aws::format_amz_date(t + 1s) == "20240301T000000Z");
    CHECK(aws::parse_amz_date("20240229T235959Z") == t);
    for (const char* bad : {"", "20240229T235959", "2024-02-29T23:59:59Z", "20230229T000000Z",
                            "20240229T240000Z", "20241301T000000Z", "2024022xT000000Z", "20240229t235959z"}) {
        INFO(bad);
        auto r = aws::parse_amz_date(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::invalid_input);
    }
}

TEST_CASE("the time is truncated to seconds and sets the scope date", "[unit][sigv4]") {
    auto a = aws::sign(get("https://example.amazonaws.com/"), k_credentials, "us-east-1", "service",
                       suite_time() + 999ms);
    REQUIRE(a);
    CHECK(a->signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"); // get-vanilla

    auto midnight = aws::parse_amz_date("20150831T000000Z");
    REQUIRE(midnight);
    auto b =
        aws::sign(get("https://example.amazonaws.com/"), k_credentials, "eu-west-1", "ecr", *midnight - 1s);
    REQUIRE(b);
    CHECK_THAT(b->authorization,
               Catch::StartsWith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/ecr/"
                                 "aws4_request, SignedHeaders=host;x-amz-date, Signature="));
    CHECK(added(*b, "X-Amz-Date") == "20150830T235959Z");
}

TEST_CASE("canonical URI: normalisation of . .. and // (normalize-path cases)", "[unit][sigv4]") {
    CHECK(canonical_uri("https://example.amazonaws.com/example1/example2/../..") ==
          "/");                                                                    // get-relative-relative
    CHECK(canonical_uri("https://example.amazonaws.com/example/..") == "/");       // get-relative
    CHECK(canonical_uri("https://example.amazonaws.com/./") == "/");               // get-slash-dot-slash
    CHECK(canonical_uri("https://example.amazonaws.com/./example") == "/example"); // get-slash-pointless-dot
    CHECK(canonical_uri("https://example.amazonaws.com//") == "/");                // get-slash
    CHECK(canonical_uri("https://example.amazonaws.com//example//") == "/example/"); // get-slashes
    CHECK(canonical_uri("https://example.amazonaws.com/a/b/../c/./d/") == "/a/c/d/");
    CHECK(canonical_uri("https://example.amazonaws.com/../a") == "/a");
    CHECK(canonical_uri("https://example.amazonaws.com") == "/");
    CHECK(canonical_uri("https://example.amazonaws.com?a=b") == "/");
    CHECK(canonical_uri("https://example.amazonaws.com/a#/../b") == "/a");
}

TEST_CASE("canonical URI: encoding (get-space, get-utf8, get-unreserved) and double encoding",
          "[unit][sigv4]") {
    CHECK(canonical_uri("https://example.amazonaws.com/example space/") == "/example%20space/");
    CHECK(canonical_uri("https://example.amazonaws.com/\xE1\x88\xB4") == "/%E1%88%B4");
    const std::string unreserved = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    CHECK(canonical_uri("https://example.amazonaws.com" + unreserved) == unreserved);

    SECTION("every service but s3 encodes the already-encoded path once more") {
        CHECK(canonical_uri("https://example.amazonaws.com/a%20b/c%2Fd:e", "ecr") == "/a%2520b/c%252Fd%3Ae");
    }
    SECTION("s3 signs the path as sent, neither normalised nor double-encoded") {
        CHECK(canonical_uri("https://bucket.s3.amazonaws.com/a%20b//./c%2Fd", "s3") == "/a%20b//./c%2Fd");
        CHECK(canonical_uri("https://bucket.s3.amazonaws.com/a b/\xE1\x88\xB4", "s3") == "/a%20b/%E1%88%B4");
    }
    SECTION("options override the service default") {
        aws::SignOptions raw;
        raw.normalize_path = false;
        raw.double_encode_path = false;
        auto s = sign_ok(get("https://example.amazonaws.com/a/../b%20c"), "service", raw);
        CHECK(lines(s.canonical_request).at(1) == "/a/../b%20c");
    }
}

TEST_CASE("canonical query string", "[unit][sigv4]") {
    const std::string base = "https://example.amazonaws.com/?";
    CHECK(canonical_query(base + "Param2=value2&Param1=value1") ==
          "Param1=value1&Param2=value2"); // order-key-case
    CHECK(canonical_query(base + "Param1=value2&Param1=Value1") ==
          "Param1=Value1&Param1=value2"); // order-value
    CHECK(canonical_query(base + "Param1=value2&Param1=value1") ==
          "Param1=value1&Param1=value2");                 // order-key
    CHECK(canonical_query(base + "Param1") == "Param1="); // empty value
    CHECK(canonical_query(base + "Param1=") == "Param1=");
    CHECK(canonical_query(base + "Param-3=Value3&Param=Value2&%E1%88%B4=Value1") == // order-encoded
          "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
    CHECK(canonical_query(base + "\xE1\x88\xB4=bar") == "%E1%88%B4=bar"); // get-vanilla-utf8-query
    const std::string unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    CHECK(canonical_query(base + unreserved + "=" + unreserved) == unreserved + "=" + unreserved);
    CHECK(canonical_query(base + "a=b c&b=%7e%2a%2f") == "a=b%20c&b=~%2A%2F");
    CHECK(canonical_query(base + "a=x+y&b=/&c=x=y") == "a=x%2By&b=%2F&c=x%3Dy");
    CHECK(canonical_query(base + "a=1&&b=2&") == "a=1&b=2");
    CHECK(canonical_query(base + "a=100%&b=%zz") == "a=100%25&b=%25zz");
    CHECK(canonical_query(base + "b=1#frag&a=2") == "b=1");
    CHECK(canonical_query("https://example.amazonaws.com/") == "");
}

TEST_CASE("canonical headers", "[unit][sigv4]") {
    const std::string url = "https://example.amazonaws.com/";
    SECTION("names lowercased and sorted (post-header-key-case, post-header-key-sort)") {
        auto s =
            sign_ok(get(url, {{"My-Header1", "value1"}, {"Host", "example.amazonaws.com"}, {"A-B", "c"}}));
        CHECK(canonical_headers(s) == std::vector<std::string>{"a-b:c", "host:example.amazonaws.com",
                                                               "my-header1:value1",
                                                               "x-amz-date:20150830T123600Z"});
        CHECK(s.signed_headers == "a-b;host;my-header1;x-amz-date");
    }
    SECTION("repeated names joined with ',' in the order sent (get-header-key-duplicate, "
            "get-header-value-order)") {
        auto s = sign_ok(get(url, {{"My-Header1", "value4"},
                                   {"My-Header1", "value1"},
                                   {"my-header1", "value3"},
                                   {"Zed", "z"},
                                   {"MY-HEADER1", "value2"}}));
        CHECK(canonical_headers(s).at(1) == "my-header1:value4,value1,value3,value2");
        CHECK(s.signed_headers == "host;my-header1;x-amz-date;zed");
    }
    SECTION("values trimmed, inner runs collapsed (get-header-value-trim)") {
        auto s = sign_ok(
            get(url, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\" "}, {"Tab", "\tx\t\ty\t"}}));
        CHECK(canonical_headers(s) == std::vector<std::string>{"host:example.amazonaws.com",
                                                               "my-header1:value1", "my-header2:\"a b c\"",
                                                               "tab:x y", "x-amz-date:20150830T123600Z"});
    }
    SECTION("an obs-fold value becomes one line, folds as single spaces (get-header-value-multiline)") {
        auto s = sign_ok(get(url, {{"My-Header1", "value1\n  value2\r\n     value3"}}));
        CHECK(canonical_headers(s).at(1) == "my-header1:value1 value2 value3");
    }
    SECTION("an empty value is signed empty") {
        auto s = sign_ok(get(url, {{"X-Empty", "   "}}));
        CHECK(canonical_headers(s).at(2) == "x-empty:");
    }
    SECTION("hop-by-hop and client-owned headers are not signed; Authorization and X-Amz-Date are replaced") {
        auto s = sign_ok(get(url, {{"User-Agent", "tagwarden/0.1"},
                                   {"Expect", "100-continue"},
                                   {"Connection", "keep-alive"},
                                   {"Transfer-Encoding", "chunked"},
                                   {"X-Amzn-Trace-Id", "Root=1"},
                                   {"Authorization", "Basic Zm9vOmJhcg=="},
                                   {"X-Amz-Date", "20000101T000000Z"}}));
        CHECK(s.signed_headers == "host;x-amz-date");
        CHECK(s.signature ==
              "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"); // get-vanilla
    }
}

TEST_CASE("host derived from the URL when no Host header is given", "[unit][sigv4]") {
    auto host_of = [](const std::string& url) {
        auto s = sign_ok(get(url));
        return canonical_headers(s).at(0);
    };
    CHECK(host_of("https://api.ecr.us-east-1.amazonaws.com/") == "host:api.ecr.us-east-1.amazonaws.com");
    CHECK(host_of("https://api.ecr.us-east-1.amazonaws.com:443/") == "host:api.ecr.us-east-1.amazonaws.com");
    CHECK(host_of("http://example.amazonaws.com:80") == "host:example.amazonaws.com");
    CHECK(host_of("http://example.amazonaws.com:443/") == "host:example.amazonaws.com:443");
    CHECK(host_of("https://127.0.0.1:5000/v2/") == "host:127.0.0.1:5000");
    CHECK(host_of("http://user:pw@[::1]:8080/x") == "host:[::1]:8080");
    CHECK(host_of("HTTPS://[::1]:443/x") == "host:[::1]");
    CHECK(host_of("https://Example.AmazonAWS.com/") == "host:Example.AmazonAWS.com"); // as libcurl sends it

    SECTION("a Host header wins") {
        auto s = sign_ok(get("http://127.0.0.1:5000/", {{"Host", "example.amazonaws.com"}}));
        CHECK(canonical_headers(s).at(0) == "host:example.amazonaws.com");
    }
}

TEST_CASE("session token (get-vanilla-with-session-token, post-sts-header-before/after)", "[unit][sigv4]") {
    aws::Credentials with_token = k_credentials;
    with_token.session_token = k_session_token;

    SECTION("added and signed") {
        // aws-c-auth v4/get-vanilla-with-session-token/header-signed-request.txt
        auto s = sign_ok(get("https://example.amazonaws.com/"), "service", {}, with_token);
        CHECK(s.signed_headers == "host;x-amz-date;x-amz-security-token");
        CHECK(s.signature == "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
        CHECK(s.headers_to_add == aws::HeaderList{{"X-Amz-Date", "20150830T123600Z"},
                                                  {"X-Amz-Security-Token", k_session_token},
                                                  {"Authorization", s.authorization}});
    }
    SECTION("a token header already on the request is replaced by the credentials' one") {
        auto s = sign_ok(get("https://example.amazonaws.com/", {{"X-Amz-Security-Token", "stale"}}),
                         "service", {}, with_token);
        CHECK(s.signature == "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
    }
    SECTION("added after signing when asked (omit_session_token)") {
        aws::SignOptions omit;
        omit.sign_session_token = false;
        auto s = sign_ok(get("https://example.amazonaws.com/"), "service", omit, with_token);
        CHECK(s.signed_headers == "host;x-amz-date");
        CHECK(s.signature ==
              "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"); // get-vanilla
        CHECK(added(s, "X-Amz-Security-Token") == k_session_token);
    }
}

TEST_CASE("payload hash and X-Amz-Content-Sha256", "[unit][sigv4]") {
    aws::SigningRequest post{"POST",
                             "https://example.amazonaws.com/",
                             {{"Content-Type", "application/x-www-form-urlencoded"}},
                             aws::sha256_hex("Param1=value1")};
    SECTION("not added by default for other services") {
        auto s = sign_ok(post);
        CHECK_FALSE(added(s, "X-Amz-Content-Sha256"));
        // legacy post-x-www-form-urlencoded
        CHECK(s.signature == "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
    }
    SECTION("added and signed when asked, and by default for s3") {
        aws::SignOptions sign_body;
        sign_body.add_content_sha256 = true;
        auto s = sign_ok(post, "service", sign_body);
        CHECK(s.signed_headers == "content-type;host;x-amz-content-sha256;x-amz-date");
        CHECK(added(s, "X-Amz-Content-Sha256") == aws::sha256_hex("Param1=value1"));
        auto s3 = sign_ok(post, "s3");
        CHECK(added(s3, "X-Amz-Content-Sha256") == aws::sha256_hex("Param1=value1"));
    }
    SECTION("UNSIGNED-PAYLOAD") {
        post.payload_hash = aws::k_unsigned_payload;
        auto s = sign_ok(post, "s3");
        CHECK(lines(s.canonical_request).back() == "UNSIGNED-PAYLOAD");
        CHECK(added(s, "X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD");
    }
    SECTION("empty means the empty body") {
        auto s = sign_ok(get("https://example.amazonaws.com/"));
        CHECK(lines(s.canonical_request).back() == aws::k_empty_payload_sha256);
    }
}

TEST_CASE("invalid input is refused without echoing secrets", "[unit][sigv4]") {
    const std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const std::string token = "FQoGZXIvYXdzEXAMPLETOKEN";
    aws::Credentials credentials{"AKIDEXAMPLE", secret, token};
    aws::SigningRequest good = get("https://user:hunter2@example.amazonaws.com/");

    struct Bad {
        const char* what;
        aws::SigningRequest request;
        aws::Credentials credentials;
        std::string region = "us-east-1";
        std::string service = "ecr";
        ErrorKind kind = ErrorKind::invalid_input;
    };
    auto with = [&](auto change) {
        aws::SigningRequest r = good;
        change(r);
        return r;
    };
    std::vector<Bad> cases = {
        {"relative URL", with([](auto& r) { r.url = "/v2/"; }), credentials},
        {"ftp URL", with([](auto& r) { r.url = "ftp://user:hunter2@example.com/"; }), credentials},
        {"no host", with([](auto& r) { r.url = "https://user:hunter2@/x"; }), credentials},
        {"bad port", with([](auto& r) { r.url = "https://example.com:hunter2/"; }), credentials},
        {"empty method", with([](auto& r) { r.method = ""; }), credentials},
        {"method with a space", with([](auto& r) { r.method = "GE T"; }), credentials},
        {"header name with a colon", with([](auto& r) {
             r.headers = {{"X-A:b", "v"}};
         }),
         credentials},
        {"header injection", with([](auto& r) {
             r.headers = {{"X-A", "hunter2\r\nX-Evil: 1"}};
         }),
         credentials},
        {"control byte in a value", with([](auto& r) {
             r.headers = {{"X-A", std::string("hunter2\0", 8)}};
         }),
         credentials},
        {"uppercase payload hash", with([](auto& r) { r.payload_hash = std::string(64, 'A'); }), credentials},
        {"short payload hash", with([](auto& r) { r.payload_hash = "abc"; }), credentials},
        {"empty region", good, credentials, ""},
        {"region with a slash", good, credentials, "us-east-1/x"},
        {"empty service", good, credentials, "us-east-1", ""},
        {"no access key", good, {"", secret, token}, "us-east-1", "ecr", ErrorKind::auth},
        {"no secret", good, {"AKIDEXAMPLE", "", token}, "us-east-1", "ecr", ErrorKind::auth},
        {"access key with a slash", good, {"AKID/EX", secret, token}, "us-east-1", "ecr", ErrorKind::auth},
        {"token with a line break",
         good,
         {"AKIDEXAMPLE", secret, token + "\r\nX-Evil: 1"},
         "us-east-1",
         "ecr",
         ErrorKind::auth},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto r = aws::sign(c.request, c.credentials, c.region, c.service, suite_time());
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == c.kind);
        CHECK_THAT(r.error().message, Catch::StartsWith("SigV4: "));
        CHECK_THAT(r.error().message, !Catch::Contains(secret) && !Catch::Contains(token) &&
                                          !Catch::Contains("hunter2") && !Catch::Contains("AKID"));
    }
    CHECK(aws::sign(good, credentials, "us-east-1", "ecr", suite_time()));
}
