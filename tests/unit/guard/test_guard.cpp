#include <tagwarden/guard/guard.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::guard;
using namespace std::chrono_literals;

namespace {

policy::TimePoint at(int day) {
    return policy::TimePoint(std::chrono::duration_cast<policy::TimePoint::duration>(std::chrono::hours(24 * (20000 + day))));
}

policy::ImageRecord image(const std::string& hex, std::vector<std::string> tags, int pushed_day) {
    policy::ImageRecord r;
    r.digest = "sha256:" + std::string(64 - hex.size(), '0') + hex;
    r.tags = std::move(tags);
    r.pushed_at = at(pushed_day);
    return r;
}

RepositoryFacts ecr_facts(std::optional<std::string> policy, std::vector<policy::ImageRecord> images) {
    RepositoryFacts f;
    f.repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app";
    f.is_ecr = true;
    f.policy_text = std::move(policy);
    f.policy_source = "ECR";
    f.quota = 100;
    f.quota_source = "Service Quotas";
    f.image_count = static_cast<std::int64_t>(images.size());
    f.count_source = "DescribeImages";
    f.images = std::move(images);
    f.images_known = true;
    return f;
}

const Finding* find(const GuardReport& r, const std::string& check) {
    for (const auto& f : r.findings)
        if (f.check == check)
            return &f;
    return nullptr;
}

const std::string k_keep_all = R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]})";

} // namespace

TEST_CASE("guard: no lifecycle policy is refused unless overridden", "[unit][guard]") {
    auto facts = ecr_facts(std::nullopt, {});
    Intent intent{"sha256:" + std::string(64, 'a'), {"1.0-dev"}, {}, 1};
    auto r = evaluate_guards(facts, intent, GuardSettings{}, at(0));
    REQUIRE(r.refused());
    CHECK(r.error().kind == ErrorKind::guard_refused);
    CHECK_THAT(r.error().message, Catch::Contains("aws ecr put-lifecycle-policy --repository-name app"));

    GuardSettings allow;
    allow.allow_no_policy = true;
    auto overridden = evaluate_guards(facts, intent, allow, at(0));
    CHECK_FALSE(overridden.refused());
    CHECK(find(overridden, "lifecycle-policy")->status == "overridden");

    auto generic = facts;
    generic.is_ecr = false;
    generic.repository = "127.0.0.1:5000/app";
    CHECK_THAT(evaluate_guards(generic, intent, GuardSettings{}, at(0)).error().message,
               Catch::Contains("tagwarden.yaml"));
}

TEST_CASE("guard: an invalid policy is refused with the validation message", "[unit][guard]") {
    auto facts = ecr_facts(std::string(R"({"rules":[{"rulePriority":1}]})"), {});
    auto r = evaluate_guards(facts, Intent{"sha256:" + std::string(64, 'a'), {}, {}, 1}, GuardSettings{}, at(0));
    REQUIRE(r.refused());
    CHECK_THAT(r.error().message, Catch::Contains("invalid"));
}

TEST_CASE("guard: quota threshold", "[unit][guard]") {
    std::vector<policy::ImageRecord> images;
    for (int i = 0; i < 9; ++i)
        images.push_back(image(std::to_string(i + 1), {"v" + std::to_string(i)}, i));
    auto facts = ecr_facts(k_keep_all, images);
    facts.quota = 10;
    Intent intent{"sha256:" + std::string(64, 'f'), {"v9"}, {}, 1};

    auto r = evaluate_guards(facts, intent, GuardSettings{}, at(10));
    REQUIRE(r.refused());
    auto* q = find(r, "quota");
    REQUIRE(q);
    CHECK(q->status == "refused");
    CHECK_THAT(q->message, Catch::Contains("9 of 10"));
    CHECK_THAT(q->message, Catch::Contains("oldest"));
    CHECK_THAT(q->message, Catch::Contains("(v0)"));  // the oldest image is named first

    GuardSettings high;
    high.quota_threshold = 1.0;
    CHECK_FALSE(evaluate_guards(facts, intent, high, at(10)).refused());

    GuardSettings manual;
    manual.quota = 1000;  // --quota overrides what the registry says
    CHECK_FALSE(evaluate_guards(facts, intent, manual, at(10)).refused());

    Intent nothing_new = intent;
    nothing_new.images_added = 0;  // a promotion in place adds no image
    CHECK_FALSE(evaluate_guards(facts, nothing_new, GuardSettings{}, at(10)).refused());

    auto unknown = facts;
    unknown.quota.reset();
    CHECK(find(evaluate_guards(unknown, intent, GuardSettings{}, at(10)), "quota")->status == "skipped");
}

TEST_CASE("guard: the dev-/prod- trap is refused at promotion, naming the dev- rule", "[unit][guard]") {
    // Keep 2 dev- images: an image tagged dev-1 that is promoted to prod-1 is still judged by the dev- rule.
    const std::string trap = R"({"rules":[{"rulePriority":1,"description":"keep 2 dev","selection":{"tagStatus":"tagged","tagPrefixList":["dev-"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]})";
    std::vector<policy::ImageRecord> images = {image("1", {"dev-1"}, 1), image("2", {"dev-2"}, 2), image("3", {"dev-3"}, 3)};
    GuardSettings settings;
    settings.tag_template = "{env}-{version}";
    Intent promote{images[0].digest, {"prod-1"}, {}, 0};

    auto r = evaluate_guards(ecr_facts(trap, images), promote, settings, at(4));
    REQUIRE(r.refused());
    auto* s = find(r, "survival");
    REQUIRE(s);
    CHECK_THAT(s->message, Catch::Contains("keep 2 dev"));
    CHECK_THAT(s->message, Catch::Contains("prod-1"));

    const std::string fixed = R"({"rules":[
        {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod-"],"countType":"imageCountMoreThan","countNumber":50},"action":{"type":"expire"}},
        {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["dev-"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]})";
    auto ok = evaluate_guards(ecr_facts(fixed, images), promote, settings, at(4));
    CHECK_FALSE(ok.refused());
    CHECK(find(ok, "survival")->status == "passed");
}

TEST_CASE("guard: an age rule that expires the previous prod releases is refused", "[unit][guard]") {
    const std::string week = R"({"rules":[{"rulePriority":1,"description":"7 days","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]})";
    std::vector<policy::ImageRecord> images = {image("1", {"1.0-prod"}, 0), image("2", {"1.1-prod"}, 5)};
    Intent push{"sha256:" + std::string(64, 'e'), {"1.2-dev"}, {}, 1};

    auto r = evaluate_guards(ecr_facts(week, images), push, GuardSettings{}, at(20));
    REQUIRE(r.refused());
    CHECK_THAT(find(r, "survival")->message, Catch::Contains("rollback target"));

    SECTION("within the protection window the pushed image itself would expire") {
        auto empty = evaluate_guards(ecr_facts(week, {}), push, GuardSettings{}, at(20));
        REQUIRE(empty.refused());
        CHECK_THAT(find(empty, "survival")->message, Catch::Contains("the image being pushed"));
        CHECK_THAT(find(empty, "survival")->message, Catch::Contains("within 30 days"));
    }
}

TEST_CASE("guard: protected digests", "[unit][guard]") {
    const std::string untagged = R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]})";
    auto running = image("9", {}, 0);  // untagged, but ECS runs it by digest
    Intent push{"sha256:" + std::string(64, 'e'), {"2.0-dev"}, {}, 1};
    GuardSettings settings;
    CHECK_FALSE(evaluate_guards(ecr_facts(untagged, {running}), push, settings, at(3)).refused());
    settings.protected_digests = {running.digest};
    auto r = evaluate_guards(ecr_facts(untagged, {running}), push, settings, at(3));
    REQUIRE(r.refused());
    CHECK_THAT(find(r, "survival")->message, Catch::Contains("--protect"));
}

TEST_CASE("guard: survival is skipped where push times are unknown", "[unit][guard]") {
    auto facts = ecr_facts(k_keep_all, {});
    facts.images_known = false;
    facts.is_ecr = false;
    auto r = evaluate_guards(facts, Intent{"sha256:" + std::string(64, 'a'), {"x"}, {}, 1}, GuardSettings{}, at(0));
    CHECK_FALSE(r.refused());
    CHECK(find(r, "survival")->status == "skipped");
}

TEST_CASE("guard: an index whose children do not fit under the quota is refused up front", "[unit][guard]") {
    std::vector<policy::ImageRecord> images;
    for (int i = 0; i < 8; ++i)
        images.push_back(image(std::to_string(i + 1), {"v" + std::to_string(i)}, i));
    auto facts = ecr_facts(k_keep_all, images);
    facts.quota = 10;
    Intent index{"sha256:" + std::string(64, 'f'), {"multi"}, {"sha256:" + std::string(64, 'c'), "sha256:" + std::string(64, 'd')}, 3};
    auto r = evaluate_guards(facts, index, GuardSettings{}, at(10));
    REQUIRE(r.refused());
    CHECK_THAT(find(r, "quota")->message, Catch::Contains("adds 3 image(s)"));
    index.images_added = 2;
    CHECK_FALSE(evaluate_guards(facts, index, GuardSettings{}, at(10)).refused());
}
