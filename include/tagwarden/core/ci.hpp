#pragma once

#include <optional>
#include <string>

namespace tagwarden {

// The CI run this process belongs to, from the variables the CI service sets.
struct CiRun {
    std::string provider;  // "github-actions", "codebuild", "gitlab"
    std::string run_url;   // where an operator finds the run ("" when the variables do not say)
    std::string commit;    // the commit built ("" when unknown)
};

// GitHub Actions: GITHUB_SERVER_URL (default https://github.com), GITHUB_REPOSITORY, GITHUB_RUN_ID,
// GITHUB_RUN_ATTEMPT, GITHUB_SHA. CodeBuild: CODEBUILD_BUILD_URL, else the console URL from
// CODEBUILD_BUILD_ID ("project:uuid") and AWS_REGION/AWS_DEFAULT_REGION, else "codebuild:ID";
// CODEBUILD_RESOLVED_SOURCE_VERSION. GitLab CI: CI_JOB_URL, CI_COMMIT_SHA. nullopt elsewhere.
std::optional<CiRun> current_ci_run();

} // namespace tagwarden
