#include <tagwarden/core/reference.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;

TEST_CASE("reference: docker hub defaults", "[unit][core][reference]") {
    auto r = Reference::parse("alpine");
    REQUIRE(r);
    CHECK(r->registry == "docker.io");
    CHECK(r->repository == "library/alpine");
    CHECK(r->tag.empty());
    CHECK(r->api_host() == "registry-1.docker.io");

    auto user = Reference::parse("team/app:1.0");
    REQUIRE(user);
    CHECK(user->registry == "docker.io");
    CHECK(user->repository == "team/app");
    CHECK(user->tag == "1.0");

    auto index = Reference::parse("index.docker.io/library/nginx");
    REQUIRE(index);
    CHECK(index->registry == "docker.io");
}

TEST_CASE("reference: registries with ports, localhost, IPv6", "[unit][core][reference]") {
    auto r = Reference::parse("127.0.0.1:5000/demo/hello:1.4.2-dev");
    REQUIRE(r);
    CHECK(r->registry == "127.0.0.1:5000");
    CHECK(r->repository == "demo/hello");
    CHECK(r->tag == "1.4.2-dev");
    CHECK(r->name() == "127.0.0.1:5000/demo/hello");

    auto l = Reference::parse("localhost/app");
    REQUIRE(l);
    CHECK(l->registry == "localhost");
    CHECK(l->repository == "app");  // no library/ outside docker.io

    auto ecr = Reference::parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/api:v1");
    REQUIRE(ecr);
    CHECK(ecr->registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com");

    auto v6 = Reference::parse("[::1]:5000/app:1");
    REQUIRE(v6);
    CHECK(v6->registry == "[::1]:5000");
    CHECK(v6->tag == "1");

    auto port_no_tag = Reference::parse("localhost:5000/app");
    REQUIRE(port_no_tag);
    CHECK(port_no_tag->registry == "localhost:5000");
    CHECK(port_no_tag->tag.empty());
}

TEST_CASE("reference: digests", "[unit][core][reference]") {
    std::string hex(64, 'a');
    auto r = Reference::parse("r.example.com/app@sha256:" + hex);
    REQUIRE(r);
    REQUIRE(r->digest);
    CHECK(r->digest->str() == "sha256:" + hex);
    CHECK(r->manifest_ref() == "sha256:" + hex);

    auto both = Reference::parse("r.example.com/app:v1@sha256:" + hex);
    REQUIRE(both);
    CHECK(both->tag == "v1");
    CHECK(both->str() == "r.example.com/app:v1@sha256:" + hex);

    auto bad = Reference::parse("r.example.com/app@sha256:abc");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::invalid_input);
}

TEST_CASE("reference: rejects invalid input with a reason", "[unit][core][reference]") {
    auto upper = Reference::parse("127.0.0.1:5000/Demo/App");
    REQUIRE_FALSE(upper);
    CHECK_THAT(upper.error().message, Catch::Contains("lowercase"));

    CHECK_FALSE(Reference::parse(""));
    CHECK_FALSE(Reference::parse("r.example.com/"));
    CHECK_FALSE(Reference::parse("r.example.com/app:-bad"));
    CHECK_FALSE(Reference::parse("r.example.com/app:" + std::string(129, 'a')));
    CHECK_FALSE(Reference::parse("r.example.com/a..b"));
    CHECK_FALSE(Reference::parse("r.example.com/-app"));
    CHECK_FALSE(Reference::parse("r.example.com:port/app"));
    auto scheme = Reference::parse("https://r.example.com/app");
    REQUIRE_FALSE(scheme);
    CHECK_THAT(scheme.error().message, Catch::Contains("scheme"));
    CHECK_FALSE(Reference::parse("r.example.com/" + std::string(250, 'a')));
}

TEST_CASE("reference: repository separators", "[unit][core][reference]") {
    CHECK(is_valid_repository("a/b_c/d__e/f-g/h---i/j.k"));
    CHECK_FALSE(is_valid_repository("a___b"));
    CHECK_FALSE(is_valid_repository("a_-b"));
    CHECK_FALSE(is_valid_repository("a//b"));
    CHECK_FALSE(is_valid_repository("a/"));
}

TEST_CASE("tag grammar", "[unit][core][reference]") {
    CHECK(is_valid_tag("1.4.2-dev"));
    CHECK(is_valid_tag("_x"));
    CHECK(is_valid_tag("A"));
    CHECK(is_valid_tag(std::string(128, 'a')));
    CHECK_FALSE(is_valid_tag(std::string(129, 'a')));
    CHECK_FALSE(is_valid_tag(".x"));
    CHECK_FALSE(is_valid_tag("-x"));
    CHECK_FALSE(is_valid_tag("a/b"));
    CHECK_FALSE(is_valid_tag("a+b"));
    CHECK_FALSE(is_valid_tag(""));
    auto e = validate_tag("-x");
    REQUIRE_FALSE(e);
    CHECK_THAT(e.error().message, Catch::Contains("must start with"));
}

TEST_CASE("loopback hosts", "[unit][core][reference]") {
    CHECK(is_loopback_host("localhost:5000"));
    CHECK(is_loopback_host("127.0.0.1"));
    CHECK(is_loopback_host("127.1.2.3:80"));
    CHECK(is_loopback_host("[::1]:5000"));
    CHECK_FALSE(is_loopback_host("127.example.com"));
    CHECK_FALSE(is_loopback_host("10.0.0.1:5000"));
    CHECK_FALSE(is_loopback_host("registry.local"));
}
