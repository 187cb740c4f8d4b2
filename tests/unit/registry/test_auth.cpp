#include <tagwarden/core/log.hpp>
#include <tagwarden/registry/auth.hpp>
#include <tagwarden/registry/client.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::registry;
using nlohmann::json;

TEST_CASE("WWW-Authenticate: Docker token challenge", "[unit][registry][auth]") {
    auto c = parse_www_authenticate(
        R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push")");
    REQUIRE(c);
    REQUIRE(c->size() == 1);
    CHECK((*c)[0].scheme == "bearer");
    CHECK((*c)[0].param("realm") == "https://auth.docker.io/token");
    CHECK((*c)[0].param("service") == "registry.docker.io");
    CHECK((*c)[0].param("scope") == "repository:samalba/my-app:pull,push");
}

TEST_CASE("WWW-Authenticate: ECR Basic, extra params, escapes, several challenges", "[unit][registry][auth]") {
    SECTION("ECR private Basic") {
        auto c = parse_www_authenticate(
            R"(Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com")");
        REQUIRE(c);
        CHECK((*c)[0].scheme == "basic");
        CHECK((*c)[0].param("service") == "ecr.amazonaws.com");
    }
    SECTION("error param and escaped quote") {
        auto c = parse_www_authenticate(
            R"(Bearer realm="https://r/token",error="insufficient_scope",error_description="say \"no\", politely")");
        REQUIRE(c);
        CHECK((*c)[0].param("error") == "insufficient_scope");
        CHECK((*c)[0].param("error_description") == R"(say "no", politely)");
    }
    SECTION("two challenges") {
        auto c = parse_www_authenticate(R"(Basic realm="r1", Bearer realm="https://r2/token",service="s")");
        REQUIRE(c);
        REQUIRE(c->size() == 2);
        CHECK((*c)[0].scheme == "basic");
        CHECK((*c)[1].scheme == "bearer");
        CHECK((*c)[1].param("service") == "s");
    }
    SECTION("unquoted values and case") {
        auto c = parse_www_authenticate("BEARER Realm=https://r/token, Service=reg");
        REQUIRE(c);
        CHECK((*c)[0].scheme == "bearer");
        CHECK((*c)[0].param("realm") == "https://r/token");
        CHECK((*c)[0].param("service") == "reg");
    }
    SECTION("malformed") {
        CHECK_FALSE(parse_www_authenticate(""));
        CHECK_FALSE(parse_www_authenticate(R"(Bearer realm="unterminated)"));
    }
}

TEST_CASE("base64 round trip", "[unit][registry][auth]") {
    CHECK(base64_encode("user:pass") == "dXNlcjpwYXNz");
    CHECK(base64_encode("a") == "YQ==");
    CHECK(base64_encode("ab") == "YWI=");
    for (std::string s : {"", "a", "ab", "abc", "user:p@ss:w0rd!"})
        CHECK(*base64_decode(base64_encode(s)) == s);
    CHECK_FALSE(base64_decode("not*base64"));
}

namespace {
struct HelperCall {
    std::string helper, server;
};
CredentialHelperRunner recording_runner(std::vector<HelperCall>& calls, std::optional<Credential> answer) {
    return [&calls, answer](const std::string& helper, const std::string& server) -> Result<std::optional<Credential>> {
        calls.push_back({helper, server});
        return answer;
    };
}
} // namespace

TEST_CASE("docker config: auths", "[unit][registry][auth]") {
    std::vector<HelperCall> calls;
    auto runner = recording_runner(calls, std::nullopt);
    json config = {{"auths",
                    {{"https://index.docker.io/v1/", {{"auth", base64_encode("hubuser:hubpass")}}},
                     {"127.0.0.1:5000", {{"auth", base64_encode("u:p:with:colons")}}},
                     {"http://r.example.com/v2/", {{"username", "plain"}, {"password", "text"}}},
                     {"tok.example.com", {{"identitytoken", "refresh-me"}}}}}};

    auto hub = lookup_docker_config(config, "docker.io", runner);
    REQUIRE(hub);
    REQUIRE(*hub);
    CHECK((*hub)->username == "hubuser");
    CHECK((*hub)->password == "hubpass");

    auto local = lookup_docker_config(config, "127.0.0.1:5000", runner);
    REQUIRE(*local);
    CHECK((*local)->username == "u");
    CHECK((*local)->password == "p:with:colons");

    auto plain = lookup_docker_config(config, "r.example.com", runner);
    REQUIRE(*plain);
    CHECK((*plain)->username == "plain");

    auto tok = lookup_docker_config(config, "tok.example.com", runner);
    REQUIRE(*tok);
    CHECK((*tok)->identity_token == "refresh-me");

    auto none = lookup_docker_config(config, "other.example.com", runner);
    REQUIRE(none);
    CHECK_FALSE(*none);
    CHECK(calls.empty());

    json bad = {{"auths", {{"r.example.com", {{"auth", base64_encode("nocolon")}}}}}};
    auto err = lookup_docker_config(bad, "r.example.com", runner);
    REQUIRE_FALSE(err);
    CHECK_THAT(err.error().message, Catch::Contains("username:password"));
}

TEST_CASE("docker config: credHelpers win over credsStore over auths", "[unit][registry][auth]") {
    std::vector<HelperCall> calls;
    Credential from_helper{"helper-user", "helper-secret", "", ""};
    auto runner = recording_runner(calls, from_helper);
    json config = {{"credsStore", "desktop"},
                   {"credHelpers", {{"123.dkr.ecr.us-east-1.amazonaws.com", "ecr-login"}}},
                   {"auths", {{"r.example.com", {{"auth", base64_encode("a:b")}}}}}};

    auto ecr = lookup_docker_config(config, "123.dkr.ecr.us-east-1.amazonaws.com", runner);
    REQUIRE(*ecr);
    CHECK((*ecr)->username == "helper-user");
    REQUIRE(calls.size() == 1);
    CHECK(calls[0].helper == "ecr-login");
    CHECK(calls[0].server == "123.dkr.ecr.us-east-1.amazonaws.com");

    auto other = lookup_docker_config(config, "docker.io", runner);
    REQUIRE(*other);
    REQUIRE(calls.size() == 2);
    CHECK(calls[1].helper == "desktop");
    CHECK(calls[1].server == "https://index.docker.io/v1/");

    SECTION("a store without the entry falls back to auths") {
        std::vector<HelperCall> calls2;
        auto empty_runner = recording_runner(calls2, std::nullopt);
        auto r = lookup_docker_config(config, "r.example.com", empty_runner);
        REQUIRE(*r);
        CHECK((*r)->username == "a");
        CHECK(calls2.size() == 1);
    }
}

TEST_CASE("registry error bodies are described", "[unit][registry]") {
    std::string code;
    auto text = describe_registry_errors(
        R"({"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"reason":"x"}},{"code":"DENIED","message":"no"}]})",
        &code);
    CHECK(code == "MANIFEST_INVALID");
    CHECK_THAT(text, Catch::StartsWith("MANIFEST_INVALID: manifest invalid"));
    CHECK_THAT(text, Catch::Contains("DENIED: no"));
    CHECK(describe_registry_errors("<html>bad gateway</html>").empty());
    CHECK(describe_registry_errors(R"({"message":"x"})").empty());
}

TEST_CASE("Link header pagination", "[unit][registry]") {
    CHECK(parse_link_next(R"(</v2/app/tags/list?last=b&n=2>; rel="next")") == "/v2/app/tags/list?last=b&n=2");
    CHECK(parse_link_next(R"(<https://x/prev>; rel="prev", <https://x/next>; rel="next")") == "https://x/next");
    CHECK(parse_link_next(R"(<https://x/prev>; rel="prev")").empty());
    CHECK(parse_link_next("").empty());
}

TEST_CASE("secrets are redacted from log text", "[unit][core][redact]") {
    log::add_secret("s3cr3t-password-value");
    auto text = log::redact("login with s3cr3t-password-value failed; Authorization: Bearer abc.def\r\nnext");
    CHECK(text.find("s3cr3t-password-value") == std::string::npos);
    CHECK(text.find("abc.def") == std::string::npos);
    CHECK_THAT(text, Catch::Contains("next"));
    CHECK(log::redact("GET https://r/token?access_token=zzz&x=1").find("zzz") == std::string::npos);
    CHECK(log::redact("X-Amz-Signature=deadbeef&").find("deadbeef") == std::string::npos);
}
