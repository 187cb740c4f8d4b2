#include <tagwarden/image/manifest.hpp>

#include <catch2/catch.hpp>

using namespace tagwarden;
using namespace tagwarden::image;

namespace {
const std::string k_hex_a(64, 'a');
const std::string k_hex_b(64, 'b');

std::string image_manifest(const std::string& media_type_field) {
    return R"({"schemaVersion":2,)" + media_type_field +
           R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" + k_hex_a +
           R"(","size":7},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:)" +
           k_hex_b + R"(","size":42}]})";
}
} // namespace

TEST_CASE("manifest: OCI image manifest", "[unit][image]") {
    auto bytes = image_manifest(R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)");
    auto m = parse_manifest(bytes, media_type::oci_manifest);
    REQUIRE(m);
    CHECK(m->digest == Digest::of(bytes));
    CHECK(m->bytes == bytes);
    REQUIRE(m->image);
    CHECK_FALSE(m->is_index());
    CHECK(m->image->config.size == 7);
    REQUIRE(m->image->layers.size() == 1);
    CHECK(m->image->layers[0].digest.str() == "sha256:" + k_hex_b);
}

TEST_CASE("manifest: media type inferred and checked", "[unit][image]") {
    SECTION("missing mediaType takes the declared one") {
        auto m = parse_manifest(image_manifest(""), media_type::docker_manifest);
        REQUIRE(m);
        CHECK(m->media_type == media_type::docker_manifest);
    }
    SECTION("no mediaType anywhere: OCI manifest by shape") {
        auto m = parse_manifest(image_manifest(""), "");
        REQUIRE(m);
        CHECK(m->media_type == media_type::oci_manifest);
    }
    SECTION("disagreement is an error") {
        auto m = parse_manifest(image_manifest(R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)"),
                                media_type::docker_manifest);
        REQUIRE_FALSE(m);
        CHECK_THAT(m.error().message, Catch::Contains("declares mediaType"));
    }
}

TEST_CASE("manifest: image index with platforms", "[unit][image]") {
    std::string bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:)" + k_hex_a + R"(","size":100,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:)" + k_hex_b + R"(","size":200,"platform":{"os":"linux","architecture":"amd64"}}]})";
    auto m = parse_manifest(bytes, "");
    REQUIRE(m);
    REQUIRE(m->is_index());
    REQUIRE(m->index->manifests.size() == 2);
    CHECK(m->index->manifests[0].platform->str() == "linux/arm64/v8");
    CHECK(m->index->manifests[1].size == 200);
}

TEST_CASE("manifest: malformed documents name the problem", "[unit][image]") {
    CHECK_THAT(parse_manifest("{not json", "").error().message, Catch::Contains("not valid JSON"));
    CHECK_THAT(parse_manifest(R"({"schemaVersion":1,"fsLayers":[]})", "").error().message,
               Catch::Contains("schema 1"));
    auto no_layers = parse_manifest(
        R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:)" + k_hex_a + R"(","size":1}})", "");
    REQUIRE_FALSE(no_layers);
    CHECK_THAT(no_layers.error().message, Catch::Contains("layers"));
    auto bad_digest = parse_manifest(
        R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:zz","size":1},"layers":[]})", "");
    REQUIRE_FALSE(bad_digest);
    CHECK_THAT(bad_digest.error().message, Catch::Contains("config"));
    auto negative = parse_manifest(
        R"({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:)" + k_hex_a + R"(","size":-1},"layers":[]})", "");
    REQUIRE_FALSE(negative);
    CHECK_THAT(negative.error().message, Catch::Contains("size"));
    auto unknown = parse_manifest(R"({"schemaVersion":2,"mediaType":"text/plain"})", "");
    REQUIRE_FALSE(unknown);
    CHECK_THAT(unknown.error().message, Catch::Contains("unsupported"));
}

// Found by fuzz_manifest: a field of the wrong JSON type threw nlohmann::type_error out of the parser.
TEST_CASE("manifest: fields of the wrong JSON type are errors, never exceptions", "[unit][image]") {
    auto array_media_type = parse_manifest(image_manifest(R"("mediaType":["a"],)"), "");
    REQUIRE_FALSE(array_media_type);
    CHECK_THAT(array_media_type.error().message, Catch::Contains("'mediaType' must be a string"));
    auto string_version = parse_manifest(R"({"schemaVersion":"2","layers":[]})", "");
    REQUIRE_FALSE(string_version);
    CHECK_THAT(string_version.error().message, Catch::Contains("schemaVersion"));
    auto index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                 R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)" +
                 k_hex_a + R"(","size":7,"platform":{"os":7,"architecture":"amd64"}}]})";
    auto bad_platform = parse_manifest(index, "");
    REQUIRE_FALSE(bad_platform);
    CHECK_THAT(bad_platform.error().message, Catch::Contains("platform"));
    CHECK_FALSE(parse_manifest("[1,2]", ""));
    CHECK_FALSE(parse_manifest(R"({"schemaVersion":2,"mediaType":null})", ""));
}
