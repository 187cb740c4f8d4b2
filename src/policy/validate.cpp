// ECR's semantic rules for a lifecycle policy. Sources: the ECR user guide pages "Lifecycle policy
// properties" [PARAMS], "Lifecycle policy evaluation rules" [LP], "Examples of lifecycle policies" [EX], the
// service quotas page [QUOTAS] and the API model [API] (see /work/shared/reference/ecr-lifecycle-spec.md
// section 3).

#include <tagwarden/policy/lifecycle_policy.hpp>

#include <algorithm>
#include <limits>
#include <set>

namespace tagwarden::policy {

namespace {

constexpr std::int64_t k_max_int32 = std::numeric_limits<std::int32_t>::max();

class Validator {
  public:
    explicit Validator(const LifecyclePolicy& policy) : m_policy(policy) {}

    std::vector<PolicyProblem> run() {
        check_policy_level();
        for (std::size_t i = 0; i < m_policy.rules.size(); ++i)
            check_rule(i);
        check_priorities();
        check_per_storage_class();
        return std::move(m_problems);
    }

  private:
    void add_policy(std::string field, std::string message, std::string fix) {
        m_problems.push_back(
            PolicyProblem{std::nullopt, std::nullopt, std::move(field), std::move(message), std::move(fix)});
    }

    void add(std::size_t index, std::string field, std::string message, std::string fix) {
        std::optional<std::int64_t> priority;
        auto p = m_policy.rules[index].rule_priority;
        if (p >= 1 && p <= k_max_int32)
            priority = p;
        m_problems.push_back(
            PolicyProblem{index, priority, std::move(field), std::move(message), std::move(fix)});
    }

    void check_policy_level() {
        if (m_policy.text_length > 0 && m_policy.text_length > k_max_policy_text)
            add_policy("lifecyclePolicyText",
                       "the policy text is " + std::to_string(m_policy.text_length) +
                           " characters; ECR allows at most 30720 (quota, not adjustable)",
                       "remove whitespace and merge or drop rules");
        if (m_policy.text_length > 0 && m_policy.text_length < k_min_policy_text)
            add_policy("lifecyclePolicyText",
                       "the policy text is " + std::to_string(m_policy.text_length) +
                           " characters; the ECR API requires at least 100",
                       "a complete rule (rulePriority, selection with tagStatus, countType and countNumber, "
                       "action) is always longer; check that no required field is missing");
        if (m_policy.rules.empty())
            add_policy(
                "rules", "the policy has no rules; ECR requires at least one",
                "add a rule, e.g. expire untagged images: {\"rulePriority\": 1, \"selection\": "
                "{\"tagStatus\": \"untagged\", \"countType\": \"sinceImagePushed\", \"countUnit\": \"days\", "
                "\"countNumber\": 1}, \"action\": {\"type\": \"expire\"}}");
        if (m_policy.rules.size() > k_max_rules)
            add_policy(
                "rules",
                "the policy has " + std::to_string(m_policy.rules.size()) +
                    " rules; ECR allows at most 50 per policy (quota, not adjustable)",
                "merge rules: one rule can list several patterns only when an image must match all of them, "
                "so prefer broader patterns such as \"release-*\"");
    }

    void check_tag_lists(std::size_t index) {
        const auto& s = m_policy.rules[index].selection;
        bool has_prefix = s.tag_prefix_list.has_value();
        bool has_pattern = s.tag_pattern_list.has_value();
        if (s.tag_status == TagStatus::tagged) {
            if (!has_prefix && !has_pattern)
                add(index, "selection.tagStatus",
                    "tagStatus \"tagged\" needs a tagPrefixList or a tagPatternList (ECR: \"Must specify "
                    "tagPrefixList or tagPatternList when tagStatus=TAGGED\")",
                    "add \"tagPatternList\": [\"prod-*\"] (or \"tagPrefixList\": [\"prod-\"]), or use "
                    "\"tagStatus\": \"any\" to select every image");
            if (has_prefix && has_pattern)
                add(index, "selection.tagPatternList",
                    "a rule may specify either tagPatternList or tagPrefixList, not both",
                    "keep one list; a prefix \"p\" is the pattern \"p*\". Use two rules to combine them");
        } else {
            std::string status(to_string(s.tag_status));
            if (has_prefix)
                add(index, "selection.tagPrefixList",
                    "tagPrefixList is only allowed when tagStatus is \"tagged\" (this rule is \"" + status +
                        "\")",
                    "remove tagPrefixList, or set \"tagStatus\": \"tagged\"");
            if (has_pattern)
                add(index, "selection.tagPatternList",
                    "tagPatternList is only allowed when tagStatus is \"tagged\" (this rule is \"" + status +
                        "\")",
                    "remove tagPatternList, or set \"tagStatus\": \"tagged\"");
        }
        auto check_entries = [&](const std::vector<std::string>& list, const char* name, bool pattern) {
            std::string field = std::string("selection.") + name;
            if (list.empty())
                add(index, field, std::string(name) + " is empty; ECR rejects an empty list",
                    "list at least one " + std::string(pattern ? "pattern" : "prefix") +
                        ", or remove the field");
            for (std::size_t i = 0; i < list.size(); ++i) {
                std::string entry_field = field + "[" + std::to_string(i) + "]";
                if (list[i].empty())
                    add(index, entry_field, "empty " + std::string(pattern ? "pattern" : "prefix"),
                        "remove the empty string");
                if (pattern) {
                    auto stars = static_cast<std::size_t>(std::count(list[i].begin(), list[i].end(), '*'));
                    if (stars > k_max_wildcards_per_pattern)
                        add(index, entry_field,
                            "pattern \"" + list[i] + "\" has " + std::to_string(stars) +
                                " wildcards; ECR allows at most 4 '*' per pattern",
                            "collapse adjacent wildcards and drop the ones that do not change the match "
                            "(\"a*b*\" "
                            "matches what \"a*b*c*\" matches and more)");
                }
            }
        };
        if (s.tag_prefix_list)
            check_entries(*s.tag_prefix_list, "tagPrefixList", false);
        if (s.tag_pattern_list)
            check_entries(*s.tag_pattern_list, "tagPatternList", true);
    }

    void check_count(std::size_t index) {
        const auto& rule = m_policy.rules[index];
        const auto& s = rule.selection;
        std::string type(to_string(s.count_type));
        if (s.count_number < 1)
            add(index, "selection.countNumber",
                "countNumber must be a positive integer; " + std::to_string(s.count_number) +
                    " is not accepted",
                s.count_type == CountType::image_count_more_than
                    ? "set the number of images to keep, 1 or more"
                    : "set the number of days, 1 or more");
        else if (s.count_number > k_max_int32)
            add(index, "selection.countNumber",
                "countNumber " + std::to_string(s.count_number) + " is too large",
                "use a value below 2147483648");

        bool since = s.count_type != CountType::image_count_more_than;
        if (since && !s.count_unit)
            add(index, "selection.countUnit", "countType \"" + type + "\" requires \"countUnit\": \"days\"",
                "add \"countUnit\": \"days\"");
        if (since && s.count_unit && *s.count_unit != "days")
            add(index, "selection.countUnit",
                "countUnit \"" + *s.count_unit + "\" is not supported; the only unit is \"days\"",
                "write \"countUnit\": \"days\" and express the age in days");
        if (!since && s.count_unit)
            add(index, "selection.countUnit",
                "countUnit must not be set with countType \"imageCountMoreThan\" (ECR rejects it)",
                "remove countUnit; countNumber is the number of images to keep");

        auto storage = s.effective_storage_class();
        if (s.count_type == CountType::since_image_transitioned) {
            if (storage != StorageClass::archive)
                add(index, "selection.storageClass",
                    "countType \"sinceImageTransitioned\" selects archived images and requires "
                    "\"storageClass\": "
                    "\"archive\"",
                    "add \"storageClass\": \"archive\" to the selection");
            if (rule.action.type != ActionType::expire)
                add(index, "action.type",
                    "countType \"sinceImageTransitioned\" must be used with action \"expire\"",
                    "set \"action\": {\"type\": \"expire\"}");
            if (s.count_number >= 1 && s.count_number < k_min_archive_days)
                add(index, "selection.countNumber",
                    "archived images cannot be expired by a lifecycle policy before 90 days in archive; "
                    "countNumber " +
                        std::to_string(s.count_number) + " is below that minimum",
                    "set countNumber to 90 or more (delete earlier only with batch-delete-image, which is "
                    "billed "
                    "for the 90-day minimum)");
        } else if (storage == StorageClass::archive) {
            add(index, "selection.storageClass",
                "storageClass \"archive\" is only valid with countType \"sinceImageTransitioned\"; \"" +
                    type + "\" supports only \"standard\"",
                "remove storageClass, or use countType \"sinceImageTransitioned\" to expire archived images");
        }
        if (s.count_type == CountType::since_image_pulled && rule.action.type != ActionType::transition)
            add(index, "action.type",
                "countType \"sinceImagePulled\" must be used with action \"transition\"; it cannot expire "
                "images",
                "transition with sinceImagePulled, then expire with a second rule: {\"storageClass\": "
                "\"archive\", "
                "\"countType\": \"sinceImageTransitioned\", \"countUnit\": \"days\", \"countNumber\": 90} "
                "and "
                "action expire");
    }

    void check_action(std::size_t index) {
        const auto& action = m_policy.rules[index].action;
        if (action.type == ActionType::transition) {
            if (!action.target_storage_class)
                add(index, "action.targetStorageClass", "action \"transition\" requires targetStorageClass",
                    "add \"targetStorageClass\": \"archive\"");
            else if (*action.target_storage_class != StorageClass::archive)
                add(index, "action.targetStorageClass",
                    "targetStorageClass \"standard\" is not supported; \"archive\" is the only target",
                    "write \"targetStorageClass\": \"archive\" (restoring is done with "
                    "UpdateImageStorageClass)");
        } else if (action.target_storage_class) {
            add(index, "action.targetStorageClass",
                "targetStorageClass is only accepted with action \"transition\"; ECR refuses it on \"expire\"",
                "remove \"targetStorageClass\", or write \"type\": \"transition\" to archive instead of expire");
        }
    }

    void check_rule(std::size_t index) {
        const auto& rule = m_policy.rules[index];
        if (rule.rule_priority < 1)
            add(index, "rulePriority",
                "rulePriority must be a positive integer; " + std::to_string(rule.rule_priority) +
                    " is not accepted (minimum 1)",
                "use 1 for the rule applied first; values need not be sequential");
        else if (rule.rule_priority > k_max_int32)
            add(index, "rulePriority", "rulePriority " + std::to_string(rule.rule_priority) + " is too large",
                "use a value below 2147483648");
        check_tag_lists(index);
        check_count(index);
        check_action(index);
    }

    void check_priorities() {
        for (std::size_t i = 0; i < m_policy.rules.size(); ++i)
            for (std::size_t j = 0; j < i; ++j)
                if (m_policy.rules[i].rule_priority == m_policy.rules[j].rule_priority) {
                    add(i, "rulePriority",
                        "rulePriority " + std::to_string(m_policy.rules[i].rule_priority) +
                            " is also used by rules[" + std::to_string(j) +
                            "]; every rule needs a unique value",
                        "renumber the rules; the lowest number is applied first");
                    break;
                }
    }

    void check_per_storage_class() {
        const auto& rules = m_policy.rules;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            auto storage = rules[i].selection.effective_storage_class();
            std::string storage_name(to_string(storage));
            if (rules[i].selection.tag_status == TagStatus::any) {
                // [PARAMS]: "must have the highest value for rulePriority and be evaluated last"; enforced
                // per storage class (ECR: "Rule for tagStatus=ANY must have the lowest priority per storage
                // class"; [EX] "Combining archive and expire rules" has one `any` rule per storage class).
                for (std::size_t j = 0; j < rules.size(); ++j) {
                    if (j == i || rules[j].selection.effective_storage_class() != storage)
                        continue;
                    if (rules[j].rule_priority >= rules[i].rule_priority) {
                        add(i, "selection.tagStatus",
                            "a tagStatus \"any\" rule must have the highest rulePriority among the rules "
                            "selecting "
                            "storage class \"" +
                                storage_name + "\", but rules[" + std::to_string(j) + "] has rulePriority " +
                                std::to_string(rules[j].rule_priority),
                            "give this rule a rulePriority above every other " + storage_name +
                                " rule, so it is applied last");
                        break;
                    }
                }
            }
            if (rules[i].selection.tag_status == TagStatus::untagged) {
                for (std::size_t j = 0; j < i; ++j) {
                    if (rules[j].selection.tag_status == TagStatus::untagged &&
                        rules[j].selection.effective_storage_class() == storage) {
                        add(i, "selection.tagStatus",
                            "only one rule per storage class may select untagged images; rules[" +
                                std::to_string(j) + "] already selects untagged " + storage_name + " images",
                            "merge the two untagged rules into one");
                        break;
                    }
                }
            }
            // [LP]: "The set of all rules selecting a specific storage class must contain a unique set of
            // prefixes." Read as: no two rules of one storage class have the same tagPrefixList (as a set).
            if (rules[i].selection.tag_prefix_list && !rules[i].selection.tag_prefix_list->empty()) {
                std::set<std::string> mine(rules[i].selection.tag_prefix_list->begin(),
                                           rules[i].selection.tag_prefix_list->end());
                for (std::size_t j = 0; j < i; ++j) {
                    const auto& other = rules[j].selection.tag_prefix_list;
                    if (!other || rules[j].selection.effective_storage_class() != storage)
                        continue;
                    if (std::set<std::string>(other->begin(), other->end()) == mine) {
                        add(i, "selection.tagPrefixList",
                            "rules[" + std::to_string(j) +
                                "] already selects the same set of prefixes for storage "
                                "class \"" +
                                storage_name + "\"; ECR requires a unique set of prefixes per rule",
                            "merge the two rules, or make their prefix lists differ");
                        break;
                    }
                }
            }
        }
    }

    const LifecyclePolicy& m_policy;
    std::vector<PolicyProblem> m_problems;
};

} // namespace

std::vector<PolicyProblem> validate_policy(const LifecyclePolicy& policy) {
    return Validator(policy).run();
}

} // namespace tagwarden::policy
