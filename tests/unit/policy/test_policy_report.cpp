#include <tagwarden/policy/report.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::policy;

namespace {

const TimePoint k_now = parse_time("2025-06-15T12:00:00Z").value();

ImageRecord image(char id, std::vector<std::string> tags, int age_days) {
    ImageRecord r;
    r.digest = "sha256:" + std::string(64, id);
    r.tags = std::move(tags);
    r.pushed_at = k_now - std::chrono::days{age_days};
    return r;
}

} // namespace

TEST_CASE("simulate output documents", "[unit][policy]") {
    std::vector<ImageRecord> images = {image('a', {"1.0-dev", "1.0-prod"}, 9), image('b', {}, 1)};
    std::vector<ImageDecision> decisions(2);
    decisions[0].action = ImageAction::expire;
    decisions[0].rule_priority = 2;
    decisions[0].note = "expire by rulePriority 2";
    decisions[1].note = "no rule selects it";

    SECTION("JSON has exactly the documented shape, in input order") {
        std::string a = "sha256:" + std::string(64, 'a');
        std::string b = "sha256:" + std::string(64, 'b');
        CHECK(simulation_json(images, decisions).dump() ==
              R"({"images":[{"imageDigest":")" + a +
                  R"(","imageTags":["1.0-dev","1.0-prod"],"action":"expire","rulePriority":2},)" +
                  R"({"imageDigest":")" + b + R"(","imageTags":[],"action":"keep","rulePriority":null}]})");
    }
    SECTION("text is a table, newest first, with a summary") {
        decisions[1].ambiguous = true;
        auto text = simulation_text(images, decisions, k_now);
        auto header = text.find("ACTION");
        auto newest = text.find("<untagged>");
        auto oldest = text.find("1.0-dev,1.0-prod");
        REQUIRE(header != std::string::npos);
        REQUIRE(newest != std::string::npos);
        REQUIRE(oldest != std::string::npos);
        CHECK(header < newest);
        CHECK(newest < oldest);
        CHECK_THAT(text, Catch::Contains("keep?"));
        CHECK_THAT(text, Catch::Contains("expire  2"));
        CHECK_THAT(text, Catch::Contains("2 images at 2025-06-15T12:00:00Z: 1 expire, 0 transition, 1 keep"));
    }
}

TEST_CASE("lint and problem documents", "[unit][policy]") {
    std::vector<LintFinding> findings = {
        {"multi-tag-reach", Severity::error, 3, "reaches prod", "shield prod"},
        {"no-untagged-rule", Severity::warning, std::nullopt, "no untagged rule", "add one"},
        {"list-and-semantics", Severity::info, 4, "ANDed", "split"},
    };
    SECTION("JSON") {
        CHECK(
            lint_json(findings).dump() ==
            R"({"findings":[{"id":"multi-tag-reach","severity":"error","rulePriority":3,"message":"reaches prod",)"
            R"("fix":"shield prod"},{"id":"no-untagged-rule","severity":"warning","rulePriority":null,)"
            R"("message":"no untagged rule","fix":"add one"},{"id":"list-and-semantics","severity":"info",)"
            R"("rulePriority":4,"message":"ANDed","fix":"split"}],"errors":1,"warnings":1})");
        CHECK(has_errors(findings));
        findings.erase(findings.begin());
        CHECK_FALSE(has_errors(findings));
    }
    SECTION("text") {
        auto text = lint_text(findings);
        CHECK_THAT(text, Catch::Contains(
                             "error [multi-tag-reach] rulePriority 3: reaches prod\n  fix: shield prod\n"));
        CHECK_THAT(text, Catch::Contains("warning [no-untagged-rule]: no untagged rule"));
        CHECK_THAT(text, Catch::EndsWith("1 error, 1 warning\n"));
    }
    SECTION("problems") {
        std::vector<PolicyProblem> problems = {{1, 2, "selection.countUnit", "bad unit", "use days"},
                                               {std::nullopt, std::nullopt, "rules", "none", "add one"}};
        CHECK(
            problems_json(problems).dump() ==
            R"({"problems":[{"rule":1,"rulePriority":2,"field":"selection.countUnit","message":"bad unit",)"
            R"("fix":"use days"},{"rule":null,"rulePriority":null,"field":"rules","message":"none","fix":"add one"}]})");
        CHECK(to_string(problems[0]) ==
              "rules[1] (rulePriority 2) selection.countUnit: bad unit Fix: use days");
        CHECK(to_string(problems[1]) == "rules: none Fix: add one");
    }
}
