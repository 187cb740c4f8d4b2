#pragma once

// The Amazon ECR lifecycle policy document, as documented in the ECR user guide ("Lifecycle policy
// properties in Amazon ECR"). Enum spellings are the policy JSON's lower-case ones.

#include <tagwarden/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

enum class TagStatus { tagged, untagged, any };
enum class CountType {
    image_count_more_than,
    since_image_pushed,
    since_image_pulled,
    since_image_transitioned
};
enum class StorageClass { standard, archive };
enum class ActionType { expire, transition };

// Documented limits ([QUOTAS], [API], [PARAMS]).
inline constexpr std::size_t k_max_rules = 50;
inline constexpr std::size_t k_max_policy_text = 30720;
inline constexpr std::size_t k_min_policy_text = 100;
inline constexpr std::size_t k_max_wildcards_per_pattern = 4;
// "Images must be in archive storage for a minimum of 90 days before deletion." [EX], [ARCH]
inline constexpr std::int64_t k_min_archive_days = 90;

struct Selection {
    TagStatus tag_status = TagStatus::any;
    // Absent and empty are different: ECR rejects an empty list and a list on an untagged/any rule.
    std::optional<std::vector<std::string>> tag_prefix_list;
    std::optional<std::vector<std::string>> tag_pattern_list;
    // Absent means standard.
    std::optional<StorageClass> storage_class;
    CountType count_type = CountType::image_count_more_than;
    // Only "days" is valid; kept as text so validation can name a wrong value.
    std::optional<std::string> count_unit;
    std::int64_t count_number = 0;

    [[nodiscard]] StorageClass effective_storage_class() const {
        return storage_class.value_or(StorageClass::standard);
    }
};

struct Action {
    ActionType type = ActionType::expire;
    std::optional<StorageClass> target_storage_class;
};

struct Rule {
    std::int64_t rule_priority = 0;
    std::optional<std::string> description;
    Selection selection;
    Action action;
};

struct LifecyclePolicy {
    std::vector<Rule> rules;
    // Characters of the JSON text it was parsed from; 0 when built in code (the length limits are then not
    // checked).
    std::size_t text_length = 0;
};

// One thing wrong with a policy: where (rule and field), what, and how to fix it.
struct PolicyProblem {
    std::optional<std::size_t> rule_index;     // position in "rules", when the problem is in one rule
    std::optional<std::int64_t> rule_priority; // that rule's rulePriority, when it has a valid one
    std::string field; // JSON path inside the rule ("selection.countUnit") or the policy
    std::string message;
    std::string fix;
};

// "rules[1] (rulePriority 2) selection.countUnit: <message> Fix: <fix>"
std::string to_string(const PolicyProblem& problem);

// Parses the JSON text into the model. Structural problems (malformed JSON, wrong JSON types, unknown enum
// values, missing required fields, unknown fields) make it fail with Error{invalid_input} whose message lists
// every one. It does not apply ECR's semantic rules; see validate_policy() and load_policy().
Result<LifecyclePolicy> parse_policy(std::string_view json);

// Every structural problem of the text (empty when parse_policy() succeeds).
std::vector<PolicyProblem> structural_problems(std::string_view json);

// ECR's semantic validation (unique priorities, `any` last per storage class, list rules, wildcard limit,
// count type / unit / storage class / action combinations, length and rule-count limits). Returns every
// problem.
std::vector<PolicyProblem> validate_policy(const LifecyclePolicy& policy);

// Structural and semantic problems of the text, in that order: what PutLifecyclePolicy would reject.
std::vector<PolicyProblem> check_policy(std::string_view json);

// parse_policy() + validate_policy(): the policy, or Error{invalid_input} listing every problem.
Result<LifecyclePolicy> load_policy(std::string_view json);

std::string_view to_string(TagStatus value);
std::string_view to_string(CountType value);
std::string_view to_string(StorageClass value);
std::string_view to_string(ActionType value);

// "rulePriority 3" or "rules[2]" when the rule has no usable priority.
std::string rule_label(const Rule& rule);

} // namespace tagwarden::policy
