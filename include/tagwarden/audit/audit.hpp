#pragma once

// `tagwarden audit`: every repository of a registry (and, on ECR, every repository creation template)
// judged by the facts the push guards read, so the repository that fails next is seen weeks before.

#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/config/config.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/guard/facts.hpp>
#include <tagwarden/guard/guard.hpp>
#include <tagwarden/policy/lint.hpp>
#include <tagwarden/policy/time.hpp>
#include <tagwarden/registry/client.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::audit {

// high: some finding is an error; medium: a warning; low: only info; none: no finding.
enum class Risk { none, low, medium, high };
std::string_view to_string(Risk risk);

// Check names (stable; scripts may match on them):
//   no-lifecycle-policy        error    no lifecycle policy (a repository, or a template: every repository it
//                                       creates starts without one)
//   invalid-lifecycle-policy   error    a policy ECR's rules refuse
//   quota                      error    the image count is at or above the guard's threshold of the quota
//                              warning  at the push rate of the last 30 days it fills within --days
//   policy-lint/<id>           (lint)   each `tagwarden policy lint` finding of the policy, its severity
//   protected-expiring         error    the policy expires or archives, now or within --days, one of the last
//                                       keep_releases images of a protected environment or a --protect digest
//   mutable-tags               warning  MUTABLE or MUTABLE_WITH_EXCLUSION tags (ECR): nothing but tagwarden's
//                                       lock stops a tag from moving; info for IMMUTABLE_WITH_EXCLUSION
struct Finding {
    std::string check;
    policy::Severity severity = policy::Severity::warning;
    std::string message;  // names the fix
};

// One repository (name without the registry) or one repository creation template (its prefix).
struct Entry {
    std::string name;
    Risk risk = Risk::none;
    std::int64_t image_count = 0;       // templates: 0
    std::optional<std::int64_t> quota;  // images per repository; nullopt when unknown
    std::optional<std::string> fills_on;  // YYYY-MM-DD: when the count reaches the quota at the current push rate
    std::vector<Finding> findings;
};

struct AuditReport {
    std::string registry;
    std::vector<Entry> repositories;  // sorted by risk, highest first, then by name
    std::vector<Entry> templates;     // ECR repository creation templates, sorted the same way
    [[nodiscard]] bool has_errors() const;
};

struct AuditOptions {
    std::vector<std::string> repo_globs;  // --repos: keep repositories matching any ('*' any run, '?' one char)
    int days = 30;                        // --days: how far ahead protected-expiring and the fill date look
    // Protected environments, tag template, keep_releases, --protect digests, the quota threshold and --quota
    // (which overrides what the registry says). protection_window is set from `days`.
    guard::GuardSettings settings;
    int jobs = 4;  // repositories read at a time
};

// -- pure parts (exposed for tests) --------------------------------------------------------------------

Risk risk_of(const std::vector<Finding>& findings);
// Highest risk first, then by name.
void sort_by_risk(std::vector<Entry>& entries);
// Shell-style glob over the whole name: '*' matches any run of characters ('/' included), '?' one.
bool glob_match(std::string_view glob, std::string_view name);
// "YYYY-MM-DD" (UTC).
std::string format_date(policy::TimePoint t);

// When the repository holds `quota` images, if the last 30 days repeat themselves: every image pushed in
// the last 30 days is pushed again, with the same tags, every 30 days. With a policy, each future day's
// count is what the lifecycle evaluation keeps of the images and the repeats then (so a count rule that
// keeps the repository small means it never fills); without one, nothing is ever expired. nullopt when
// nothing was pushed in the last 30 days or the quota is not reached within `horizon_days`.
std::optional<policy::TimePoint> project_fill_date(const std::vector<policy::ImageRecord>& images,
                                                   const policy::LifecyclePolicy* policy, std::int64_t quota,
                                                   policy::TimePoint now, int horizon_days = 365);

// The findings about one repository from the facts the guards read. `repository` (ECR) gives the tag
// mutability; null for registries that are not ECR.
Entry audit_repository(const std::string& name, const guard::RepositoryFacts& facts,
                       const aws::EcrRepository* repository, const AuditOptions& options, policy::TimePoint now);

// The findings about one repository creation template.
Entry audit_template(const aws::EcrCreationTemplate& creation_template, std::optional<std::int64_t> quota,
                     const AuditOptions& options);

// -- the audit --------------------------------------------------------------------------------------------

// ECR (`aws` holds the clients): DescribeRepositories (every page, narrowed by the globs), the quota once
// (Service Quotas L-03A36CE1, or --quota), per repository (`jobs` at a time) GetLifecyclePolicy and
// DescribeImages of every image, and DescribeRepositoryCreationTemplates (with globs, only the templates that
// could create a repository they name: ROOT, and those whose "PREFIX/" and a glob's text before its first
// wildcard start alike). Other registries: the catalog
// (GET /v2/_catalog, every page; literal --repos names and tagwarden.yaml's repositories of this registry when
// the registry serves no catalog), tagwarden.yaml's policy and quota, and the distinct manifests of each tag
// list. A repository deleted while the audit runs is left out.
Result<AuditReport> run_audit(const std::string& registry, registry::Client* client, const guard::AwsServices& aws,
                              const config::Config& cfg, const AuditOptions& options, policy::TimePoint now);

// {"registry", "repositories": [{"repository", "risk", "imageCount", "quota", "fillsOn", "findings": [{"check",
// "severity", "message"}]}], "templates": [{"prefix", ...the same...}]}
nlohmann::json to_json(const AuditReport& report);
// The table for people: one line per repository and template (risk, images/quota, fills on, name), each
// finding below it.
std::string to_text(const AuditReport& report);
// The same as a Markdown table (GitHub step summary).
std::string to_markdown(const AuditReport& report);

} // namespace tagwarden::audit
