// tagwarden audit, the pure parts: risk, sorting, globs, the fill-date projection, the findings per
// repository and template, the JSON shape; ECR template matching and DescribeRepositoryCreationTemplates
// paging (scripted transport); the creation-template guard fallback.

#include "../aws/aws_test_support.hpp"

#include <tagwarden/audit/audit.hpp>
#include <tagwarden/aws/ecr.hpp>
#include <tagwarden/aws/sts.hpp>
#include <tagwarden/guard/guard.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace tagwarden;
using namespace tagwarden::audit;
using nlohmann::json;

namespace {

policy::TimePoint day(int n) {
    return policy::TimePoint(
        std::chrono::duration_cast<policy::TimePoint::duration>(std::chrono::hours(24 * (20000 + n))));
}

policy::ImageRecord img(int n, std::vector<std::string> tags, int pushed_day) {
    policy::ImageRecord r;
    auto hex = std::to_string(n);
    r.digest = "sha256:" + std::string(64 - hex.size(), '0') + hex;
    r.tags = std::move(tags);
    r.pushed_at = day(pushed_day);
    return r;
}

guard::RepositoryFacts facts(std::optional<std::string> policy, std::vector<policy::ImageRecord> images,
                             std::optional<std::int64_t> quota = 1000) {
    guard::RepositoryFacts f;
    f.repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app";
    f.is_ecr = true;
    f.policy_text = std::move(policy);
    f.policy_source = "ECR GetLifecyclePolicy";
    f.quota = quota;
    f.image_count = static_cast<std::int64_t>(images.size());
    f.images = std::move(images);
    f.images_known = true;
    return f;
}

aws::EcrRepository repo(aws::TagMutability m = aws::TagMutability::immutable) {
    aws::EcrRepository r;
    r.name = "team/app";
    r.tag_mutability = m;
    return r;
}

std::vector<std::string> checks(const Entry& e) {
    std::vector<std::string> out;
    for (const auto& f : e.findings)
        out.push_back(f.check + ":" + std::string(policy::to_string(f.severity)));
    return out;
}

// Untagged images after 14 days: `policy lint` has nothing to say about it.
const std::string k_healthy =
    R"({"rules":[{"rulePriority":1,"description":"untagged","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":14},"action":{"type":"expire"}}]})";

// Anything tagged older than 7 days expires: the rollback-target incident.
const std::string k_seven_days =
    R"({"rules":[{"rulePriority":1,"description":"old images","selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]})";

} // namespace

TEST_CASE("audit: risk follows the worst finding", "[unit][audit]") {
    CHECK(risk_of({}) == Risk::none);
    CHECK(risk_of({{"x", policy::Severity::info, ""}}) == Risk::low);
    CHECK(risk_of({{"x", policy::Severity::info, ""}, {"y", policy::Severity::warning, ""}}) == Risk::medium);
    CHECK(risk_of({{"x", policy::Severity::error, ""}, {"y", policy::Severity::warning, ""}}) == Risk::high);
    CHECK(to_string(Risk::high) == "high");
    CHECK(to_string(Risk::none) == "none");
}

TEST_CASE("audit: entries sort by risk, highest first, then by name", "[unit][audit]") {
    std::vector<Entry> entries(5);
    entries[0].name = "b";
    entries[1].name = "a";
    entries[2].name = "z";
    entries[2].risk = Risk::high;
    entries[3].name = "m";
    entries[3].risk = Risk::medium;
    entries[4].name = "c";
    entries[4].risk = Risk::high;
    sort_by_risk(entries);
    std::vector<std::string> names;
    for (const auto& e : entries)
        names.push_back(e.name);
    CHECK(names == std::vector<std::string>{"c", "z", "m", "a", "b"});
}

TEST_CASE("audit: --repos globs match the whole name", "[unit][audit]") {
    CHECK(glob_match("team/*", "team/app"));
    CHECK(glob_match("team/*", "team/sub/app"));
    CHECK_FALSE(glob_match("team/*", "teams/app"));
    CHECK(glob_match("*", "anything/at/all"));
    CHECK(glob_match("app-?", "app-1"));
    CHECK_FALSE(glob_match("app-?", "app-10"));
    CHECK(glob_match("team/app", "team/app"));
    CHECK_FALSE(glob_match("team/app", "team/app2"));
    CHECK(glob_match("*/api*", "svc/api-gateway"));
}

TEST_CASE("audit: the fill date at the push rate of the last 30 days", "[unit][audit]") {
    auto now = day(100);
    // 60 old images and 30 pushed in the last 30 days (one a day): 1 image a day.
    std::vector<policy::ImageRecord> images;
    for (int i = 0; i < 60; ++i)
        images.push_back(img(i, {"old-" + std::to_string(i)}, 0));
    for (int i = 0; i < 30; ++i)
        images.push_back(img(100 + i, {std::to_string(i) + "-dev"}, 100 - i));

    SECTION("no policy: nothing expires, 10 more images at one a day") {
        auto fills = project_fill_date(images, nullptr, 100, now);
        REQUIRE(fills);
        CHECK(format_date(*fills) == format_date(day(110)));
    }
    SECTION("beyond the horizon: none") {
        CHECK_FALSE(project_fill_date(images, nullptr, 1000, now, 365));
    }
    SECTION("already full: today") {
        auto fills = project_fill_date(images, nullptr, 90, now);
        REQUIRE(fills);
        CHECK(*fills == now);
    }
    SECTION("nothing pushed in the last 30 days: never") {
        std::vector<policy::ImageRecord> idle(images.begin(), images.begin() + 60);
        CHECK_FALSE(project_fill_date(idle, nullptr, 100, now));
    }
    SECTION("a count rule that keeps the repository small: never") {
        auto parsed = policy::load_policy(
            R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["*-dev"],"countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]})");
        REQUIRE(parsed);
        CHECK_FALSE(project_fill_date(images, &*parsed, 100, now));
    }
    SECTION("a rule that expires nothing that is pushed: the same date as without a policy") {
        auto parsed = policy::load_policy(
            R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]})");
        REQUIRE(parsed);
        auto fills = project_fill_date(images, &*parsed, 100, now);
        REQUIRE(fills);
        CHECK(format_date(*fills) == format_date(day(110)));
    }
    CHECK(format_date(policy::TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 3 / 9).time_since_epoch())) ==
          "2026-03-09");
}

TEST_CASE("audit: a healthy repository has no finding", "[unit][audit]") {
    AuditOptions options;
    auto r = repo();
    auto e = audit_repository("team/app", facts(k_healthy, {img(1, {"1.0.0-prod"}, 90)}), &r, options, day(100));
    CHECK(e.findings.empty());
    CHECK(e.risk == Risk::none);
    CHECK(e.image_count == 1);
    CHECK(e.quota == 1000);
}

TEST_CASE("audit: no lifecycle policy is an error that names the fix", "[unit][audit]") {
    AuditOptions options;
    auto r = repo();
    auto e = audit_repository("team/app", facts(std::nullopt, {}), &r, options, day(100));
    REQUIRE(checks(e) == std::vector<std::string>{"no-lifecycle-policy:error"});
    CHECK(e.risk == Risk::high);
    CHECK_THAT(e.findings[0].message,
               Catch::Contains("aws ecr put-lifecycle-policy --repository-name team/app"));
}

TEST_CASE("audit: quota at the threshold is an error, filling within --days a warning", "[unit][audit]") {
    AuditOptions options;
    auto r = repo();
    std::vector<policy::ImageRecord> images;
    for (int i = 0; i < 19; ++i)
        images.push_back(img(i, {std::to_string(i) + ".0.0-dev"}, 99 - i));
    auto full = audit_repository("team/app", facts(k_healthy, images, 20), &r, options, day(100));
    REQUIRE(checks(full) == std::vector<std::string>{"quota:error"});
    CHECK_THAT(full.findings[0].message, Catch::Contains("19 of 20 images (95%)"));
    REQUIRE(full.fills_on);

    // 10 of 15, 10 pushed in the last 30 days (1/3 a day): 5 more in 15 days; within 30 a warning, not
    // within 5.
    images.resize(10);
    auto filling = audit_repository("team/app", facts(std::nullopt, images, 15), &r, options, day(100));
    CHECK(checks(filling) == std::vector<std::string>{"no-lifecycle-policy:error", "quota:warning"});
    CHECK(filling.fills_on == format_date(day(115)));
    options.days = 5;
    auto later = audit_repository("team/app", facts(std::nullopt, images, 15), &r, options, day(100));
    CHECK(checks(later) == std::vector<std::string>{"no-lifecycle-policy:error"});
    CHECK(later.fills_on == format_date(day(115)));

    // --quota overrides what the registry says.
    options.settings.quota = 11;
    auto overridden = audit_repository("team/app", facts(std::nullopt, images, 15), &r, options, day(100));
    CHECK(overridden.quota == 11);
    CHECK(checks(overridden) == std::vector<std::string>{"no-lifecycle-policy:error", "quota:error"});
}

TEST_CASE("audit: protected-expiring is the survival guard's simulation over --days", "[unit][audit]") {
    AuditOptions options;
    auto r = repo();
    // The last prod release is 3 days old: a 7-day rule expires it within 30 days, not within 2.
    auto f = facts(k_seven_days, {img(1, {"1.0.0-prod"}, 97)});
    auto e = audit_repository("team/app", f, &r, options, day(100));
    auto c = checks(e);
    REQUIRE(std::count(c.begin(), c.end(), "protected-expiring:error") == 1);
    const auto& finding = *std::find_if(e.findings.begin(), e.findings.end(),
                                        [](const auto& x) { return x.check == "protected-expiring"; });
    CHECK_THAT(finding.message, Catch::Contains("rulePriority 1"));
    CHECK_THAT(finding.message, Catch::Contains("1.0.0-prod"));
    CHECK_THAT(finding.message, Catch::Contains("within 30 days"));
    CHECK(e.risk == Risk::high);

    options.days = 2;
    auto soon = audit_repository("team/app", f, &r, options, day(100));
    auto cs = checks(soon);
    CHECK(std::count(cs.begin(), cs.end(), "protected-expiring:error") == 0);

    // --protect: a dev image listed there is protected too.
    options.days = 30;
    options.settings.protected_digests = {img(2, {}, 0).digest};
    auto listed = audit_repository("team/app", facts(k_seven_days, {img(2, {"9-dev"}, 95)}), &r, options, day(100));
    auto found = std::find_if(listed.findings.begin(), listed.findings.end(),
                              [](const auto& x) { return x.check == "protected-expiring"; });
    REQUIRE(found != listed.findings.end());
    CHECK_THAT(found->message, Catch::Contains("listed in --protect"));
}

TEST_CASE("audit: lint findings and mutable tags", "[unit][audit]") {
    AuditOptions options;
    auto mutable_repo = repo(aws::TagMutability::mutable_tags);
    auto e = audit_repository("team/app", facts(k_healthy, {}), &mutable_repo, options, day(100));
    REQUIRE(checks(e) == std::vector<std::string>{"mutable-tags:warning"});
    CHECK_THAT(e.findings[0].message, Catch::Contains("aws ecr put-image-tag-mutability --repository-name team/app"));
    CHECK(e.risk == Risk::medium);

    auto excluded = repo(aws::TagMutability::immutable_with_exclusion);
    excluded.exclusion_filters = {{"WILDCARD", "latest"}};
    CHECK(checks(audit_repository("team/app", facts(k_healthy, {}), &excluded, options, day(100))) ==
          std::vector<std::string>{"mutable-tags:info"});

    // A policy that never expires anything: lint's error, under policy-lint/.
    auto r = repo();
    auto never = audit_repository(
        "team/app",
        facts(R"({"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":9},"action":{"type":"transition","targetStorageClass":"archive"}}]})",
              {}),
        &r, options, day(100));
    auto c = checks(never);
    CHECK(std::find(c.begin(), c.end(), "policy-lint/never-expires:error") != c.end());

    auto invalid = audit_repository("team/app", facts(R"({"rules":[]})", {}), &r, options, day(100));
    CHECK(checks(invalid) == std::vector<std::string>{"invalid-lifecycle-policy:error"});

    // Not ECR: no mutability to judge.
    CHECK(audit_repository("team/app", facts(k_healthy, {}), nullptr, options, day(100)).findings.empty());
}

TEST_CASE("audit: templates without a lifecycle policy are errors", "[unit][audit]") {
    AuditOptions options;
    aws::EcrCreationTemplate t;
    t.prefix = "apps";
    t.applied_for = {"CREATE_ON_PUSH"};
    t.tag_mutability = aws::TagMutability::immutable;
    auto e = audit_template(t, 1000, options);
    REQUIRE(checks(e) == std::vector<std::string>{"no-lifecycle-policy:error"});
    CHECK_THAT(e.findings[0].message,
               Catch::Contains("aws ecr update-repository-creation-template --prefix apps --lifecycle-policy"));
    CHECK(e.risk == Risk::high);
    CHECK(e.quota == 1000);

    t.lifecycle_policy = k_healthy;
    t.tag_mutability = aws::TagMutability::mutable_tags;
    auto m = audit_template(t, std::nullopt, options);
    REQUIRE(checks(m) == std::vector<std::string>{"mutable-tags:warning"});
    CHECK_THAT(m.findings[0].message, Catch::Contains("--image-tag-mutability IMMUTABLE"));
}

TEST_CASE("audit: the JSON shape of the issue", "[unit][audit]") {
    AuditReport report;
    report.registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    Entry r;
    r.name = "team/app";
    r.risk = Risk::high;
    r.image_count = 19;
    r.quota = 20;
    r.fills_on = "2026-12-05";
    r.findings.push_back({"quota", policy::Severity::error, "full"});
    report.repositories.push_back(r);
    Entry t;
    t.name = "ROOT";
    report.templates.push_back(t);
    auto j = to_json(report);
    CHECK(j == json::parse(R"({"registry":"123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "repositories":[{"repository":"team/app","risk":"high","imageCount":19,"quota":20,"fillsOn":"2026-12-05",
                         "findings":[{"check":"quota","severity":"error","message":"full"}]}],
        "templates":[{"prefix":"ROOT","risk":"none","imageCount":0,"quota":null,"fillsOn":null,"findings":[]}]})"));
    CHECK(report.has_errors());
    report.repositories.clear();
    CHECK_FALSE(report.has_errors());
    CHECK_THAT(to_text(report), Catch::Contains("template ROOT"));
    CHECK_THAT(to_markdown(report), Catch::Contains("| none | template `ROOT` |"));
}

TEST_CASE("creation templates: the longest CREATE_ON_PUSH prefix, else ROOT", "[unit][audit][ecr]") {
    auto make = [](std::string prefix, std::vector<std::string> applied) {
        aws::EcrCreationTemplate t;
        t.prefix = std::move(prefix);
        t.applied_for = std::move(applied);
        return t;
    };
    std::vector<aws::EcrCreationTemplate> templates = {
        make("prod", {"CREATE_ON_PUSH"}),        make("prod/team", {"CREATE_ON_PUSH", "REPLICATION"}),
        make("prod/team/cache", {"PULL_THROUGH_CACHE"}), make("ROOT", {"CREATE_ON_PUSH"}),
        make("ecr-public/", {"CREATE_ON_PUSH"}),
    };
    auto prefix_for = [&](std::string_view name) {
        const auto* t = aws::find_creation_template(templates, name, aws::k_create_on_push);
        return t ? t->prefix : std::string("none");
    };
    CHECK(prefix_for("prod/app") == "prod");
    CHECK(prefix_for("prod/team/app") == "prod/team");
    CHECK(prefix_for("prod/team/cache/x") == "prod/team");  // the cache template is not for pushes
    CHECK(prefix_for("production/app") == "ROOT");          // "prod" means "prod/"
    CHECK(prefix_for("prod") == "ROOT");
    CHECK(prefix_for("ecr-public/library/nginx") == "ecr-public/");
    CHECK(prefix_for("other") == "ROOT");
    templates.pop_back();
    templates.erase(templates.begin() + 3);
    CHECK(prefix_for("other") == "none");
    CHECK(aws::find_creation_template(templates, "prod/team/cache/x", "PULL_THROUGH_CACHE")->prefix ==
          "prod/team/cache");
}

TEST_CASE("DescribeRepositoryCreationTemplates: every page, the fields ECR sends", "[unit][audit][ecr]") {
    using namespace tagwarden::test;
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        CHECK(r.headers.get("X-Amz-Target").value_or("") ==
              "AmazonEC2ContainerRegistry_V20150921.DescribeRepositoryCreationTemplates");
        CHECK_FALSE(in.contains("registryId"));  // not a member of this operation's input
        CHECK(in["maxResults"] == 1000);
        if (!in.contains("nextToken"))
            return response(200, R"({"registryId":"123456789012","repositoryCreationTemplates":[
                {"prefix":"ROOT","appliedFor":["CREATE_ON_PUSH"],"imageTagMutability":"MUTABLE","createdAt":1.7e9}],
                "nextToken":"t2"})");
        CHECK(in["nextToken"] == "t2");
        return response(200, R"({"repositoryCreationTemplates":[{"prefix":"apps","appliedFor":["REPLICATION"],
            "imageTagMutability":"IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"latest"}],
            "lifecyclePolicy":"{\"rules\":[]}","description":"d"}]})");
    });
    aws::EcrClient ecr(test::ecr_api_with(transport), "123456789012");
    auto templates = ecr.describe_repository_creation_templates();
    REQUIRE(templates);
    REQUIRE(templates->size() == 2);
    CHECK((*templates)[0].prefix == "ROOT");
    CHECK_FALSE((*templates)[0].lifecycle_policy);
    CHECK((*templates)[0].applies_for("CREATE_ON_PUSH"));
    CHECK((*templates)[1].lifecycle_policy == std::string(R"({"rules":[]})"));
    CHECK((*templates)[1].as_repository("apps/x").tag_is_immutable("1.0"));
    CHECK_FALSE((*templates)[1].as_repository("apps/x").tag_is_immutable("latest"));
    CHECK(transport->requests().size() == 2);
}

TEST_CASE("guard: a repository created on push by a template without a policy is refused", "[unit][audit][guard]") {
    guard::RepositoryFacts f;
    f.repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/apps/new";
    f.is_ecr = true;
    f.creation_template = "apps";
    f.images_known = true;
    guard::Intent intent{"sha256:" + std::string(64, 'a'), {"1.0-dev"}, {}, 1};
    auto r = guard::evaluate_guards(f, intent, guard::GuardSettings{}, day(0));
    REQUIRE(r.refused());
    CHECK_THAT(r.error().message, Catch::Contains("repository creation template 'apps'"));
    CHECK_THAT(r.error().message,
               Catch::Contains("aws ecr update-repository-creation-template --prefix apps --lifecycle-policy"));

    f.policy_text = k_healthy;
    f.policy_source = "repository creation template 'apps' (CREATE_ON_PUSH)";
    CHECK_FALSE(guard::evaluate_guards(f, intent, guard::GuardSettings{}, day(0)).refused());
}

TEST_CASE("the registry catalog follows Link pages and refuses a loop", "[unit][audit][registry]") {
    using namespace tagwarden::test;
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.url == "http://reg.example:5000/v2/")
            return response(200, "{}");
        if (r.url == "http://reg.example:5000/v2/_catalog?n=1000")
            return response(200, R"({"repositories":["a/one","a/two"]})",
                            {{"Link", R"(</v2/_catalog?last=a%2Ftwo&n=1000>; rel="next")"}});
        if (r.url == "http://reg.example:5000/v2/_catalog?last=a%2Ftwo&n=1000")
            return response(200, R"({"repositories":["b/three"]})");
        return response(404, R"({"errors":[{"code":"NOT_FOUND","message":"unexpected"}]})");
    });
    registry::ClientOptions options;
    options.plain_http = true;
    registry::Client client(transport, "reg.example:5000", options);
    REQUIRE(client.ping());
    auto names = client.list_repositories();
    REQUIRE(names);
    CHECK(*names == std::vector<std::string>{"a/one", "a/two", "b/three"});

    auto looping = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.url.ends_with("/v2/"))
            return response(200, "{}");
        return response(200, R"({"repositories":["a"]})", {{"Link", R"(</v2/_catalog?n=1000>; rel="next")"}});
    });
    registry::Client loop(looping, "reg.example:5000", options);
    REQUIRE(loop.ping());
    auto again = loop.list_repositories();
    REQUIRE_FALSE(again);
    CHECK_THAT(again.error().message, Catch::Contains("loops"));

    auto refusing = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        if (r.url.ends_with("/v2/"))
            return response(200, "{}");
        return response(404, R"({"errors":[{"code":"UNSUPPORTED","message":"catalog disabled"}]})");
    });
    registry::Client none(refusing, "reg.example:5000", options);
    REQUIRE(none.ping());
    CHECK_FALSE(none.list_repositories());
}

TEST_CASE("DescribeRepositories follows nextToken", "[unit][audit][ecr]") {
    using namespace tagwarden::test;
    auto transport = std::make_shared<FakeTransport>([](const SentRequest& r) -> Result<http::Response> {
        auto in = json::parse(r.body);
        CHECK(in["maxResults"] == 1000);
        if (!in.contains("nextToken"))
            return response(200, R"({"repositories":[{"repositoryName":"a","imageTagMutability":"MUTABLE"}],"nextToken":"n2"})");
        return response(200, R"({"repositories":[{"repositoryName":"b","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"latest"}]}]})");
    });
    aws::EcrClient ecr(test::ecr_api_with(transport), "123456789012");
    auto repos = ecr.describe_repositories();
    REQUIRE(repos);
    REQUIRE(repos->size() == 2);
    CHECK((*repos)[1].tag_mutability == aws::TagMutability::immutable_with_exclusion);
    CHECK((*repos)[1].exclusion_filters.size() == 1);
    CHECK(transport->requests().size() == 2);
}

TEST_CASE("STS GetCallerIdentity gives the account of the credentials", "[unit][audit][aws]") {
    using namespace tagwarden::test;
    std::string answer = R"(<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>arn:aws:iam::210987654321:user/ci</Arn><UserId>AIDA</UserId>
  <Account>210987654321</Account></GetCallerIdentityResult></GetCallerIdentityResponse>)";
    auto transport = std::make_shared<FakeTransport>([&](const SentRequest& r) -> Result<http::Response> {
        CHECK(r.method == "POST");
        CHECK(r.body == "Action=GetCallerIdentity&Version=2011-06-15");
        CHECK_THAT(r.headers.get("Authorization").value_or(""), Catch::Contains("/eu-west-1/sts/aws4_request"));
        return response(200, answer);
    });
    aws::Credentials creds{"AKIASTS", "secret", ""};
    auto account = aws::get_caller_account(*transport, "http://127.0.0.1:9", "eu-west-1", creds, aws::Clock::now());
    REQUIRE(account);
    CHECK(*account == "210987654321");

    answer = "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>nope</Account></GetCallerIdentityResult>"
             "</GetCallerIdentityResponse>";
    CHECK_FALSE(aws::get_caller_account(*transport, "http://127.0.0.1:9", "eu-west-1", creds, aws::Clock::now()));
}
