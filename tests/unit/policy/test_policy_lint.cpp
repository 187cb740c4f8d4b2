#include <tagwarden/policy/lint.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace tagwarden;
using namespace tagwarden::policy;
using nlohmann::json;

namespace {

json count_rule(int priority, const std::string& list, std::vector<std::string> entries, int keep) {
    return json{{"rulePriority", priority},
                {"selection",
                 {{"tagStatus", "tagged"},
                  {list, entries},
                  {"countType", "imageCountMoreThan"},
                  {"countNumber", keep}}},
                {"action", {{"type", "expire"}}}};
}

json age_rule(int priority, const std::string& status, std::vector<std::string> patterns, int days) {
    json selection = {{"tagStatus", status},
                      {"countType", "sinceImagePushed"},
                      {"countUnit", "days"},
                      {"countNumber", days}};
    if (!patterns.empty())
        selection["tagPatternList"] = patterns;
    return json{{"rulePriority", priority}, {"selection", selection}, {"action", {{"type", "expire"}}}};
}

json untagged_rule(int priority) {
    return age_rule(priority, "untagged", {}, 1);
}

LifecyclePolicy policy_of(const json& rules) {
    auto policy = load_policy(json{{"rules", rules}}.dump());
    INFO((policy ? "" : policy.error().message));
    REQUIRE(policy);
    return *policy;
}

std::vector<LintFinding> findings_with(const std::vector<LintFinding>& findings, const std::string& id) {
    std::vector<LintFinding> out;
    std::copy_if(findings.begin(), findings.end(), std::back_inserter(out),
                 [&](const LintFinding& f) { return f.id == id; });
    return out;
}

std::string dump(const std::vector<LintFinding>& findings) {
    std::string out;
    for (const auto& f : findings)
        out += std::string(to_string(f.severity)) + " " + f.id + " " +
               (f.rule_priority ? std::to_string(*f.rule_priority) : "-") + ": " + f.message + "\n";
    return out;
}

const LintConfig k_env_first{{"prod"}, "{env}-{version}"};

} // namespace

TEST_CASE("a safe policy has no errors or warnings", "[unit][policy]") {
    // Shield prod first, then dev by count, untagged by age, everything else by count.
    auto policy = policy_of(
        json::array({count_rule(1, "tagPatternList", {"*-prod"}, 50),
                     count_rule(2, "tagPatternList", {"*-dev"}, 20), untagged_rule(3),
                     json{{"rulePriority", 4},
                          {"selection",
                           {{"tagStatus", "any"}, {"countType", "imageCountMoreThan"}, {"countNumber", 500}}},
                          {"action", {{"type", "expire"}}}}}));
    auto findings = lint(policy);
    INFO(dump(findings));
    CHECK_FALSE(has_errors(findings));
    REQUIRE(findings.size() == 1);
    CHECK(findings[0].id == "protected-retention");
    CHECK(findings[0].severity == Severity::info);
    CHECK(findings[0].rule_priority == 1);
    CHECK_THAT(findings[0].message, Catch::Contains("keeps the 50 newest prod images"));
}

TEST_CASE("lint: protected environments", "[unit][policy]") {
    SECTION("multi-tag-reach: a dev- count rule reaches images also tagged prod") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPrefixList", {"dev-"}, 10), untagged_rule(2)}));
        auto findings = lint(policy, k_env_first);
        INFO(dump(findings));
        auto reach = findings_with(findings, "multi-tag-reach");
        REQUIRE(reach.size() == 1);
        CHECK(reach[0].severity == Severity::error);
        CHECK(reach[0].rule_priority == 1);
        CHECK_THAT(reach[0].message, Catch::Contains("ANY of its tags"));
        CHECK_THAT(reach[0].fix, Catch::Contains("\"prod-*\""));
        CHECK(has_errors(findings));
        SECTION("same with the default template") {
            auto by_default = findings_with(lint(policy), "multi-tag-reach");
            REQUIRE(by_default.size() == 1);
            CHECK_THAT(by_default[0].fix, Catch::Contains("\"*-prod\""));
        }
    }
    SECTION("a higher-priority rule that selects every prod tag shields them") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPrefixList", {"prod-"}, 100),
                                   count_rule(2, "tagPrefixList", {"dev-"}, 10), untagged_rule(3)}));
        auto findings = lint(policy, k_env_first);
        INFO(dump(findings));
        CHECK(findings_with(findings, "multi-tag-reach").empty());
        CHECK_FALSE(has_errors(findings));
        SECTION("but not when it comes after the dev- rule") {
            auto late =
                policy_of(json::array({count_rule(2, "tagPrefixList", {"prod-"}, 100),
                                       count_rule(1, "tagPrefixList", {"dev-"}, 10), untagged_rule(3)}));
            auto late_findings = lint(late, k_env_first);
            INFO(dump(late_findings));
            auto reach = findings_with(late_findings, "multi-tag-reach");
            REQUIRE(reach.size() == 1);
            CHECK(reach[0].rule_priority == 1);
        }
        SECTION("nor when it selects only some prod tags") {
            auto partial =
                policy_of(json::array({count_rule(1, "tagPatternList", {"prod-1*"}, 100),
                                       count_rule(2, "tagPrefixList", {"dev-"}, 10), untagged_rule(3)}));
            CHECK(findings_with(lint(partial, k_env_first), "multi-tag-reach").size() == 1);
        }
    }
    SECTION("protected-tag-overbroad: prefix prod also selects other tags, sharing the kept slots") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPrefixList", {"prod"}, 10), untagged_rule(2)}));
        auto findings = lint(policy, k_env_first);
        INFO(dump(findings));
        auto over = findings_with(findings, "protected-tag-overbroad");
        REQUIRE(over.size() == 1);
        CHECK(over[0].severity == Severity::error);
        CHECK_THAT(over[0].message, Catch::Contains("also matches e.g. \"prod\""));
        CHECK_THAT(over[0].fix, Catch::Contains("\"prod-*\""));
        SECTION("an exact prod-* rule is retention, not overbroad") {
            auto exact =
                policy_of(json::array({count_rule(1, "tagPatternList", {"prod-*"}, 10), untagged_rule(2)}));
            auto exact_findings = lint(exact, k_env_first);
            CHECK(findings_with(exact_findings, "protected-tag-overbroad").empty());
            CHECK(findings_with(exact_findings, "protected-retention").size() == 1);
        }
        SECTION("*prod with the default template also matches preprod-like tags") {
            auto star =
                policy_of(json::array({count_rule(1, "tagPatternList", {"*prod"}, 10), untagged_rule(2)}));
            CHECK(findings_with(lint(star), "protected-tag-overbroad").size() == 1);
        }
        SECTION("an any count rule with nothing above it") {
            auto any = policy_of(json::array(
                {json{{"rulePriority", 1},
                      {"selection",
                       {{"tagStatus", "any"}, {"countType", "imageCountMoreThan"}, {"countNumber", 100}}},
                      {"action", {{"type", "expire"}}}}}));
            auto any_findings = lint(any);
            INFO(dump(any_findings));
            CHECK(findings_with(any_findings, "protected-tag-overbroad").size() == 1);
        }
    }
    SECTION("protected-tag-match: a pattern matching some prod tags directly") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPatternList", {"1.*"}, 10), untagged_rule(2)}));
        auto findings = lint(policy);
        INFO(dump(findings));
        auto match = findings_with(findings, "protected-tag-match");
        REQUIRE(match.size() == 1);
        CHECK(match[0].severity == Severity::error);
        CHECK_THAT(match[0].message, Catch::Contains("-prod\""));
        CHECK(findings_with(findings, "multi-tag-reach").empty());
    }
    SECTION("age-rule-expires-protected: sinceImagePushed reaching prod images") {
        auto direct = policy_of(json::array({age_rule(1, "tagged", {"*-prod"}, 7), untagged_rule(2)}));
        auto findings = lint(direct);
        INFO(dump(findings));
        auto age = findings_with(findings, "age-rule-expires-protected");
        REQUIRE(age.size() == 1);
        CHECK(age[0].severity == Severity::error);
        CHECK(age[0].rule_priority == 1);
        CHECK_THAT(age[0].message, Catch::Contains("pushed more than 7 days ago"));
        SECTION("also through a second tag") {
            auto via_dev = policy_of(json::array({age_rule(1, "tagged", {"*-dev"}, 7), untagged_rule(2)}));
            auto dev_findings = findings_with(lint(via_dev), "age-rule-expires-protected");
            REQUIRE(dev_findings.size() == 1);
            CHECK_THAT(dev_findings[0].message, Catch::Contains("any of its tags matches"));
        }
        SECTION("not when shielded") {
            auto shielded = policy_of(json::array({count_rule(1, "tagPatternList", {"*-prod"}, 30),
                                                   age_rule(2, "tagged", {"*-dev"}, 7), untagged_rule(3)}));
            CHECK(findings_with(lint(shielded), "age-rule-expires-protected").empty());
        }
        SECTION("untagged age rules never reach tagged prod images") {
            CHECK(
                findings_with(lint(policy_of(json::array({untagged_rule(1)}))), "age-rule-expires-protected")
                    .empty());
        }
    }
    SECTION("archive-rule-reaches-protected: a transition rule can archive prod images") {
        auto policy = policy_of(
            json::array({json{{"rulePriority", 1},
                              {"selection",
                               {{"tagStatus", "any"},
                                {"countType", "sinceImagePulled"},
                                {"countUnit", "days"},
                                {"countNumber", 90}}},
                              {"action", {{"type", "transition"}, {"targetStorageClass", "archive"}}}}}));
        auto findings = lint(policy);
        INFO(dump(findings));
        auto archive = findings_with(findings, "archive-rule-reaches-protected");
        REQUIRE(archive.size() == 1);
        CHECK(archive[0].severity == Severity::warning);
        CHECK_THAT(archive[0].message, Catch::Contains("404"));
    }
    SECTION("several protected environments are checked separately") {
        LintConfig config{{"prod", "staging"}, "{env}-{version}"};
        auto policy =
            policy_of(json::array({count_rule(1, "tagPrefixList", {"prod-"}, 100),
                                   count_rule(2, "tagPrefixList", {"dev-"}, 10), untagged_rule(3)}));
        auto reach = findings_with(lint(policy, config), "multi-tag-reach");
        // prod is shielded by rule 1; staging images (also tagged dev- or prod-) are reached by both rules.
        REQUIRE(reach.size() == 2);
        CHECK(reach[0].rule_priority == 1);
        CHECK(reach[1].rule_priority == 2);
        CHECK_THAT(reach[0].message, Catch::Contains("staging"));
        CHECK_THAT(reach[1].message, Catch::Contains("staging"));
    }
    SECTION("no protected environments, no protected findings") {
        auto policy = policy_of(json::array({age_rule(1, "tagged", {"*-prod"}, 7), untagged_rule(2)}));
        CHECK_FALSE(has_errors(lint(policy, LintConfig{{}, "{version}-{env}"})));
    }
}

TEST_CASE("lint: policy-wide findings", "[unit][policy]") {
    SECTION("no-untagged-rule") {
        auto policy = policy_of(json::array({count_rule(1, "tagPatternList", {"*-prod"}, 50)}));
        auto findings = findings_with(lint(policy), "no-untagged-rule");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::warning);
        CHECK_FALSE(findings[0].rule_priority);
        CHECK(findings_with(lint(policy_of(json::array({untagged_rule(1)}))), "no-untagged-rule").empty());
    }
    SECTION("never-expires: only transitions") {
        auto policy = policy_of(
            json::array({json{{"rulePriority", 1},
                              {"selection",
                               {{"tagStatus", "untagged"},
                                {"countType", "sinceImagePushed"},
                                {"countUnit", "days"},
                                {"countNumber", 9}}},
                              {"action", {{"type", "transition"}, {"targetStorageClass", "archive"}}}}}));
        auto findings = findings_with(lint(policy), "never-expires");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::error);
    }
    SECTION("never-expires: the only expire rule selects nothing") {
        auto policy = policy_of(json::array({count_rule(1, "tagPatternList", {"git hash"}, 5)}));
        auto findings = lint(policy);
        INFO(dump(findings));
        CHECK(findings_with(findings, "never-expires").size() == 1);
        CHECK(findings_with(findings, "pattern-unmatchable").size() == 1);
    }
    SECTION("never-expires: an empty policy") {
        CHECK(findings_with(lint(LifecyclePolicy{}), "never-expires").size() == 1);
    }
    SECTION("any-not-last (for policies built in code; ECR rejects them)") {
        LifecyclePolicy policy;
        Rule any;
        any.rule_priority = 1;
        any.selection.tag_status = TagStatus::any;
        any.selection.count_number = 10;
        Rule untagged;
        untagged.rule_priority = 2;
        untagged.selection.tag_status = TagStatus::untagged;
        untagged.selection.count_number = 1;
        policy.rules = {any, untagged};
        auto findings = findings_with(lint(policy), "any-not-last");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::error);
        CHECK(findings[0].rule_priority == 1);
        policy.rules[0].rule_priority = 3;
        CHECK(findings_with(lint(policy), "any-not-last").empty());
    }
}

TEST_CASE("lint: lists and patterns", "[unit][policy]") {
    SECTION("list-and-semantics: entries no single tag can match are probably meant as OR") {
        auto policy = policy_of(
            json::array({count_rule(1, "tagPatternList", {"dev-*", "staging-*"}, 5), untagged_rule(2)}));
        auto findings = findings_with(lint(policy), "list-and-semantics");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::warning);
        CHECK_THAT(findings[0].message, Catch::Contains("no single tag matches"));
        CHECK_THAT(findings[0].fix, Catch::Contains("one rule per pattern"));
    }
    SECTION("list-and-semantics: compatible entries get a reminder only") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPatternList", {"alpha*", "*-1"}, 5), untagged_rule(2)}));
        auto findings = findings_with(lint(policy), "list-and-semantics");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].severity == Severity::info);
    }
    SECTION("pattern-unmatchable") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPatternList", {"team/app-*"}, 5), untagged_rule(2)}));
        auto findings = findings_with(lint(policy), "pattern-unmatchable");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].rule_priority == 1);
        CHECK_THAT(findings[0].message, Catch::Contains("\"team/app-*\""));
    }
    SECTION("prefix-contains-wildcard") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPrefixList", {"prod*"}, 5), untagged_rule(2)}));
        auto findings = findings_with(lint(policy), "prefix-contains-wildcard");
        REQUIRE(findings.size() == 1);
        CHECK_THAT(findings[0].fix, Catch::Contains("tagPatternList"));
    }
    SECTION("shadowed-rule: a broader higher-priority rule selects everything") {
        auto policy =
            policy_of(json::array({count_rule(1, "tagPatternList", {"release-*"}, 5),
                                   count_rule(2, "tagPrefixList", {"release-1"}, 2), untagged_rule(3)}));
        auto findings = findings_with(lint(policy), "shadowed-rule");
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].rule_priority == 2);
        CHECK_THAT(findings[0].message, Catch::Contains("rulePriority 1"));
        SECTION("not when the lower rule is broader") {
            auto fine =
                policy_of(json::array({count_rule(1, "tagPrefixList", {"release-1"}, 2),
                                       count_rule(2, "tagPatternList", {"release-*"}, 5), untagged_rule(3)}));
            CHECK(findings_with(lint(fine), "shadowed-rule").empty());
        }
        SECTION("a multi-entry higher rule shadows only images with all its tags") {
            auto multi =
                policy_of(json::array({count_rule(1, "tagPatternList", {"release-*", "*-signed"}, 5),
                                       count_rule(2, "tagPatternList", {"release-*"}, 2), untagged_rule(3)}));
            CHECK(findings_with(lint(multi), "shadowed-rule").empty());
        }
    }
}
