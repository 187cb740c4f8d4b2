#pragma once

#include <tagwarden/config/config.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/push/push.hpp>
#include <tagwarden/registry/client.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace tagwarden::cli {

struct GuardArgs {
    bool allow_no_policy = false;
    std::string quota_threshold;
    std::int64_t quota = 0;
    std::string protect_file;
    bool confirm_with_preview = false;
};

void add_guard_options(CLI::App* command, GuardArgs& args);

// Runs the guards for pushing or promoting `plan` into `dest`: reads the repository's policy, quota and
// images (ECR: GetLifecyclePolicy, Service Quotas, DescribeImages; other registries: tagwarden.yaml and
// the tag list), evaluates them, logs every finding, and returns the report — or Error{guard_refused}
// when a guard refuses. Read-only.
// An ECR repository's lifecycle policy, images (every status, tagged or not) and quota, as the guards see
// them. Error{invalid_input} when `ref` is not an ECR registry.
Result<guard::RepositoryFacts> read_ecr_repository(const Reference& ref);

// For an ECR repository, the tag immutability it enforces (IMMUTABLE, *_WITH_EXCLUSION); null otherwise.
Result<std::function<bool(const std::string&)>> registry_tag_immutability(const Reference& dest);

Result<guard::GuardReport> run_guards(const Reference& dest, registry::Client& client, const push::PushPlan& plan,
                                      const config::Config& cfg, const GuardArgs& args);

} // namespace tagwarden::cli
