#include <tagwarden/config/config.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace tagwarden;

namespace {

std::string refusal(const std::string& yaml) {
    auto c = config::parse_config(yaml, "tagwarden.yaml");
    REQUIRE_FALSE(c);
    CHECK(c.error().kind == ErrorKind::invalid_input);
    return c.error().message;
}

} // namespace

TEST_CASE("tagwarden.yaml: a key given twice is refused with its path and lines", "[unit][config][tag]") {
    SECTION("top level") {
        auto message = refusal("lock_ttl: 30s\nquota: 10\nlock_ttl: 60s\n");
        CHECK(message == "tagwarden.yaml:3: 'lock_ttl' is given twice (first on line 1): keep one of them");
    }
    SECTION("inside a repository mapping") {
        auto message = refusal("repositories:\n"
                               "  \"r.example.com/team/app\":\n"
                               "    quota: 5000\n"
                               "    quota: 6000\n");
        CHECK(message.find("'repositories.r.example.com/team/app.quota' is given twice") != std::string::npos);
        CHECK(message.find("tagwarden.yaml:4:") == 0);
        CHECK(message.find("first on line 3") != std::string::npos);
    }
    SECTION("the same repository twice") {
        auto message = refusal("repositories:\n  r.example.com/a: {quota: 1}\n  r.example.com/a: {quota: 2}\n");
        CHECK(message.find("'repositories.r.example.com/a' is given twice (first on line 2)") != std::string::npos);
    }
    SECTION("inside an inline lifecycle policy, in a list") {
        auto message = refusal("repositories:\n"
                               "  r.example.com/a:\n"
                               "    lifecycle_policy:\n"
                               "      rules:\n"
                               "        - rulePriority: 1\n"
                               "          rulePriority: 2\n");
        CHECK(message.find("rules[0].rulePriority' is given twice") != std::string::npos);
        CHECK(message.find("tagwarden.yaml:6:") == 0);
    }
    SECTION("flow mappings too") {
        auto message = refusal("repositories: {r.example.com/a: {quota: 1, quota: 2}}\n");
        CHECK(message.find("quota' is given twice") != std::string::npos);
    }
}

TEST_CASE("tagwarden.yaml: distinct keys and repeated keys in different mappings are fine", "[unit][config][tag]") {
    auto c = config::parse_config("lock_ttl: 30s\n"
                                  "repositories:\n"
                                  "  r.example.com/a: {quota: 1}\n"
                                  "  r.example.com/b: {quota: 2}\n",
                                  "tagwarden.yaml");
    REQUIRE(c);
    CHECK(c->repositories.at("r.example.com/b").quota == 2);
}

TEST_CASE("tagwarden.yaml: a quota that is not positive is refused", "[unit][config][tag]") {
    CHECK(refusal("quota: 0\n").find("quota must be a positive number") != std::string::npos);
    CHECK(refusal("repositories:\n  r.example.com/a: {quota: -5}\n").find("'r.example.com/a'].quota must be") !=
          std::string::npos);
}
