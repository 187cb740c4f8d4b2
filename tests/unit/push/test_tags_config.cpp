#include <tagwarden/config/config.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/tags.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

using namespace tagwarden;
using namespace tagwarden::push;

TEST_CASE("environment tags from the template", "[unit][push][tags]") {
    TagNaming n;
    CHECK(*expand_tag(n, "1.4.2", "dev") == "1.4.2-dev");
    n.tag_template = "{env}-{version}";
    CHECK(*expand_tag(n, "1.4.2", "prod") == "prod-1.4.2");
    n.environments = {"dev", "prod"};
    auto unknown = expand_tag(n, "1.4.2", "qa");
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message, Catch::Contains("dev, prod"));
    auto bad = expand_tag(TagNaming{}, "1.4.2+build", "dev");
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("1.4.2+build-dev"));
    CHECK_FALSE(expand_tag(TagNaming{}, "", "dev"));
}

TEST_CASE("protected environments", "[unit][push][tags]") {
    TagNaming n;
    n.environments = {"dev", "preprod"};
    CHECK(is_protected_tag(n, "1.4.2-prod"));
    CHECK_FALSE(is_protected_tag(n, "1.4.2-dev"));
    CHECK_FALSE(is_protected_tag(n, "1.4.2-preprod"));
    CHECK_FALSE(is_protected_tag(n, "latest"));
    CHECK_FALSE(is_protected_tag(n, "-prod"));  // no version part
    CHECK(environment_of(n, "1.4.2-preprod") == "preprod");
    n.tag_template = "{env}.{version}";
    CHECK(is_protected_tag(n, "prod.7"));
}

TEST_CASE("tagwarden.yaml", "[unit][config]") {
    auto c = config::parse_config(R"(
tag_template: "{version}_{env}"
environments: [dev, staging, prod]
protected_environments: [prod, staging]
lock: etcd://127.0.0.1:2379
lock_ttl: 1m
lock_timeout: 90s
)",
                                  "tagwarden.yaml");
    REQUIRE(c);
    CHECK(c->tag_template == "{version}_{env}");
    CHECK(c->environments.size() == 3);
    CHECK(c->protected_environments == std::vector<std::string>{"prod", "staging"});
    CHECK(c->lock_url == "etcd://127.0.0.1:2379");
    CHECK(c->lock_ttl == std::chrono::seconds(60));
    CHECK(c->lock_timeout == std::chrono::seconds(90));

    CHECK_FALSE(c->guards_first);
    auto first = config::parse_config("guards_first: true\n", "t.yaml");
    REQUIRE(first);
    CHECK(first->guards_first);
    CHECK_FALSE(config::parse_config("guards_first: sometimes\n", "t.yaml"));

    auto typo = config::parse_config("lock_tmeout: 5s\n", "t.yaml");
    REQUIRE_FALSE(typo);
    CHECK_THAT(typo.error().message, Catch::Contains("unknown setting 'lock_tmeout'"));
    CHECK_FALSE(config::parse_config("tag_template: '{version}'\n", "t.yaml"));
    CHECK_FALSE(config::parse_config("environments: dev\n", "t.yaml"));
    CHECK_FALSE(config::parse_config("lock_ttl: 1s\n", "t.yaml"));
    CHECK_FALSE(config::parse_config("[unclosed\n", "t.yaml"));
    CHECK(config::parse_config("", "empty.yaml"));
    CHECK(*config::parse_duration("2h", "x") == std::chrono::seconds(7200));
    CHECK_FALSE(config::parse_duration("2d", "x"));
    CHECK_FALSE(config::parse_duration("-1", "x"));
}

TEST_CASE("journals round-trip through the file journal store", "[unit][push][journal]") {
    std::random_device rd;
    auto dir = std::filesystem::temp_directory_path() / ("tw-journal-" + std::to_string(rd()));
    Journal j;
    j.run_id = "run1";
    j.registry = "127.0.0.1:5000";
    j.repository = "app";
    j.digest = Digest::of("manifest");
    j.media_type = "application/vnd.oci.image.manifest.v1+json";
    j.manifest = std::string("manifest\0bytes", 14);
    j.children = {{Digest::of("child"), "application/vnd.oci.image.manifest.v1+json", std::string("child\0", 6), true}};
    j.tags = {{"1.0-dev", std::nullopt, true}, {"latest", Digest::of("old"), false}};
    j.owner.host = "runner-1";
    j.owner.pid = 42;
    auto store = lock::make_file_journal_store(dir.string());
    JournalKeeper keeper(store.get());
    REQUIRE(keeper.save(j));
    auto records = store->list();
    REQUIRE(records);
    REQUIRE(records->size() == 1);
    CHECK((*records)[0].run_id == "run1");
    CHECK((*records)[0].owner.host == "runner-1");
    CHECK((*records)[0].expires > lock::Clock::now() + std::chrono::hours(24));
    auto back = parse_journal((*records)[0].document);
    REQUIRE(back);
    CHECK(back->manifest == j.manifest);
    CHECK(back->digest == j.digest);
    REQUIRE(back->children.size() == 1);
    CHECK(back->children[0].digest == Digest::of("child"));
    CHECK(back->children[0].bytes == j.children[0].bytes);
    CHECK(back->children[0].created);
    REQUIRE(back->tags.size() == 2);
    CHECK(back->tags[0].written);
    CHECK_FALSE(back->tags[0].previous);
    CHECK(back->tags[1].previous == Digest::of("old"));
    CHECK(back->owner.pid == 42);
    CHECK(back->lock_keys() == std::vector<std::string>{"127.0.0.1:5000/app:1.0-dev", "127.0.0.1:5000/app:latest"});
    // A symlink planted where the journal goes is not followed.
    REQUIRE(keeper.remove(*back));
    CHECK(store->list()->empty());
    auto target = dir / "elsewhere.json";
    std::filesystem::create_symlink(target, dir / "journal" / "run1.json.tmp");
    CHECK_FALSE(keeper.save(j));
    CHECK_FALSE(std::filesystem::exists(target));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a damaged journal is an error naming the fix, not a crash", "[unit][push][journal]") {
    auto r = parse_journal("{\"runId\": 3}");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("damaged"));
}
