// The AWS JSON client: request shape, error parsing and mapping, throttling retries, quotas not retried,
// and secrets kept out of errors and logs.

#include "aws_test_support.hpp"

#include <tagwarden/aws/aws_client.hpp>
#include <tagwarden/aws/service_quotas.hpp>
#include <tagwarden/core/log.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <thread>

using namespace tagwarden;
using namespace tagwarden::aws;
using namespace tagwarden::test;

namespace {

AwsJsonClient client_with(std::shared_ptr<http::Transport> transport, const ServiceInfo& service = k_ecr,
                          Credentials credentials = {"AKIACLIENT", "clientSecretValue0001",
                                                     "clientSessionToken0001"}) {
    AwsClientConfig config;
    config.region = "us-east-1";
    config.endpoint = "http://127.0.0.1:9/";
    config.credentials = std::make_shared<StaticCredentialSource>(credentials);
    config.transport = std::move(transport);
    config.retry.base_delay = std::chrono::milliseconds(1);
    config.retry.max_delay = std::chrono::milliseconds(2);
    config.retry.max_attempts = 4;
    return AwsJsonClient(service, std::move(config));
}

http::Response json_error(int status, const std::string& type, const std::string& message,
                          const std::string& key = "message") {
    return response(status, nlohmann::json{{"__type", type}, {key, message}}.dump(),
                    {{"Content-Type", "application/x-amz-json-1.1"}, {"x-amzn-RequestId", "req-1"}});
}

} // namespace

TEST_CASE("JSON client: POST / with target, content type, SigV4 and the session token",
          "[unit][aws][client]") {
    auto transport = std::make_shared<FakeTransport>(
        [](const SentRequest&) -> Result<http::Response> { return response(200, R"({"repositories":[]})"); });
    auto client = client_with(transport);
    auto out = client.call("DescribeRepositories", nlohmann::json::object());
    REQUIRE(out);
    CHECK(out->at("repositories").empty());
    auto r = transport->requests().at(0);
    CHECK(r.method == "POST");
    CHECK(r.url == "http://127.0.0.1:9/");
    CHECK(r.body == "{}");
    CHECK_FALSE(r.retryable); // the client retries; a retrying transport underneath must not
    CHECK(r.headers.get("X-Amz-Target") == "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories");
    CHECK(r.headers.get("Content-Type") == "application/x-amz-json-1.1");
    CHECK(r.headers.get("X-Amz-Security-Token") == "clientSessionToken0001");
    auto auth = r.headers.get("Authorization");
    REQUIRE(auth);
    CHECK(auth->starts_with("AWS4-HMAC-SHA256 Credential=AKIACLIENT/"));
    CHECK(auth->find("/us-east-1/ecr/aws4_request") != std::string::npos);
    CHECK(auth->find("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target") !=
          std::string::npos);

    auto dynamo = client_with(transport, k_dynamodb);
    REQUIRE(dynamo.call("GetItem", {{"TableName", "t"}}));
    auto d = transport->requests().at(1);
    CHECK(d.headers.get("X-Amz-Target") == "DynamoDB_20120810.GetItem");
    CHECK(d.headers.get("Content-Type") == "application/x-amz-json-1.0");
    CHECK(d.headers.get("Authorization")->find("/dynamodb/aws4_request") != std::string::npos);
}

TEST_CASE("error parsing: header or __type, prefixes stripped, message or Message", "[unit][aws][client]") {
    CHECK(sanitize_error_type("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException") ==
          "ConditionalCheckFailedException");
    CHECK(sanitize_error_type("aws.protocoltests.restjson#FooError:http://internal.amazon.com/coral/") ==
          "FooError");
    CHECK(sanitize_error_type("FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/") ==
          "FooError");
    http::Headers none;
    auto a =
        parse_error_response(400, none, R"({"__type":"x#RepositoryNotFoundException","Message":"gone"})");
    CHECK(a.type == "RepositoryNotFoundException");
    CHECK(a.message == "gone");
    http::Headers h;
    h.add("X-Amzn-Errortype", "ThrottlingException:http://internal.amazon.com/");
    auto b = parse_error_response(400, h, R"({"message":"Rate exceeded"})");
    CHECK(b.type == "ThrottlingException");
    CHECK(is_throttling_error(b));
    auto c = parse_error_response(500, none, "<html>oops</html>");
    CHECK(c.type.empty());
    CHECK(is_retryable_error(c));
    // Service Quotas' server fault.
    auto d = parse_error_response(500, none, R"({"__type":"ServiceException","Message":"internal"})");
    CHECK(d.type == "ServiceException");
    CHECK(is_retryable_error(d));
}

TEST_CASE("error mapping to error kinds", "[unit][aws][client]") {
    auto kind = [](int status, const std::string& type) {
        return to_error({status, type, "m", ""}, "ECR", "Op").kind;
    };
    for (const char* t : {"AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException",
                          "InvalidSignatureException", "SignatureDoesNotMatch", "InvalidClientTokenId",
                          "MissingAuthenticationTokenException"})
        CHECK(kind(400, t) == ErrorKind::auth);
    CHECK(kind(403, "") == ErrorKind::auth);
    CHECK(kind(400, "RepositoryNotFoundException") == ErrorKind::not_found);
    CHECK(kind(400, "LifecyclePolicyNotFoundException") == ErrorKind::not_found);
    CHECK(kind(400, "ResourceNotFoundException") == ErrorKind::not_found);
    CHECK(kind(400, "InvalidParameterException") == ErrorKind::invalid_input);
    CHECK(kind(400, "LimitExceededException") == ErrorKind::registry);
    auto limit = to_error({400, "LimitExceededException", "too many images", ""}, "ECR", "PutImage");
    CHECK_FALSE(limit.transient);
    CHECK(limit.registry_code == "LimitExceededException");
    CHECK(limit.message.find("quota") != std::string::npos);
    auto expired =
        to_error({400, "ExpiredTokenException", "The security token included in the request is expired", "r"},
                 "ECR", "DescribeImages");
    CHECK(expired.message ==
          "ECR DescribeImages: ExpiredTokenException: The security token included in the request is expired "
          "(the session token has expired: refresh the credentials) [request id r]");
    CHECK(to_error({400, "ThrottlingException", "", ""}, "ECR", "Op").transient);
    CHECK(to_error({429, "", "", ""}, "ECR", "Op").transient);
    CHECK(to_error({503, "", "", ""}, "ECR", "Op").transient);
}

TEST_CASE("throttling is retried with backoff; each attempt is signed afresh", "[unit][aws][client]") {
    for (std::string throttle : {"ThrottlingException", "ThrottledException", "TooManyRequestsException",
                                 "RequestLimitExceeded", "429"}) {
        int calls = 0;
        auto transport = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
            if (++calls < 3)
                return throttle == "429" ? response(429, "") : json_error(400, throttle, "Rate exceeded");
            return response(200, R"({"ok":true})");
        });
        auto client = client_with(transport);
        StderrCapture quiet;
        auto out = client.call("DescribeImages", {{"repositoryName", "a/b"}});
        REQUIRE(out);
        CHECK(calls == 3);
        CHECK(transport->requests().size() == 3);
    }
    int calls = 0;
    auto always = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
        ++calls;
        return json_error(400, "ThrottlingException", "Rate exceeded");
    });
    auto client = client_with(always);
    StderrCapture quiet;
    auto out = client.call("PutImage", nlohmann::json::object());
    REQUIRE_FALSE(out);
    CHECK(calls == 4);
    CHECK(out.error().transient);
    CHECK(out.error().registry_code == "ThrottlingException");
    CHECK(out.error().message.find("after 4 attempts") != std::string::npos);
}

TEST_CASE("LimitExceededException and client errors are not retried", "[unit][aws][client]") {
    for (std::string type :
         {"LimitExceededException", "AccessDeniedException", "RepositoryNotFoundException"}) {
        int calls = 0;
        auto transport = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
            ++calls;
            return json_error(400, type, "no");
        });
        auto client = client_with(transport);
        auto out = client.call("PutImage", nlohmann::json::object());
        REQUIRE_FALSE(out);
        CHECK(calls == 1);
        CHECK(out.error().registry_code == type);
    }
}

TEST_CASE("server faults and network failures are retried", "[unit][aws][client]") {
    int calls = 0;
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
        ++calls;
        if (calls == 1) {
            Error e(ErrorKind::registry, "connection reset");
            e.transient = true;
            return std::unexpected(e);
        }
        if (calls == 2)
            return json_error(500, "ServerException", "internal");
        return response(200, "");
    });
    auto client = client_with(transport);
    StderrCapture quiet;
    auto out = client.call("GetAuthorizationToken", nlohmann::json::object());
    REQUIRE(out);
    CHECK(out->empty());
    CHECK(calls == 3);
}

TEST_CASE("no secret in AWS client errors or retry log lines", "[unit][aws][client][secrets]") {
    // A hostile or buggy endpoint that echoes the secret key and session token back.
    auto transport = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return json_error(400, "ThrottlingException",
                          "echo clientSecretValue0001 and clientSessionToken0001 and echoedEcrToken0001");
    });
    log::add_secret("echoedEcrToken0001");
    auto client = client_with(transport);
    StderrCapture capture;
    auto out = client.call("GetAuthorizationToken", nlohmann::json::object());
    auto logged = capture.text();
    REQUIRE_FALSE(out);
    INFO(out.error().message << "\n" << logged);
    for (const char* secret : {"clientSecretValue0001", "clientSessionToken0001", "echoedEcrToken0001"}) {
        CHECK(out.error().message.find(secret) == std::string::npos);
        CHECK(logged.find(secret) == std::string::npos);
    }
    CHECK(logged.find("retrying") != std::string::npos);
}

TEST_CASE("Service Quotas: applied value, AWS default, documented default", "[unit][aws][quotas]") {
    auto quota = [](double v) {
        return response(200, nlohmann::json{{"Quota", {{"QuotaCode", "L-03A36CE1"}, {"Value", v}}}}.dump());
    };
    {
        auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
            CHECK(r.headers.get("X-Amz-Target") == "ServiceQuotasV20190624.GetServiceQuota");
            CHECK(nlohmann::json::parse(r.body) ==
                  nlohmann::json{{"ServiceCode", "ecr"}, {"QuotaCode", "L-03A36CE1"}});
            return quota(250000);
        });
        auto client = client_with(transport, k_service_quotas);
        auto q = get_images_per_repository_quota(client);
        CHECK(q.value == 250000);
        CHECK(q.source == QuotaSource::applied);
    }
    {
        auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
            if (r.headers.get("X-Amz-Target") == "ServiceQuotasV20190624.GetServiceQuota")
                return json_error(400, "NoSuchResourceException", "not applied");
            return quota(20000);
        });
        auto client = client_with(transport, k_service_quotas);
        auto q = get_images_per_repository_quota(client);
        CHECK(q.value == 20000);
        CHECK(q.source == QuotaSource::aws_default);
        CHECK(q.note.find("NoSuchResourceException") != std::string::npos);
    }
    {
        auto transport = std::make_shared<FakeTransport>([&](const SentRequest&) -> Result<http::Response> {
            return json_error(400, "AccessDeniedException", "not allowed servicequotas:GetServiceQuota");
        });
        auto client = client_with(transport, k_service_quotas);
        StderrCapture quiet;
        auto q = get_images_per_repository_quota(client);
        CHECK(q.value == k_documented_images_per_repository);
        CHECK(q.source == QuotaSource::documented_default);
        CHECK(to_string(q.source) == "documented_default");
        CHECK(q.note.find("AccessDeniedException") != std::string::npos);
    }
}

TEST_CASE("Service Quotas: one read per account and region for the run (QuotaCache)", "[unit][aws][quotas]") {
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.headers.get("X-Amz-Target") == "ServiceQuotasV20190624.GetServiceQuota")
            return json_error(400, "NoSuchResourceException", "not applied");
        return response(200, nlohmann::json{{"Quota", {{"QuotaCode", "L-03A36CE1"}, {"Value", 20000}}}}.dump());
    });
    auto client = client_with(transport, k_service_quotas);
    QuotaCache cache;
    SECTION("the fallback chain runs once; later lookups answer from the cache") {
        for (int i = 0; i < 3; ++i) {
            auto q = get_images_per_repository_quota(client, cache, "111122223333");
            CHECK(q.value == 20000);
            CHECK(q.source == QuotaSource::aws_default);
        }
        CHECK(transport->requests().size() == 2); // GetServiceQuota, GetAWSDefaultServiceQuota
        CHECK(cache.size() == 1);
    }
    SECTION("concurrent lookups wait for the first read") {
        std::vector<double> values(8);  // Catch2's assertions are not thread-safe: checked after the join
        std::vector<std::thread> threads;
        for (std::size_t i = 0; i < values.size(); ++i)
            threads.emplace_back([&, i] { values[i] = get_images_per_repository_quota(client, cache, "111122223333").value; });
        for (auto& t : threads)
            t.join();
        CHECK(values == std::vector<double>(8, 20000));
        CHECK(transport->requests().size() == 2);
    }
    SECTION("another account, or another region, is another quota") {
        (void)get_images_per_repository_quota(client, cache, "111122223333");
        (void)get_images_per_repository_quota(client, cache, "444455556666");
        auto other_region = [&] {
            AwsClientConfig config;
            config.region = "eu-west-1";
            config.endpoint = "http://127.0.0.1:9/";
            config.credentials = std::make_shared<StaticCredentialSource>(Credentials{"AKIACLIENT", "clientSecretValue0001", ""});
            config.transport = transport;
            return AwsJsonClient(k_service_quotas, std::move(config));
        }();
        (void)get_images_per_repository_quota(other_region, cache, "111122223333");
        CHECK(transport->requests().size() == 6);
        CHECK(cache.size() == 3);
    }
    SECTION("a new cache (a new run) reads again") {
        (void)get_images_per_repository_quota(client, cache, "111122223333");
        QuotaCache next_run;
        (void)get_images_per_repository_quota(client, next_run, "111122223333");
        CHECK(transport->requests().size() == 4);
    }
}

TEST_CASE("ExpiredTokenException refreshes the credentials once and resends", "[unit][aws][client]") {
    struct RotatingSource final : CredentialSource {
        int generation = 1;
        int invalidated = 0;
        Result<Credentials> credentials() override {
            return Credentials{"ASIAGEN" + std::to_string(generation), "rotatingSecret01", "rotatingToken01"};
        }
        void invalidate() override {
            ++invalidated;
            ++generation;
        }
    };
    auto source = std::make_shared<RotatingSource>();
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.headers.get("Authorization")->find("Credential=ASIAGEN1/") != std::string::npos)
            return json_error(400, "ExpiredTokenException",
                              "The security token included in the request is expired");
        return response(200, "{}");
    });
    AwsClientConfig config;
    config.region = "us-east-1";
    config.endpoint = "http://127.0.0.1:9";
    config.credentials = source;
    config.transport = transport;
    AwsJsonClient client(k_ecr, std::move(config));
    REQUIRE(client.call("DescribeRepositories", nlohmann::json::object()));
    CHECK(source->invalidated == 1);
    CHECK(transport->requests().size() == 2);

    // Still expired after a refresh: reported as an auth error, not looped on.
    auto always = std::make_shared<FakeTransport>([](const SentRequest&) -> Result<http::Response> {
        return json_error(400, "ExpiredTokenException", "expired");
    });
    AwsClientConfig config2;
    config2.region = "us-east-1";
    config2.endpoint = "http://127.0.0.1:9";
    config2.credentials = source;
    config2.transport = always;
    AwsJsonClient client2(k_ecr, std::move(config2));
    auto out = client2.call("DescribeRepositories", nlohmann::json::object());
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::auth);
    CHECK(always->requests().size() == 2);
}

TEST_CASE("a request that is not valid UTF-8 is an input error, not an exception", "[unit][aws][client]") {
    auto transport = std::make_shared<FakeTransport>(
        [](const SentRequest&) -> Result<http::Response> { return response(200, "{}"); });
    auto client = client_with(transport);
    auto out = client.call("PutImage", {{"imageManifest", std::string("\xff\xfe")}});
    REQUIRE_FALSE(out);
    CHECK(out.error().kind == ErrorKind::invalid_input);
    CHECK(transport->requests().empty());
}
