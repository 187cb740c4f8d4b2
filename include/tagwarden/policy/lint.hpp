#pragma once

// Findings about a (valid) lifecycle policy that ECR accepts but that can hurt releases.

#include <tagwarden/policy/lifecycle_policy.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

enum class Severity { error, warning, info };

std::string_view to_string(Severity severity);

struct LintConfig {
    // Environments whose images must never be expired or archived by surprise.
    std::vector<std::string> protected_envs = {"prod"};
    // How tags are written: "{env}" is the environment, "{version}" the release version (assumed to start
    // with a digit or 'v', e.g. 1.4.2 or v2). Any other "{name}" stands for any text.
    std::string tag_template = "{version}-{env}";
};

// Finding ids (stable; scripts may match on them):
//   any-not-last                 error    an `any` rule is not the last rule of its storage class
//   never-expires                error    no rule can ever expire an image: the repository only grows
//   age-rule-expires-protected   error    a sinceImagePushed expire rule can delete protected images (the
//   rollback
//                                         target) however few releases exist
//   protected-tag-overbroad      error    a count rule selects every protected tag and other tags too (prefix
//   "prod"
//                                         also matching "prod"/"production"; `any`): other pushes evict
//                                         protected images
//   protected-tag-match          error    a count rule's prefix or pattern matches some protected tags
//   directly multi-tag-reach              error    a tagged count rule selects images by another tag ("dev-")
//   and an image
//                                         also tagged for a protected env is selected too; nothing shields it
//   archive-rule-reaches-protected warning a transition rule can archive protected images (pulls then fail
//   with 404) protected-retention          info     a count rule that selects exactly a protected
//   environment's tags no-untagged-rule             warning  nothing selects untagged images; they accumulate
//   toward the image quota pattern-unmatchable          warning  a list entry no valid tag can match: the
//   rule selects nothing prefix-contains-wildcard     warning  '*' in tagPrefixList is a literal character,
//   not a wildcard list-and-semantics           warning  several list entries no single tag can match: only
//   images carrying one
//                                         tag per entry are selected (probably meant as "either")
//                                info     several entries: a reminder that they are ANDed over the image's
//                                tags
//   shadowed-rule                warning  a higher-priority rule selects everything this rule selects: it
//   never acts
struct LintFinding {
    std::string id;
    Severity severity = Severity::warning;
    std::optional<std::int64_t> rule_priority; // none for policy-wide findings
    std::string message;
    std::string fix;
};

// Lints a policy; intended for policies that pass validate_policy(). Findings are ordered policy-wide first,
// then by rule priority.
std::vector<LintFinding> lint(const LifecyclePolicy& policy, const LintConfig& config = {});

// Whether any finding has error severity.
bool has_errors(const std::vector<LintFinding>& findings);

} // namespace tagwarden::policy
