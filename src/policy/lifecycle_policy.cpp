#include <tagwarden/policy/lifecycle_policy.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <span>
#include <utility>

namespace tagwarden::policy {

using nlohmann::json;

std::string_view to_string(TagStatus value) {
    switch (value) {
    case TagStatus::tagged:
        return "tagged";
    case TagStatus::untagged:
        return "untagged";
    case TagStatus::any:
        return "any";
    }
    return "any";
}

std::string_view to_string(CountType value) {
    switch (value) {
    case CountType::image_count_more_than:
        return "imageCountMoreThan";
    case CountType::since_image_pushed:
        return "sinceImagePushed";
    case CountType::since_image_pulled:
        return "sinceImagePulled";
    case CountType::since_image_transitioned:
        return "sinceImageTransitioned";
    }
    return "imageCountMoreThan";
}

std::string_view to_string(StorageClass value) {
    return value == StorageClass::archive ? "archive" : "standard";
}

std::string_view to_string(ActionType value) {
    return value == ActionType::transition ? "transition" : "expire";
}

std::string rule_label(const Rule& rule) {
    return "rulePriority " + std::to_string(rule.rule_priority);
}

std::string to_string(const PolicyProblem& problem) {
    std::string out;
    if (problem.rule_index) {
        out += "rules[" + std::to_string(*problem.rule_index) + "]";
        if (problem.rule_priority)
            out += " (rulePriority " + std::to_string(*problem.rule_priority) + ")";
        if (!problem.field.empty())
            out += " ";
    }
    out += problem.field;
    if (!out.empty())
        out += ": ";
    out += problem.message;
    if (!problem.fix.empty())
        out += " Fix: " + problem.fix;
    return out;
}

namespace {

const char* json_type_name(const json& value) {
    switch (value.type()) {
    case json::value_t::null:
        return "null";
    case json::value_t::object:
        return "an object";
    case json::value_t::array:
        return "an array";
    case json::value_t::string:
        return "a string";
    case json::value_t::boolean:
        return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
        return "an integer";
    case json::value_t::number_float:
        return "a non-integer number";
    default:
        return "an unsupported value";
    }
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The known spelling closest to `text` (case-insensitive, or within two edits), or empty.
std::string_view closest(std::string_view text, std::span<const std::string_view> known) {
    std::string_view best;
    std::size_t best_distance = 3;
    for (auto candidate : known) {
        std::size_t d = edit_distance(lower(text), lower(candidate));
        if (d < best_distance) {
            best = candidate;
            best_distance = d;
        }
    }
    return best;
}

std::string quoted_list(std::span<const std::string_view> values) {
    std::string out;
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i > 0)
            out += i + 1 == values.size() ? " or " : ", ";
        out += "\"" + std::string(values[i]) + "\"";
    }
    return out;
}

constexpr std::array<std::string_view, 1> k_policy_fields = {"rules"};
constexpr std::array<std::string_view, 4> k_rule_fields = {"rulePriority", "description", "selection",
                                                           "action"};
constexpr std::array<std::string_view, 7> k_selection_fields = {
    "tagStatus", "tagPrefixList", "tagPatternList", "storageClass", "countType", "countUnit", "countNumber"};
constexpr std::array<std::string_view, 2> k_action_fields = {"type", "targetStorageClass"};

constexpr std::array<std::string_view, 3> k_tag_status_names = {"tagged", "untagged", "any"};
constexpr std::array<std::string_view, 4> k_count_type_names = {"imageCountMoreThan", "sinceImagePushed",
                                                                "sinceImagePulled", "sinceImageTransitioned"};
constexpr std::array<std::string_view, 2> k_storage_class_names = {"standard", "archive"};
constexpr std::array<std::string_view, 2> k_action_type_names = {"expire", "transition"};

class Parser {
  public:
    explicit Parser(std::vector<PolicyProblem>& problems) : m_problems(problems) {}

    LifecyclePolicy parse(std::string_view text) {
        LifecyclePolicy policy;
        // ECR's limits count characters, not bytes: count UTF-8 code points (every byte but continuations).
        policy.text_length = static_cast<std::size_t>(std::count_if(
            text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
        json root;
        try {
            root = json::parse(text);
        } catch (const json::exception& e) {  // parse_error, and out_of_range for a number too large
            add("", std::string("not valid JSON: ") + e.what(),
                "check the file is the lifecycle policy JSON (as `aws ecr get-lifecycle-policy --query "
                "lifecyclePolicyText --output text` prints it)");
            return policy;
        }
        if (!root.is_object()) {
            add("",
                std::string("the policy must be a JSON object with a \"rules\" array, got ") +
                    json_type_name(root),
                "write {\"rules\": [ ... ]}");
            return policy;
        }
        check_unknown(root, k_policy_fields, "");
        auto rules = root.find("rules");
        if (rules == root.end() || rules->is_null()) {
            add("rules", "the \"rules\" array is required", "add \"rules\": [ ... ] with one to 50 rules");
            return policy;
        }
        if (!rules->is_array()) {
            add("rules", std::string("must be an array, got ") + json_type_name(*rules),
                "write \"rules\": [ {rule}, ... ]");
            return policy;
        }
        for (std::size_t i = 0; i < rules->size(); ++i) {
            m_rule_index = i;
            m_rule_priority.reset();
            policy.rules.push_back(parse_rule((*rules)[i]));
        }
        m_rule_index.reset();
        return policy;
    }

  private:
    void add(std::string field, std::string message, std::string fix) {
        m_problems.push_back(PolicyProblem{m_rule_index, m_rule_priority, std::move(field),
                                           std::move(message), std::move(fix)});
    }

    void check_unknown(const json& object, std::span<const std::string_view> known,
                       const std::string& where) {
        for (const auto& [key, value] : object.items()) {
            if (std::find(known.begin(), known.end(), key) != known.end())
                continue;
            auto suggestion = closest(key, known);
            std::string path = where.empty() ? key : where + "." + key;
            add(path, "unknown field \"" + key + "\"",
                suggestion.empty() ? "remove it; allowed here: " + quoted_list(known)
                                   : "did you mean \"" + std::string(suggestion) + "\"?");
        }
    }

    // Returns the member, or nullptr when absent. An explicit null is refused, as ECR refuses it
    // (PutLifecyclePolicy answers InvalidParameterException), and reads as absent for the rest.
    const json* member(const json& object, std::string_view key, std::string_view path = {}) {
        auto it = object.find(key);
        if (it == object.end())
            return nullptr;
        if (it->is_null()) {
            add(std::string(path) + std::string(key), "an explicit null is not accepted by ECR",
                "remove \"" + std::string(key) + "\" or give it a value");
            return nullptr;
        }
        return &*it;
    }

    std::optional<std::int64_t> integer(const json& value, const std::string& field,
                                        const std::string& example) {
        if (value.is_number_integer()) {
            if (value.is_number_unsigned() &&
                value.get<std::uint64_t>() >
                    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                add(field, "integer out of range", "use a value below 2147483648");
                return std::nullopt;
            }
            return value.get<std::int64_t>();
        }
        add(field, std::string("must be an integer, got ") + json_type_name(value) + " " + value.dump(),
            "write a whole number without quotes, e.g. " + example);
        return std::nullopt;
    }

    std::optional<std::string> string(const json& value, const std::string& field) {
        if (value.is_string())
            return value.get<std::string>();
        add(field, std::string("must be a string, got ") + json_type_name(value) + " " + value.dump(),
            "write it as a JSON string in double quotes");
        return std::nullopt;
    }

    template <class Enum>
    std::optional<Enum> enumeration(const json& value, const std::string& field,
                                    std::span<const std::string_view> names) {
        auto text = string(value, field);
        if (!text)
            return std::nullopt;
        for (std::size_t i = 0; i < names.size(); ++i)
            if (*text == names[i])
                return static_cast<Enum>(i);
        auto suggestion = closest(*text, names);
        add(field, "\"" + *text + "\" is not one of " + quoted_list(names),
            suggestion.empty() ? "use one of " + quoted_list(names)
                               : "use \"" + std::string(suggestion) + "\" (values are case-sensitive)");
        return std::nullopt;
    }

    std::optional<std::vector<std::string>> string_list(const json& value, const std::string& field) {
        if (!value.is_array()) {
            add(field, std::string("must be an array of strings, got ") + json_type_name(value),
                "write it as [\"prod-\"] even for one entry");
            return std::nullopt;
        }
        std::vector<std::string> out;
        bool ok = true;
        for (std::size_t i = 0; i < value.size(); ++i) {
            auto entry = string(value[i], field + "[" + std::to_string(i) + "]");
            if (entry)
                out.push_back(std::move(*entry));
            else
                ok = false;
        }
        if (!ok)
            return std::nullopt;
        return out;
    }

    Rule parse_rule(const json& value) {
        Rule rule;
        if (!value.is_object()) {
            add("", std::string("a rule must be a JSON object, got ") + json_type_name(value),
                "write {\"rulePriority\": 1, \"selection\": {...}, \"action\": {\"type\": \"expire\"}}");
            return rule;
        }
        if (const json* priority = member(value, "rulePriority")) {
            if (auto p = integer(*priority, "rulePriority", "\"rulePriority\": 1")) {
                rule.rule_priority = *p;
                if (*p >= 1)
                    m_rule_priority = *p;
            }
        } else {
            add("rulePriority", "rulePriority is required",
                "add a unique positive integer \"rulePriority\"; rules are applied from the lowest number "
                "up");
        }
        check_unknown(value, k_rule_fields, "");
        if (const json* description = member(value, "description")) {
            if (auto d = string(*description, "description"))
                rule.description = std::move(*d);
        }
        if (const json* selection = member(value, "selection"))
            parse_selection(*selection, rule.selection);
        else
            add("selection", "selection is required",
                "add \"selection\": {\"tagStatus\": ..., \"countType\": ..., \"countNumber\": ...}");
        if (const json* action = member(value, "action"))
            parse_action(*action, rule.action);
        else
            add("action", "action is required", "add \"action\": {\"type\": \"expire\"}");
        return rule;
    }

    void parse_selection(const json& value, Selection& selection) {
        if (!value.is_object()) {
            add("selection", std::string("must be an object, got ") + json_type_name(value),
                "write \"selection\": {\"tagStatus\": ..., \"countType\": ..., \"countNumber\": ...}");
            return;
        }
        check_unknown(value, k_selection_fields, "selection");
        if (const json* v = member(value, "tagStatus", "selection.")) {
            if (auto e = enumeration<TagStatus>(*v, "selection.tagStatus", k_tag_status_names))
                selection.tag_status = *e;
        } else {
            add("selection.tagStatus", "tagStatus is required",
                "add \"tagStatus\": \"tagged\", \"untagged\" or \"any\"");
        }
        if (const json* v = member(value, "tagPrefixList", "selection."))
            selection.tag_prefix_list = string_list(*v, "selection.tagPrefixList");
        if (const json* v = member(value, "tagPatternList", "selection."))
            selection.tag_pattern_list = string_list(*v, "selection.tagPatternList");
        if (const json* v = member(value, "storageClass", "selection."))
            selection.storage_class =
                enumeration<StorageClass>(*v, "selection.storageClass", k_storage_class_names);
        if (const json* v = member(value, "countType", "selection.")) {
            if (auto e = enumeration<CountType>(*v, "selection.countType", k_count_type_names))
                selection.count_type = *e;
        } else {
            add("selection.countType", "countType is required",
                "add \"countType\": \"imageCountMoreThan\", \"sinceImagePushed\", \"sinceImagePulled\" or "
                "\"sinceImageTransitioned\"");
        }
        if (const json* v = member(value, "countUnit", "selection."))
            selection.count_unit = string(*v, "selection.countUnit");
        if (const json* v = member(value, "countNumber", "selection.")) {
            if (auto n = integer(*v, "selection.countNumber", "\"countNumber\": 10"))
                selection.count_number = *n;
        } else {
            add("selection.countNumber", "countNumber is required",
                "add \"countNumber\": a positive integer (images to keep, or days)");
        }
    }

    void parse_action(const json& value, Action& action) {
        if (!value.is_object()) {
            add("action", std::string("must be an object, got ") + json_type_name(value),
                "write \"action\": {\"type\": \"expire\"}");
            return;
        }
        check_unknown(value, k_action_fields, "action");
        if (const json* v = member(value, "type", "action.")) {
            if (auto e = enumeration<ActionType>(*v, "action.type", k_action_type_names))
                action.type = *e;
        } else {
            add("action.type", "action type is required", "add \"type\": \"expire\" or \"transition\"");
        }
        if (const json* v = member(value, "targetStorageClass", "action."))
            action.target_storage_class =
                enumeration<StorageClass>(*v, "action.targetStorageClass", k_storage_class_names);
    }

    std::vector<PolicyProblem>& m_problems;
    std::optional<std::size_t> m_rule_index;
    std::optional<std::int64_t> m_rule_priority;
};

std::string join_problems(const std::vector<PolicyProblem>& problems) {
    std::string out = "invalid lifecycle policy (" + std::to_string(problems.size()) +
                      (problems.size() == 1 ? " problem):" : " problems):");
    for (const auto& p : problems)
        out += "\n  " + to_string(p);
    return out;
}

} // namespace

std::vector<PolicyProblem> structural_problems(std::string_view json_text) {
    std::vector<PolicyProblem> problems;
    Parser(problems).parse(json_text);
    return problems;
}

Result<LifecyclePolicy> parse_policy(std::string_view json_text) {
    std::vector<PolicyProblem> problems;
    auto policy = Parser(problems).parse(json_text);
    if (!problems.empty())
        return fail(ErrorKind::invalid_input, join_problems(problems));
    return policy;
}

std::vector<PolicyProblem> check_policy(std::string_view json_text) {
    std::vector<PolicyProblem> problems;
    auto policy = Parser(problems).parse(json_text);
    if (!problems.empty())
        return problems;
    return validate_policy(policy);
}

Result<LifecyclePolicy> load_policy(std::string_view json_text) {
    std::vector<PolicyProblem> problems;
    auto policy = Parser(problems).parse(json_text);
    if (problems.empty())
        problems = validate_policy(policy);
    if (!problems.empty())
        return fail(ErrorKind::invalid_input, join_problems(problems));
    return policy;
}

} // namespace tagwarden::policy
