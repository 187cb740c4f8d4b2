#include <tagwarden/push/push.hpp>
#include <tagwarden/source/source.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace tagwarden;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Writes a one-layer OCI layout into a fresh temporary directory.
struct Layout {
    fs::path dir;
    Digest config, layer, manifest;

    explicit Layout(const std::string& ref_name = "latest") {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("tw-layout-" + std::to_string(rd()));
        fs::create_directories(dir / "blobs" / "sha256");
        write(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
        std::string config_bytes = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
        std::string layer_bytes = "layer-bytes-0123456789";
        config = put_blob(config_bytes);
        layer = put_blob(layer_bytes);
        json m = {{"schemaVersion", 2},
                  {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                  {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", config.str()}, {"size", config_bytes.size()}}},
                  {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", layer.str()}, {"size", layer_bytes.size()}}}}};
        auto mb = m.dump();
        manifest = put_blob(mb);
        json index = {{"schemaVersion", 2},
                      {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                      {"digest", manifest.str()},
                                      {"size", mb.size()},
                                      {"annotations", {{"org.opencontainers.image.ref.name", ref_name}}}}}}};
        write(dir / "index.json", index.dump());
    }
    ~Layout() { fs::remove_all(dir); }

    static void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }
    Digest put_blob(const std::string& bytes) {
        auto d = Digest::of(bytes);
        write(blob_path(d), bytes);
        return d;
    }
    [[nodiscard]] fs::path blob_path(const Digest& d) const { return dir / "blobs" / "sha256" / std::string(d.hex()); }
    [[nodiscard]] std::string spec(const std::string& ref = "") const { return "oci:" + dir.string() + (ref.empty() ? "" : ":" + ref); }
};

Result<std::string> read_all(image::BlobReader& r) {
    std::string out;
    char buffer[7];
    while (true) {
        auto n = r.read(buffer, sizeof buffer);
        if (!n)
            return std::unexpected(n.error());
        if (*n == 0)
            return out;
        out.append(buffer, *n);
    }
}

} // namespace

TEST_CASE("oci layout: opens by ref name and plans every blob", "[unit][source]") {
    Layout l("1.0");
    auto src = source::open_source(l.spec("1.0"));
    REQUIRE(src);
    auto root = (*src)->root();
    REQUIRE(root);
    CHECK(root->digest == l.manifest);
    auto plan = push::plan_push(**src, {"a", "b", "a"});
    REQUIRE(plan);
    CHECK(plan->tags == std::vector<std::string>{"a", "b"});
    REQUIRE(plan->blobs.size() == 2);
    CHECK(plan->blobs[0].digest == l.config);
    CHECK(plan->children.empty());

    auto missing_ref = source::open_source(l.spec("2.0"));
    REQUIRE_FALSE(missing_ref);
    CHECK_THAT(missing_ref.error().message, Catch::Contains("1.0"));
}

TEST_CASE("oci layout: blobs are verified while read", "[unit][source]") {
    Layout l;
    auto src = source::open_source(l.spec());
    REQUIRE(src);
    auto plan = push::plan_push(**src, {});
    REQUIRE(plan);
    const auto& layer = plan->blobs[1];

    SECTION("intact") {
        auto reader = (*src)->open_blob(layer);
        REQUIRE(reader);
        auto bytes = read_all(**reader);
        REQUIRE(bytes);
        CHECK(*bytes == "layer-bytes-0123456789");
    }
    SECTION("same size, different bytes") {
        Layout::write(l.blob_path(l.layer), "LAYER-bytes-0123456789");
        auto reader = (*src)->open_blob(layer);
        REQUIRE(reader);
        auto bytes = read_all(**reader);
        REQUIRE_FALSE(bytes);
        CHECK(bytes.error().kind == ErrorKind::invalid_input);
        CHECK_THAT(bytes.error().message, Catch::Contains("does not match its digest"));
    }
    SECTION("missing blob fails the plan") {
        fs::remove(l.blob_path(l.layer));
        auto p = push::plan_push(**src, {});
        REQUIRE_FALSE(p);
        CHECK_THAT(p.error().message, Catch::Contains("missing"));
    }
    SECTION("truncated blob fails the plan") {
        Layout::write(l.blob_path(l.layer), "short");
        auto p = push::plan_push(**src, {});
        REQUIRE_FALSE(p);
        CHECK_THAT(p.error().message, Catch::Contains("declares"));
    }
}

TEST_CASE("oci layout: bad layouts are named", "[unit][source]") {
    CHECK_THAT(source::open_source("oci:/nonexistent/dir").error().message, Catch::Contains("not a directory"));
    CHECK_THAT(source::open_source("containers-storage:x").error().message, Catch::Contains("unsupported source"));
    Layout l;
    Layout::write(l.dir / "index.json", "{broken");
    CHECK_THAT(source::open_source(l.spec()).error().message, Catch::Contains("index.json is not valid JSON"));
    Layout::write(l.dir / "index.json", R"({"schemaVersion":2,"manifests":[]})");
    CHECK_THAT(source::open_source(l.spec()).error().message, Catch::Contains("no image"));
    CHECK_FALSE(push::plan_push(**source::open_source(Layout().spec()), {"-bad"}));
}
