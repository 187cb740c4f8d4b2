// Cross-check against libcurl's own SigV4 signer (CURLOPT_AWS_SIGV4): curl signs and sends a request to a
// loopback listener, which records it; we sign the same request at curl's X-Amz-Date and must produce
// the same Authorization header.
//
// libcurl 7.88 (Debian 12) signs the path and the query string exactly as written in the URL: it neither
// sorts nor re-encodes the query nor double-encodes the path. The requests below therefore use a plain
// path and a query that is already canonical (sorted, RFC 3986 encoded); on such input the two signers
// must agree. A session token is sent by curl as a custom X-Amz-Security-Token header, which it signs.

#include "sigv4_test_support.hpp"

#include <tagwarden/aws/sigv4.hpp>

#include <catch2/catch.hpp>
#include <curl/curl.h>

#include <memory>

using namespace tagwarden;
using namespace tagwarden::test;

namespace {

const aws::Credentials k_credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

struct CurlRequest {
    std::string method; // GET or POST
    std::string target; // path and query
    aws::HeaderList headers;
    std::string body;
    std::string session_token; // sent as a custom header when set
};

size_t discard(char*, size_t size, size_t count, void*) {
    return size * count;
}

struct CurlExchange {
    std::string url; // the URL curl was given
    RawRequest sent; // what the server received
};

// Sends `request` with libcurl's SigV4 signing for us-east-1/ecr.
CurlExchange send_with_curl(const CurlRequest& request, const aws::Credentials& credentials) {
    OneShotHttpServer server;
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    REQUIRE(curl);
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(nullptr, curl_slist_free_all);
    auto add_header = [&](const std::string& line) {
        curl_slist* next = curl_slist_append(header_list.get(), line.c_str());
        REQUIRE(next);
        header_list.release();
        header_list.reset(next);
    };
    for (const auto& [name, value] : request.headers)
        add_header(name + ": " + value);
    if (!request.session_token.empty())
        add_header("X-Amz-Security-Token: " + request.session_token);

    const std::string url = server.base_url() + request.target;
    CURL* h = curl.get();
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROXY, ""); // never through a proxy from the environment
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, "aws:amz:us-east-1:ecr");
    curl_easy_setopt(h, CURLOPT_USERNAME, credentials.access_key_id.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, credentials.secret_access_key.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    if (request.method == "POST") {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.body.size()));
    }
    CURLcode code = curl_easy_perform(h);
    auto received = server.received();
    INFO("curl: " << curl_easy_strerror(code));
    REQUIRE(code == CURLE_OK);
    REQUIRE(received);
    return {url, parse_raw_request(*received)};
}

void check_same_authorization(const CurlRequest& request, const aws::Credentials& credentials) {
    auto [url, sent] = send_with_curl(request, credentials);
    INFO("curl sent:\n" << sent.method << " " << sent.target);
    auto amz_date = header_value(sent.headers, "X-Amz-Date");
    auto curl_authorization = header_value(sent.headers, "Authorization");
    REQUIRE(amz_date);
    REQUIRE(curl_authorization);
    REQUIRE(sent.target == request.target);
    REQUIRE(sent.body == request.body);
    auto when = aws::parse_amz_date(*amz_date);
    REQUIRE(when);

    aws::SigningRequest ours;
    ours.method = request.method;
    ours.url = url; // no Host header: the signer derives "127.0.0.1:PORT" as curl does
    ours.headers = request.headers;
    ours.payload_hash = aws::sha256_hex(request.body);
    aws::Credentials with_token = credentials;
    with_token.session_token = request.session_token;
    auto signed_headers = aws::sign(ours, with_token, "us-east-1", "ecr", *when);
    REQUIRE(signed_headers);
    INFO("our canonical request:\n" << signed_headers->canonical_request);
    CHECK(signed_headers->authorization == *curl_authorization);
}

} // namespace

TEST_CASE("SigV4 matches libcurl's CURLOPT_AWS_SIGV4", "[unit][sigv4][curl]") {
    SECTION("ECR JSON API call (POST)") {
        check_same_authorization(
            {"POST",
             "/",
             {{"Content-Type", "application/x-amz-json-1.1"},
              {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"}},
             R"({"repositoryNames":["team/app"],"registryId":"123456789012"})",
             ""},
            k_credentials);
    }
    SECTION("ECR JSON API call with a session token") {
        check_same_authorization(
            {"POST",
             "/",
             {{"Content-Type", "application/x-amz-json-1.1"},
              {"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"}},
             "{}",
             "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDEXAMPLE+token/with=padding=="},
            k_credentials);
    }
    SECTION("GET with a query string") {
        check_same_authorization(
            {"GET", "/v2/team/app/tags/list?last=1.4.2-dev&marker=a%2Fb%3Dc&n=100", {}, "", ""},
            k_credentials);
    }
}
