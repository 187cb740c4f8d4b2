#include <tagwarden/core/ci.hpp>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace tagwarden;

namespace {

using Vars = std::map<std::string, std::string>;

// Sets exactly `values` among the CI variables for the scope (every other one unset), restores them after.
class CiEnv {
public:
    explicit CiEnv(const Vars& values) {
        for (const char* name : k_names) {
            if (const char* old = std::getenv(name))
                m_saved[name] = old;
            ::unsetenv(name);
        }
        for (const auto& [name, value] : values)
            ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~CiEnv() {
        for (const char* name : k_names) {
            ::unsetenv(name);
            if (auto it = m_saved.find(name); it != m_saved.end())
                ::setenv(name, it->second.c_str(), 1);
        }
    }
    CiEnv(const CiEnv&) = delete;
    CiEnv& operator=(const CiEnv&) = delete;

private:
    static constexpr const char* k_names[] = {
        "GITHUB_ACTIONS", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT",
        "GITHUB_SHA", "CODEBUILD_BUILD_ID", "CODEBUILD_BUILD_URL", "CODEBUILD_RESOLVED_SOURCE_VERSION",
        "AWS_REGION", "AWS_DEFAULT_REGION", "GITLAB_CI", "CI_JOB_URL", "CI_COMMIT_SHA"};
    std::map<std::string, std::string> m_saved;
};

} // namespace

TEST_CASE("ci run: none outside CI", "[unit][core][ci]") {
    CiEnv env(Vars{});
    CHECK_FALSE(current_ci_run().has_value());
}

TEST_CASE("ci run: GitHub Actions run URL with attempt, default server, commit", "[unit][core][ci]") {
    {
        CiEnv env(Vars{{"GITHUB_ACTIONS", "true"}, {"GITHUB_SERVER_URL", "https://github.example"},
                   {"GITHUB_REPOSITORY", "acme/shop"}, {"GITHUB_RUN_ID", "42"}, {"GITHUB_RUN_ATTEMPT", "2"},
                   {"GITHUB_SHA", "abc123"}});
        auto run = current_ci_run();
        REQUIRE(run);
        CHECK(run->provider == "github-actions");
        CHECK(run->run_url == "https://github.example/acme/shop/actions/runs/42/attempts/2");
        CHECK(run->commit == "abc123");
    }
    {
        CiEnv env(Vars{{"GITHUB_REPOSITORY", "acme/shop"}, {"GITHUB_RUN_ID", "7"}});
        auto run = current_ci_run();
        REQUIRE(run);
        CHECK(run->run_url == "https://github.com/acme/shop/actions/runs/7");
        CHECK(run->commit.empty());
    }
}

TEST_CASE("ci run: CodeBuild prefers CODEBUILD_BUILD_URL, else the console URL from the id and region",
          "[unit][core][ci]") {
    {
        CiEnv env(Vars{{"CODEBUILD_BUILD_ID", "shop:0d4c"}, {"CODEBUILD_BUILD_URL", "https://console.example/build/1"},
                   {"CODEBUILD_RESOLVED_SOURCE_VERSION", "f00d"}, {"AWS_REGION", "eu-west-1"}});
        auto run = current_ci_run();
        REQUIRE(run);
        CHECK(run->provider == "codebuild");
        CHECK(run->run_url == "https://console.example/build/1");
        CHECK(run->commit == "f00d");
    }
    {
        CiEnv env(Vars{{"CODEBUILD_BUILD_ID", "shop:0d4c"}, {"AWS_DEFAULT_REGION", "us-east-2"}});
        CHECK(current_ci_run()->run_url ==
              "https://us-east-2.console.aws.amazon.com/codesuite/codebuild/projects/shop/build/shop:0d4c/");
    }
    {
        CiEnv env(Vars{{"CODEBUILD_BUILD_ID", "shop:0d4c"}});
        CHECK(current_ci_run()->run_url == "codebuild:shop:0d4c");
    }
}

TEST_CASE("ci run: GitLab CI job URL and commit", "[unit][core][ci]") {
    CiEnv env(Vars{{"GITLAB_CI", "true"}, {"CI_JOB_URL", "https://gitlab.example/g/p/-/jobs/9"}, {"CI_COMMIT_SHA", "beef"}});
    auto run = current_ci_run();
    REQUIRE(run);
    CHECK(run->provider == "gitlab");
    CHECK(run->run_url == "https://gitlab.example/g/p/-/jobs/9");
    CHECK(run->commit == "beef");
}
