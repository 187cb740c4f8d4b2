#include <tagwarden/core/ci.hpp>
#include <tagwarden/core/strings.hpp>

namespace tagwarden {

std::optional<CiRun> current_ci_run() {
    if (!env_or_empty("GITHUB_RUN_ID").empty() || !env_or_empty("GITHUB_ACTIONS").empty()) {
        CiRun run{"github-actions", "", env_or_empty("GITHUB_SHA")};
        if (!env_or_empty("GITHUB_RUN_ID").empty()) {
            auto server = env_or_empty("GITHUB_SERVER_URL");
            if (server.empty())
                server = "https://github.com";
            run.run_url = server + "/" + env_or_empty("GITHUB_REPOSITORY") + "/actions/runs/" + env_or_empty("GITHUB_RUN_ID");
            if (!env_or_empty("GITHUB_RUN_ATTEMPT").empty())
                run.run_url += "/attempts/" + env_or_empty("GITHUB_RUN_ATTEMPT");
        }
        return run;
    }
    if (auto id = env_or_empty("CODEBUILD_BUILD_ID"); !id.empty()) {
        CiRun run{"codebuild", env_or_empty("CODEBUILD_BUILD_URL"), env_or_empty("CODEBUILD_RESOLVED_SOURCE_VERSION")};
        if (run.run_url.empty()) {
            // CODEBUILD_BUILD_ID is "project:uuid"; the console URL needs the region.
            auto region = env_or_empty("AWS_REGION").empty() ? env_or_empty("AWS_DEFAULT_REGION") : env_or_empty("AWS_REGION");
            auto colon = id.find(':');
            run.run_url = !region.empty() && colon != std::string::npos
                              ? "https://" + region + ".console.aws.amazon.com/codesuite/codebuild/projects/" +
                                    id.substr(0, colon) + "/build/" + id + "/"
                              : "codebuild:" + id;
        }
        return run;
    }
    if (!env_or_empty("GITLAB_CI").empty())
        return CiRun{"gitlab", env_or_empty("CI_JOB_URL"), env_or_empty("CI_COMMIT_SHA")};
    return std::nullopt;
}

} // namespace tagwarden
