#include <tagwarden/policy/evaluate.hpp>
#include <tagwarden/policy/tag_match.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <random>

using namespace tagwarden;
using namespace tagwarden::policy;

namespace {

const TimePoint k_now = parse_time("2025-06-15T12:00:00Z").value();

TimePoint days_ago(int days) {
    return k_now - std::chrono::days{days};
}

std::string digest(char c) {
    return "sha256:" + std::string(64, c);
}

ImageRecord image(char id, std::vector<std::string> tags, int age_days) {
    ImageRecord r;
    r.digest = digest(id);
    r.tags = std::move(tags);
    r.pushed_at = days_ago(age_days);
    return r;
}

Rule rule(std::int64_t priority, TagStatus status, CountType type, std::int64_t number) {
    Rule r;
    r.rule_priority = priority;
    r.selection.tag_status = status;
    r.selection.count_type = type;
    r.selection.count_number = number;
    if (type != CountType::image_count_more_than)
        r.selection.count_unit = "days";
    return r;
}

} // namespace

TEST_CASE("wildcard matching", "[unit][policy]") {
    CHECK(glob_match("prod*", "prod"));
    CHECK(glob_match("prod*", "production-team1"));
    CHECK_FALSE(glob_match("prod*", "preprod"));
    CHECK(glob_match("*prod*", "repo-production"));
    CHECK(glob_match("*prod*", "prod"));
    CHECK_FALSE(glob_match("prod", "prod1"));
    CHECK(glob_match("prod", "prod"));
    CHECK_FALSE(glob_match("Prod*", "prod-1"));
    CHECK(glob_match("*-prod", "1.0-prod"));
    CHECK_FALSE(glob_match("*-prod", "1.0-prod-2"));
    CHECK(glob_match("a*b*c", "axxbyyc"));
    CHECK(glob_match("a*b*c", "abcbc"));
    CHECK_FALSE(glob_match("a*b*c", "abcb"));
    CHECK(glob_match("*", "anything"));
    CHECK(glob_match("**", "x"));
    CHECK(glob_match("*test*1*2*3", "mytest-1-2-3"));
    // Head and tail must not overlap.
    CHECK_FALSE(glob_match("ab*ba", "aba"));
    CHECK(glob_match("ab*ba", "abba"));
    CHECK_FALSE(glob_match("a*bc*cd", "abcd"));
    CHECK(glob_match("a*bc*cd", "abccd"));
    CHECK_FALSE(glob_match("a?", "ab")); // '?' is literal
    CHECK(glob_match("a?", "a?"));
}

TEST_CASE("selection matching over an image's tags", "[unit][policy]") {
    Selection s;
    SECTION("any and untagged") {
        s.tag_status = TagStatus::any;
        CHECK(selection_matches(s, {}));
        CHECK(selection_matches(s, {"x"}));
        s.tag_status = TagStatus::untagged;
        CHECK(selection_matches(s, {}));
        CHECK_FALSE(selection_matches(s, {"x"}));
    }
    SECTION("one tag of several is enough (the dev-/prod- trap)") {
        s.tag_status = TagStatus::tagged;
        s.tag_prefix_list = std::vector<std::string>{"dev-"};
        CHECK(selection_matches(s, {"dev-1", "prod-1"}));
        CHECK(selection_matches(s, {"prod-1", "dev-1"}));
        CHECK_FALSE(selection_matches(s, {"prod-1"}));
        CHECK_FALSE(selection_matches(s, {}));
    }
    SECTION("several entries are ANDed over the image's tags") {
        s.tag_status = TagStatus::tagged;
        s.tag_pattern_list = std::vector<std::string>{"alpha*", "beta*"};
        CHECK(selection_matches(s, {"alpha-1", "beta-1"}));
        CHECK(selection_matches(s, {"gamma", "beta-1", "alpha-1"}));
        CHECK_FALSE(selection_matches(s, {"alpha-1"}));
        CHECK_FALSE(selection_matches(s, {"alphabeta"})); // "alphabeta" does not begin with "beta"
        s.tag_pattern_list = std::vector<std::string>{"*a*", "*b*"};
        CHECK(selection_matches(s, {"ab"})); // one tag may satisfy both entries
    }
    SECTION("a tagged selection without a list selects nothing") {
        s.tag_status = TagStatus::tagged;
        CHECK_FALSE(selection_matches(s, {"x"}));
    }
}

TEST_CASE("evaluation details beyond the vectors", "[unit][policy]") {
    LifecyclePolicy policy;

    SECTION("no images, no decisions; no rules, everything kept") {
        policy.rules.push_back(rule(1, TagStatus::any, CountType::image_count_more_than, 1));
        CHECK(evaluate(policy, {}, k_now).empty());
        LifecyclePolicy none;
        auto d = evaluate(none, {image('a', {}, 100)}, k_now);
        REQUIRE(d.size() == 1);
        CHECK(d[0].action == ImageAction::keep);
        CHECK_FALSE(d[0].rule_priority);
        CHECK_FALSE(d[0].selected_by);
        CHECK(d[0].note == "no rule selects it");
    }
    SECTION("decisions come back in input order, whatever the push order") {
        policy.rules.push_back(rule(1, TagStatus::any, CountType::image_count_more_than, 1));
        auto d =
            evaluate(policy, {image('a', {"old"}, 9), image('b', {"new"}, 1), image('c', {"mid"}, 5)}, k_now);
        REQUIRE(d.size() == 3);
        CHECK(d[0].action == ImageAction::expire);
        CHECK(d[1].action == ImageAction::keep);
        CHECK(d[2].action == ImageAction::expire);
        CHECK(d[1].note == "kept by rulePriority 1: 1st newest of 3 all images, keeps 1");
        CHECK(d[0].note == "expire by rulePriority 1: 3rd newest of 3 all images, keeps 1");
    }
    SECTION("rules apply by rulePriority, not by their order in the document") {
        auto dev = rule(2, TagStatus::tagged, CountType::image_count_more_than, 1);
        dev.selection.tag_prefix_list = std::vector<std::string>{"dev-"};
        auto prod = rule(1, TagStatus::tagged, CountType::image_count_more_than, 10);
        prod.selection.tag_prefix_list = std::vector<std::string>{"prod-"};
        policy.rules = {dev, prod};
        auto d = evaluate(policy, {image('a', {"dev-1", "prod-1"}, 9), image('b', {"dev-2"}, 1)}, k_now);
        CHECK(d[0].action == ImageAction::keep);
        CHECK(d[0].selected_by == 1);
    }
    SECTION("an archived image without lastArchivedAt ages from its push time") {
        Rule r = rule(1, TagStatus::any, CountType::since_image_transitioned, 90);
        r.selection.storage_class = StorageClass::archive;
        policy.rules.push_back(r);
        auto archived = image('a', {"x"}, 100);
        archived.status = ImageStatus::archived;
        auto d = evaluate(policy, {archived}, k_now);
        CHECK(d[0].action == ImageAction::expire);
        archived.transitioned_at = days_ago(10);
        CHECK(evaluate(policy, {archived}, k_now)[0].action == ImageAction::keep);
    }
    SECTION("untagged images are flagged when an index's children are unknown") {
        policy.rules.push_back(rule(1, TagStatus::untagged, CountType::since_image_pushed, 1));
        auto index = image('i', {"v1"}, 10);
        index.media_type = "application/vnd.docker.distribution.manifest.list.v2+json";
        auto d = evaluate(policy, {index, image('a', {}, 10)}, k_now);
        CHECK(d[1].action == ImageAction::expire);
        CHECK(d[1].ambiguous);
        CHECK_THAT(d[1].note, Catch::Contains("children are unknown"));
        SECTION("not when its children are known") {
            index.child_digests = {digest('z')};
            auto known = evaluate(policy, {index, image('a', {}, 10)}, k_now);
            CHECK(known[1].action == ImageAction::expire);
            CHECK_FALSE(known[1].ambiguous);
        }
    }
    SECTION("a referrer follows an archived subject into archive") {
        Rule r = rule(1, TagStatus::tagged, CountType::since_image_pushed, 30);
        r.selection.tag_pattern_list = std::vector<std::string>{"v*"};
        r.action = Action{ActionType::transition, StorageClass::archive};
        policy.rules.push_back(r);
        auto subject = image('s', {"v1"}, 40);
        auto sbom = image('r', {}, 39);
        sbom.subject_digest = subject.digest;
        auto d = evaluate(policy, {subject, sbom}, k_now);
        CHECK(d[0].action == ImageAction::transition);
        CHECK(d[0].rule_priority == 1);
        CHECK(d[1].action == ImageAction::transition);
        CHECK_FALSE(d[1].rule_priority);
        CHECK_THAT(d[1].note, Catch::Contains("with its subject"));
    }
    SECTION("a nested index keeps its grandchildren") {
        policy.rules.push_back(rule(1, TagStatus::untagged, CountType::since_image_pushed, 1));
        auto top = image('t', {"v1"}, 10);
        auto middle = image('m', {}, 10);
        auto leaf = image('l', {}, 10);
        top.child_digests = {middle.digest};
        middle.child_digests = {leaf.digest};
        auto d = evaluate(policy, {leaf, middle, top}, k_now);
        CHECK(d[0].action == ImageAction::keep);
        CHECK(d[1].action == ImageAction::keep);
        CHECK_THAT(d[0].note, Catch::Contains("referenced by index " + middle.digest));
    }
}

namespace {

// Independent reference for the cross-check below: the spec's section 4.2 algorithm written as plainly as
// possible (no indexes, recursive wildcard matching, quadratic where convenient).
bool reference_glob(std::string_view pattern, std::string_view tag) {
    if (pattern.empty())
        return tag.empty();
    if (pattern[0] == '*')
        return reference_glob(pattern.substr(1), tag) ||
               (!tag.empty() && reference_glob(pattern, tag.substr(1)));
    return !tag.empty() && pattern[0] == tag[0] && reference_glob(pattern.substr(1), tag.substr(1));
}

bool reference_selects(const Selection& s, const std::vector<std::string>& tags) {
    if (s.tag_status == TagStatus::any)
        return true;
    if (s.tag_status == TagStatus::untagged)
        return tags.empty();
    bool pattern = s.tag_pattern_list.has_value();
    const auto& list = pattern ? *s.tag_pattern_list : *s.tag_prefix_list;
    for (const auto& entry : list) {
        bool found = false;
        for (const auto& tag : tags)
            if (pattern ? reference_glob(entry, tag) : tag.rfind(entry, 0) == 0)
                found = true;
        if (!found)
            return false;
    }
    return !tags.empty();
}

std::vector<std::pair<ImageAction, std::optional<std::int64_t>>>
reference_evaluate(const LifecyclePolicy& policy, const std::vector<ImageRecord>& images, TimePoint now) {
    std::vector<std::pair<ImageAction, std::optional<std::int64_t>>> out(images.size(),
                                                                         {ImageAction::keep, {}});
    std::vector<Rule> rules = policy.rules;
    std::sort(rules.begin(), rules.end(),
              [](const Rule& a, const Rule& b) { return a.rule_priority < b.rule_priority; });
    for (auto storage : {StorageClass::standard, StorageClass::archive}) {
        std::vector<bool> claimed(images.size(), false);
        for (const auto& rule : rules) {
            if (rule.selection.effective_storage_class() != storage)
                continue;
            std::vector<std::size_t> candidates;
            for (std::size_t i = 0; i < images.size(); ++i)
                if (images[i].storage_class() == storage && reference_selects(rule.selection, images[i].tags))
                    candidates.push_back(i);
            std::sort(candidates.begin(), candidates.end(), [&](std::size_t a, std::size_t b) {
                if (images[a].pushed_at != images[b].pushed_at)
                    return images[a].pushed_at > images[b].pushed_at;
                return images[a].digest < images[b].digest;
            });
            for (std::size_t rank = 0; rank < candidates.size(); ++rank) {
                std::size_t i = candidates[rank];
                bool marked = false;
                if (rule.selection.count_type == CountType::image_count_more_than)
                    marked = rank >= static_cast<std::size_t>(rule.selection.count_number);
                else if (rule.selection.count_type == CountType::since_image_pulled)
                    marked = now - images[i].effective_pulled_at() >
                             std::chrono::days{rule.selection.count_number};
                else
                    marked = now - images[i].pushed_at > std::chrono::days{rule.selection.count_number};
                if (marked && !claimed[i])
                    out[i] = {rule.action.type == ActionType::expire ? ImageAction::expire
                                                                     : ImageAction::transition,
                              rule.rule_priority};
            }
            for (auto i : candidates)
                claimed[i] = true;
        }
    }
    return out;
}

} // namespace

TEST_CASE("evaluation agrees with a plain reference on random repositories", "[unit][policy]") {
    std::mt19937 random(20250615);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(random() % n); };
    const std::vector<std::string> words = {"dev", "prod", "pr", "1.2", "v1", "rc", "d", "-", "."};
    auto word_salad = [&](std::size_t parts) {
        std::string out;
        for (std::size_t i = 0; i < parts; ++i)
            out += words[pick(words.size())];
        return out;
    };
    for (int round = 0; round < 300; ++round) {
        INFO("round " << round);
        std::vector<ImageRecord> images;
        const std::size_t count = 1 + pick(40);
        for (std::size_t i = 0; i < count; ++i) {
            ImageRecord r;
            char digest_text[80];
            std::snprintf(digest_text, sizeof digest_text, "sha256:%064zx",
                          i * 7919 + static_cast<std::size_t>(round));
            r.digest = digest_text;
            // Few distinct push times, so ties are common.
            r.pushed_at = k_now - std::chrono::hours{24 * pick(12)};
            for (std::size_t t = pick(4); t > 0; --t)
                r.tags.push_back(word_salad(1 + pick(3)));
            if (pick(3) == 0)
                r.last_pulled_at = r.pushed_at + std::chrono::hours{pick(200)};
            if (pick(6) == 0) {
                r.status = ImageStatus::archived;
                r.transitioned_at = r.pushed_at;
            }
            images.push_back(std::move(r));
        }
        LifecyclePolicy policy;
        const std::size_t rule_count = 1 + pick(6);
        for (std::size_t k = 0; k < rule_count; ++k) {
            Rule r;
            r.rule_priority = static_cast<std::int64_t>(k * 3 + 1 + pick(3));
            r.selection.tag_status = k + 1 == rule_count && pick(2) ? TagStatus::any
                                     : pick(5) == 0                 ? TagStatus::untagged
                                                                    : TagStatus::tagged;
            if (r.selection.tag_status == TagStatus::tagged) {
                std::vector<std::string> entries;
                for (std::size_t e = 1 + (pick(4) == 0 ? 1 : 0); e > 0; --e) {
                    std::string entry = word_salad(1 + pick(2));
                    if (pick(2))
                        entry = (pick(2) ? "*" : "") + entry + (pick(2) ? "*" : "");
                    entries.push_back(entry);
                }
                if (pick(2))
                    r.selection.tag_pattern_list = entries;
                else
                    r.selection.tag_prefix_list = entries;
            }
            switch (pick(3)) {
            case 0:
                r.selection.count_type = CountType::image_count_more_than;
                break;
            case 1:
                r.selection.count_type = CountType::since_image_pushed;
                break;
            default:
                r.selection.count_type = CountType::since_image_pulled;
                r.action = Action{ActionType::transition, StorageClass::archive};
            }
            r.selection.count_number = static_cast<std::int64_t>(1 + pick(8));
            policy.rules.push_back(std::move(r));
        }
        auto expected = reference_evaluate(policy, images, k_now);
        auto actual = evaluate(policy, images, k_now);
        REQUIRE(actual.size() == expected.size());
        for (std::size_t i = 0; i < images.size(); ++i) {
            INFO("image " << i << " tags " << images[i].tags.size());
            CHECK(actual[i].action == expected[i].first);
            CHECK(actual[i].rule_priority == expected[i].second);
        }
    }
}
