#include <tagwarden/policy/tag_language.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden::policy;

namespace {

std::optional<std::string> common(const TagShape& a, const TagShape& b) {
    const TagShape both[] = {a, b};
    return common_tag(both);
}

std::optional<std::string> outside(const TagShape& inner, const TagShape& outer) {
    const TagShape outers[] = {outer};
    return tag_outside(inner, outers);
}

} // namespace

TEST_CASE("tag shapes: what a pattern, prefix or template can match", "[unit][policy]") {
    auto pattern = TagShape::from_pattern;
    auto prefix = TagShape::from_prefix;

    SECTION("a single shape matches a valid tag unless its literal text cannot be a tag") {
        const TagShape ok[] = {pattern("prod-*")};
        CHECK(common_tag(ok) == "prod-");
        // A leading '*' must match at least one character: a tag cannot start with '-'.
        const TagShape leading_star[] = {pattern("*-prod")};
        CHECK(common_tag(leading_star) == "a-prod");
        const TagShape only_star[] = {pattern("*")};
        CHECK(common_tag(only_star) == "a");
        for (const char* bad : {"git hash", "prod/*", "-x*", ".x", "*:latest"}) {
            INFO(bad);
            const TagShape one[] = {pattern(bad)};
            CHECK_FALSE(common_tag(one));
        }
        const TagShape too_long[] = {pattern(std::string(129, 'a'))};
        CHECK_FALSE(common_tag(too_long));
        const TagShape longest[] = {pattern(std::string(128, 'a'))};
        CHECK(common_tag(longest));
    }
    SECTION("intersections") {
        CHECK(common(pattern("dev-*"), pattern("*-1")) == "dev-1");
        CHECK_FALSE(common(pattern("dev-*"), pattern("prod-*")));
        CHECK(common(prefix("prod"), pattern("*-prod")) == "prod-prod");
        CHECK_FALSE(common(pattern("dev-*"), TagShape::from_template("{version}-{env}", "prod")));
        CHECK(common(pattern("v*"), TagShape::from_template("{version}-{env}", "prod")) == "v-prod");
        CHECK(common(pattern("*-prod"), TagShape::from_template("{version}-{env}", "prod")) == "v-prod");
    }
    SECTION("containment") {
        CHECK_FALSE(outside(pattern("prod-*"), prefix("prod")));
        CHECK(outside(prefix("prod"), pattern("prod-*")) == "prod");
        CHECK(outside(pattern("*prod"), pattern("*-prod")) == "prod");
        CHECK_FALSE(outside(TagShape::from_template("{version}-{env}", "prod"), pattern("*-prod")));
        CHECK_FALSE(outside(TagShape::from_template("{version}-{env}", "prod"), pattern("*prod*")));
        CHECK(outside(TagShape::from_template("{version}-{env}", "prod"), pattern("1*-prod")) == "v-prod");
        // The grammar excludes "-prod" (no leading '-'), so "*-prod" adds nothing outside "?*-prod".
        CHECK_FALSE(outside(pattern("*-prod"), TagShape::from_template("{version}-{env}", "prod", true)));
    }
    SECTION("templates") {
        CHECK(TagShape::from_template("{version}-{env}", "prod").text() == "[0-9vV]*-prod");
        CHECK(TagShape::from_template("{version}-{env}", "prod", true).text() == "*-prod");
        CHECK(TagShape::from_template("{env}-{version}", "prod").text() == "prod-[0-9vV]*");
        CHECK(TagShape::from_template("{env}.{sha}", "stg").text() == "stg.*");
    }
}
