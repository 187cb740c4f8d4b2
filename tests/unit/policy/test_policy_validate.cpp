#include <tagwarden/policy/lifecycle_policy.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace tagwarden;
using namespace tagwarden::policy;
using nlohmann::json;

namespace {

json untagged_rule(int priority) {
    return json{{"rulePriority", priority},
                {"description", "expire untagged images after one day"},
                {"selection",
                 {{"tagStatus", "untagged"},
                  {"countType", "sinceImagePushed"},
                  {"countUnit", "days"},
                  {"countNumber", 1}}},
                {"action", {{"type", "expire"}}}};
}

json tagged_rule(int priority, const std::string& pattern, int keep) {
    return json{{"rulePriority", priority},
                {"description", "keep the newest " + pattern + " images"},
                {"selection",
                 {{"tagStatus", "tagged"},
                  {"tagPatternList", json::array({pattern})},
                  {"countType", "imageCountMoreThan"},
                  {"countNumber", keep}}},
                {"action", {{"type", "expire"}}}};
}

std::string policy_text(const json& rules) {
    return json{{"rules", rules}}.dump(2);
}

bool has_problem(const std::vector<PolicyProblem>& problems, const std::string& field,
                 const std::string& text, std::optional<std::int64_t> priority = std::nullopt) {
    return std::any_of(problems.begin(), problems.end(), [&](const PolicyProblem& p) {
        return p.field == field && p.message.find(text) != std::string::npos && !p.fix.empty() &&
               (!priority || p.rule_priority == priority);
    });
}

std::string dump(const std::vector<PolicyProblem>& problems) {
    std::string out;
    for (const auto& p : problems)
        out += to_string(p) + "\n";
    return out;
}

} // namespace

TEST_CASE("a well-formed policy parses into the model", "[unit][policy]") {
    json rules = json::array({tagged_rule(1, "*-prod", 30), untagged_rule(2)});
    rules.push_back(json{{"rulePriority", 3},
                         {"selection",
                          {{"tagStatus", "any"},
                           {"countType", "sinceImagePulled"},
                           {"countUnit", "days"},
                           {"countNumber", 90}}},
                         {"action", {{"type", "transition"}, {"targetStorageClass", "archive"}}}});
    rules.push_back(json{{"rulePriority", 4},
                         {"selection",
                          {{"tagStatus", "any"},
                           {"storageClass", "archive"},
                           {"countType", "sinceImageTransitioned"},
                           {"countUnit", "days"},
                           {"countNumber", 365}}},
                         {"action", {{"type", "expire"}}}});
    auto text = policy_text(rules);
    auto policy = load_policy(text);
    INFO((policy ? "" : policy.error().message));
    REQUIRE(policy);
    REQUIRE(policy->rules.size() == 4);
    CHECK(policy->text_length == text.size());
    const auto& r1 = policy->rules[0];
    CHECK(r1.rule_priority == 1);
    CHECK(r1.description == "keep the newest *-prod images");
    CHECK(r1.selection.tag_status == TagStatus::tagged);
    REQUIRE(r1.selection.tag_pattern_list);
    CHECK(*r1.selection.tag_pattern_list == std::vector<std::string>{"*-prod"});
    CHECK_FALSE(r1.selection.tag_prefix_list);
    CHECK(r1.selection.count_type == CountType::image_count_more_than);
    CHECK(r1.selection.count_number == 30);
    CHECK_FALSE(r1.selection.count_unit);
    CHECK(r1.selection.effective_storage_class() == StorageClass::standard);
    CHECK(policy->rules[1].selection.tag_status == TagStatus::untagged);
    CHECK(policy->rules[1].selection.count_unit == "days");
    CHECK(policy->rules[2].selection.count_type == CountType::since_image_pulled);
    CHECK(policy->rules[2].action.type == ActionType::transition);
    CHECK(policy->rules[2].action.target_storage_class == StorageClass::archive);
    CHECK(policy->rules[3].selection.storage_class == StorageClass::archive);
    CHECK(policy->rules[3].selection.count_type == CountType::since_image_transitioned);
}

TEST_CASE("structural problems are all reported with rule, field and fix", "[unit][policy]") {
    SECTION("malformed JSON") {
        auto r = parse_policy("{\"rules\": [");
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(r.error().message, Catch::Contains("not valid JSON"));
    }
    SECTION("root is not an object, rules missing or not an array") {
        CHECK_FALSE(parse_policy("[]"));
        CHECK(has_problem(structural_problems("{}"), "rules", "required"));
        CHECK(has_problem(structural_problems("{\"rules\": {}}"), "rules", "must be an array"));
    }
    SECTION("several problems in several rules are reported together") {
        json r1 = untagged_rule(1);
        r1["selection"]["tagStatus"] = "Untagged";
        r1["selection"]["countNumber"] = "1";
        json r2 = tagged_rule(2, "a*", 1);
        r2.erase("action");
        r2["selection"]["tagPrefixlist"] = json::array({"x"});
        auto problems = structural_problems(policy_text(json::array({r1, r2})));
        INFO(dump(problems));
        CHECK(problems.size() == 4);
        CHECK(has_problem(problems, "selection.tagStatus", "\"Untagged\" is not one of", 1));
        CHECK(has_problem(problems, "selection.countNumber", "must be an integer, got a string", 1));
        CHECK(has_problem(problems, "action", "required", 2));
        CHECK(has_problem(problems, "selection.tagPrefixlist", "unknown field", 2));
        auto message = parse_policy(policy_text(json::array({r1, r2}))).error().message;
        CHECK_THAT(message, Catch::Contains("4 problems"));
        CHECK_THAT(message, Catch::Contains("rules[1] (rulePriority 2) selection.tagPrefixlist"));
        CHECK_THAT(message, Catch::Contains("did you mean \"tagPrefixList\"?"));
        CHECK_THAT(message, Catch::Contains("use \"untagged\""));
    }
    SECTION("missing required fields") {
        json rule = json::object({{"selection", json::object()}, {"action", json::object()}});
        auto problems = structural_problems(policy_text(json::array({rule})));
        INFO(dump(problems));
        CHECK(has_problem(problems, "rulePriority", "required"));
        CHECK(has_problem(problems, "selection.tagStatus", "required"));
        CHECK(has_problem(problems, "selection.countType", "required"));
        CHECK(has_problem(problems, "selection.countNumber", "required"));
        CHECK(has_problem(problems, "action.type", "required"));
    }
    SECTION("a fractional countNumber and a non-string list entry") {
        json rule = tagged_rule(1, "a*", 1);
        rule["selection"]["countNumber"] = 1.5;
        rule["selection"]["tagPatternList"] = json::array({"a*", 3});
        auto problems = structural_problems(policy_text(json::array({rule})));
        CHECK(has_problem(problems, "selection.countNumber", "non-integer"));
        CHECK(has_problem(problems, "selection.tagPatternList[1]", "must be a string"));
    }
    SECTION("an explicit null is refused, as ECR refuses it (issue 14)") {
        json rule = untagged_rule(1);
        rule["description"] = nullptr;
        rule["selection"]["storageClass"] = nullptr;
        CHECK_FALSE(parse_policy(policy_text(json::array({rule}))));
        auto problems = structural_problems(policy_text(json::array({rule})));
        CHECK(has_problem(problems, "description", "explicit null"));
        CHECK(has_problem(problems, "selection.storageClass", "explicit null"));
    }
}

TEST_CASE("ECR's validation rules", "[unit][policy]") {
    auto problems_for = [](const json& rules) {
        auto problems = check_policy(policy_text(rules));
        INFO(dump(problems));
        return problems;
    };

    SECTION("the valid baseline has no problems") {
        CHECK(problems_for(json::array({tagged_rule(1, "*-prod", 10), untagged_rule(2)})).empty());
    }
    SECTION("rule priorities must be unique and positive") {
        auto p = problems_for(json::array({tagged_rule(1, "a*", 1), tagged_rule(1, "b*", 1)}));
        CHECK(has_problem(p, "rulePriority", "also used by rules[0]", 1));
        CHECK(has_problem(problems_for(json::array({tagged_rule(0, "a*", 1)})), "rulePriority", "positive"));
        CHECK(has_problem(problems_for(json::array({tagged_rule(-3, "a*", 1)})), "rulePriority", "positive"));
    }
    SECTION("an any rule must be the last of its storage class") {
        json any = untagged_rule(1);
        any["selection"]["tagStatus"] = "any";
        auto p = problems_for(json::array({any, tagged_rule(2, "a*", 1)}));
        CHECK(has_problem(p, "selection.tagStatus", "highest rulePriority", 1));
        any["rulePriority"] = 3;
        CHECK(problems_for(json::array({any, tagged_rule(2, "a*", 1)})).empty());
    }
    SECTION("two any rules are fine in different storage classes, not in one") {
        json standard_any = {{"rulePriority", 1},
                             {"selection",
                              {{"tagStatus", "any"},
                               {"countType", "sinceImagePushed"},
                               {"countUnit", "days"},
                               {"countNumber", 30}}},
                             {"action", {{"type", "transition"}, {"targetStorageClass", "archive"}}}};
        json archive_any = {{"rulePriority", 2},
                            {"selection",
                             {{"tagStatus", "any"},
                              {"storageClass", "archive"},
                              {"countType", "sinceImageTransitioned"},
                              {"countUnit", "days"},
                              {"countNumber", 365}}},
                            {"action", {{"type", "expire"}}}};
        CHECK(problems_for(json::array({standard_any, archive_any})).empty());
        json second_standard_any = standard_any;
        second_standard_any["rulePriority"] = 3;
        second_standard_any["action"] = json{{"type", "expire"}};
        auto p = problems_for(json::array({standard_any, archive_any, second_standard_any}));
        CHECK(has_problem(p, "selection.tagStatus", "highest rulePriority", 1));
    }
    SECTION("tagged needs exactly one non-empty list; untagged and any take none") {
        json tagged = tagged_rule(1, "a*", 1);
        tagged["selection"].erase("tagPatternList");
        CHECK(has_problem(problems_for(json::array({tagged})), "selection.tagStatus",
                          "needs a tagPrefixList or a tagPatternList", 1));
        tagged["selection"]["tagPatternList"] = json::array({"a*"});
        tagged["selection"]["tagPrefixList"] = json::array({"a"});
        CHECK(has_problem(problems_for(json::array({tagged})), "selection.tagPatternList", "not both", 1));
        tagged["selection"].erase("tagPrefixList");
        tagged["selection"]["tagPatternList"] = json::array();
        CHECK(has_problem(problems_for(json::array({tagged})), "selection.tagPatternList", "empty", 1));
        tagged["selection"]["tagPatternList"] = json::array({""});
        CHECK(has_problem(problems_for(json::array({tagged})), "selection.tagPatternList[0]", "empty pattern",
                          1));
        json untagged = untagged_rule(1);
        untagged["selection"]["tagPrefixList"] = json::array({"a"});
        CHECK(has_problem(problems_for(json::array({untagged})), "selection.tagPrefixList",
                          "only allowed when tagStatus is \"tagged\"", 1));
    }
    SECTION("at most four wildcards per pattern") {
        CHECK(problems_for(json::array({tagged_rule(1, "*test*1*2*3", 1)})).empty());
        CHECK(problems_for(json::array({tagged_rule(1, "test*1*2*3*", 1)})).empty());
        auto p = problems_for(json::array({tagged_rule(1, "test*1*2*3*4*5*6", 1)}));
        CHECK(has_problem(p, "selection.tagPatternList[0]", "has 6 wildcards", 1));
    }
    SECTION("countUnit is required for since* and forbidden for imageCountMoreThan") {
        json age = untagged_rule(1);
        age["selection"].erase("countUnit");
        CHECK(has_problem(problems_for(json::array({age})), "selection.countUnit", "requires \"countUnit\"",
                          1));
        age["selection"]["countUnit"] = "hours";
        CHECK(has_problem(problems_for(json::array({age})), "selection.countUnit",
                          "\"hours\" is not supported", 1));
        json count = tagged_rule(1, "a*", 5);
        count["selection"]["countUnit"] = "days";
        CHECK(has_problem(problems_for(json::array({count})), "selection.countUnit", "must not be set", 1));
    }
    SECTION("countNumber must be positive") {
        json count = tagged_rule(1, "a*", 0);
        CHECK(
            has_problem(problems_for(json::array({count})), "selection.countNumber", "0 is not accepted", 1));
    }
    SECTION("sinceImagePulled only with transition") {
        json pulled = untagged_rule(1);
        pulled["selection"]["countType"] = "sinceImagePulled";
        CHECK(has_problem(problems_for(json::array({pulled})), "action.type",
                          "must be used with action \"transition\"", 1));
        pulled["action"] = json{{"type", "transition"}, {"targetStorageClass", "archive"}};
        CHECK(problems_for(json::array({pulled})).empty());
    }
    SECTION("transition needs targetStorageClass archive") {
        json rule = untagged_rule(1);
        rule["action"] = json{{"type", "transition"}};
        CHECK(has_problem(problems_for(json::array({rule})), "action.targetStorageClass", "requires", 1));
        rule["action"]["targetStorageClass"] = "standard";
        CHECK(
            has_problem(problems_for(json::array({rule})), "action.targetStorageClass", "not supported", 1));
    }
    SECTION("sinceImageTransitioned needs archive storage, expire and at least 90 days") {
        json rule = untagged_rule(1);
        rule["selection"]["countType"] = "sinceImageTransitioned";
        rule["selection"]["countNumber"] = 30;
        rule["action"] = json{{"type", "transition"}, {"targetStorageClass", "archive"}};
        auto p = problems_for(json::array({rule}));
        CHECK(has_problem(p, "selection.storageClass", "requires \"storageClass\": \"archive\"", 1));
        CHECK(has_problem(p, "action.type", "must be used with action \"expire\"", 1));
        CHECK(has_problem(p, "selection.countNumber", "90 days", 1));
    }
    SECTION("storageClass archive only with sinceImageTransitioned") {
        json rule = untagged_rule(1);
        rule["selection"]["storageClass"] = "archive";
        CHECK(has_problem(problems_for(json::array({rule})), "selection.storageClass",
                          "only valid with countType \"sinceImageTransitioned\"", 1));
    }
    SECTION("only one untagged rule per storage class") {
        json second = untagged_rule(2);
        second["selection"]["countNumber"] = 5;
        CHECK(has_problem(problems_for(json::array({untagged_rule(1), second})), "selection.tagStatus",
                          "only one rule per storage class may select untagged images", 2));
    }
    SECTION("prefix sets must be unique per storage class") {
        json a = tagged_rule(1, "x", 1);
        a["selection"].erase("tagPatternList");
        a["selection"]["tagPrefixList"] = json::array({"prod", "web"});
        json b = a;
        b["rulePriority"] = 2;
        b["selection"]["tagPrefixList"] = json::array({"web", "prod"});
        CHECK(has_problem(problems_for(json::array({a, b})), "selection.tagPrefixList",
                          "same set of prefixes", 2));
        b["selection"]["tagPrefixList"] = json::array({"web"});
        CHECK(problems_for(json::array({a, b})).empty());
    }
    SECTION("rule count and text length limits") {
        json rules = json::array();
        for (int i = 1; i <= 51; ++i)
            rules.push_back(tagged_rule(i, "r" + std::to_string(i) + "-*", 1));
        auto p = problems_for(rules);
        CHECK(has_problem(p, "rules", "51 rules"));
        json empty = json::array();
        CHECK(has_problem(problems_for(empty), "rules", "no rules"));

        json big = tagged_rule(1, "a*", 1);
        big["description"] = std::string(31000, 'x');
        CHECK(has_problem(problems_for(json::array({big})), "lifecyclePolicyText", "at most 30720"));

        // ECR counts characters: 20,000 two-byte letters (40,000 bytes) are within 30720.
        json accented = tagged_rule(1, "a*", 1);
        std::string letters;
        for (int i = 0; i < 20000; ++i)
            letters += "\xc3\xa9";  // e with an acute accent
        accented["description"] = letters;
        INFO(dump(problems_for(json::array({accented}))));
        CHECK_FALSE(has_problem(problems_for(json::array({accented})), "lifecyclePolicyText", "at most 30720"));
        auto parsed = load_policy(policy_text(json::array({accented})));
        if (parsed)
            CHECK(parsed->text_length < policy_text(json::array({accented})).size() - 19000);
    }
    SECTION("policies built in code skip the text limits") {
        LifecyclePolicy policy;
        Rule rule;
        rule.rule_priority = 1;
        rule.selection.tag_status = TagStatus::untagged;
        rule.selection.count_number = 1;
        policy.rules.push_back(rule);
        CHECK(validate_policy(policy).empty());
    }
}

TEST_CASE("what ECR refuses: an explicit null, targetStorageClass on expire", "[unit][policy]") {
    json null_unit = untagged_rule(1);
    null_unit["selection"]["countUnit"] = nullptr;
    auto problems_for = [](const json& rules) { return check_policy(policy_text(rules)); };
    auto p = problems_for(json::array({null_unit}));
    INFO(dump(p));
    CHECK(has_problem(p, "selection.countUnit", "explicit null"));

    json null_description = untagged_rule(1);
    null_description["description"] = nullptr;
    CHECK(has_problem(problems_for(json::array({null_description})), "description", "explicit null"));

    json expire_with_target = untagged_rule(1);
    expire_with_target["action"]["targetStorageClass"] = "archive";
    auto q = problems_for(json::array({expire_with_target}));
    INFO(dump(q));
    CHECK(has_problem(q, "action.targetStorageClass", "only accepted with action \"transition\""));
}

// Found by fuzz_policy: a number too large for a double made nlohmann/json throw out_of_range, not
// parse_error, out of the parser.
TEST_CASE("a number too large is invalid JSON, not an exception", "[unit][policy]") {
    std::string huge(400, '9');
    auto policy = load_policy(huge + "e999");
    REQUIRE_FALSE(policy);
    CHECK_THAT(policy.error().message, Catch::Contains("not valid JSON"));
    CHECK_FALSE(load_policy(R"({"rules":[{"rulePriority":1e400}]})"));
}
