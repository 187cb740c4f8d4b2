#pragma once

// Output documents of `tagwarden policy simulate` and `tagwarden policy lint` (keys in the documented order).

#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/lint.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tagwarden::policy {

// {"images": [{"imageDigest": ..., "imageTags": [...], "action": "expire"|"transition"|"keep",
//              "rulePriority": N|null}]}, in the order of `images` (`decisions` is evaluate()'s result for
//              them).
nlohmann::ordered_json simulation_json(const std::vector<ImageRecord>& images,
                                       const std::vector<ImageDecision>& decisions);

// A table (action, rule, pushed, digest, tags, why) sorted newest first, then a summary line.
std::string simulation_text(const std::vector<ImageRecord>& images,
                            const std::vector<ImageDecision>& decisions, TimePoint now);

// {"findings": [{"id", "severity", "rulePriority": N|null, "message", "fix"}], "errors": N, "warnings": N}
nlohmann::ordered_json lint_json(const std::vector<LintFinding>& findings);
std::string lint_text(const std::vector<LintFinding>& findings);

// {"problems": [{"rule": index|null, "rulePriority": N|null, "field", "message", "fix"}]}
nlohmann::ordered_json problems_json(const std::vector<PolicyProblem>& problems);

} // namespace tagwarden::policy
