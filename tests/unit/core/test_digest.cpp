#include <tagwarden/core/digest.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;

TEST_CASE("digest of known content", "[unit][core]") {
    CHECK(Digest::of("").str() == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(Digest::of("abc").str() == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("incremental hashing equals one-shot hashing", "[unit][core]") {
    Sha256 h;
    h.update("a");
    h.update("bc");
    CHECK(h.finish() == Digest::of("abc"));
}

TEST_CASE("digest parsing", "[unit][core]") {
    auto good = Digest::parse("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    REQUIRE(good);
    CHECK(good->algorithm() == "sha256");
    CHECK(good->hex().size() == 64);

    SECTION("rejects a missing algorithm") {
        auto r = Digest::parse("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        REQUIRE_FALSE(r);
        CHECK(r.error().kind == ErrorKind::invalid_input);
    }
    SECTION("rejects uppercase hex") {
        CHECK_FALSE(Digest::parse("sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    }
    SECTION("rejects a short hex") { CHECK_FALSE(Digest::parse("sha256:abc")); }
    SECTION("rejects an unknown algorithm") {
        auto r = Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error().message, Catch::Contains("sha256"));
    }
    SECTION("accepts sha512") { CHECK(Digest::parse("sha512:" + std::string(128, 'a'))); }
}
