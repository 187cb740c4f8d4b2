// docker-archive and oci-archive read from streams: real tars written with libarchive's writer,
// including hostile ones (names that escape, links, devices, truncation).
#include <tagwarden/push/plan.hpp>
#include <tagwarden/source/source.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <cctype>
#include <cstdlib>
#include <unistd.h>
#include <sys/sysmacros.h>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

using namespace tagwarden;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

class MemoryReader final : public image::BlobReader {
public:
    explicit MemoryReader(std::string data) : m_data(std::move(data)) {}
    Result<std::size_t> read(char* buffer, std::size_t size) override {
        auto n = std::min(size, m_data.size() - m_pos);
        std::copy_n(m_data.data() + m_pos, n, buffer);
        m_pos += n;
        return n;
    }

private:
    std::string m_data;
    std::size_t m_pos = 0;
};

struct TarEntry {
    std::string name;
    std::string data;
    unsigned type = AE_IFREG;
    std::string link;       // symlink target
    std::string hardlink;   // hard link target
};

std::string make_tar(const std::vector<TarEntry>& entries) {
    std::vector<char> buffer(8 * 1024 * 1024);
    std::size_t used = 0;
    auto* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    REQUIRE(archive_write_open_memory(a, buffer.data(), buffer.size(), &used) == ARCHIVE_OK);
    for (const auto& e : entries) {
        auto* entry = archive_entry_new();
        archive_entry_copy_pathname(entry, e.name.c_str());
        archive_entry_set_mtime(entry, 1700000000, 0);
        if (!e.hardlink.empty()) {
            archive_entry_set_filetype(entry, AE_IFREG);
            archive_entry_copy_hardlink(entry, e.hardlink.c_str());
            archive_entry_set_size(entry, 0);
        } else {
            archive_entry_set_filetype(entry, e.type);
            archive_entry_set_perm(entry, e.type == AE_IFDIR ? 0755 : 0644);
            if (e.type == AE_IFLNK)
                archive_entry_copy_symlink(entry, e.link.c_str());
            if (e.type == AE_IFCHR)
                archive_entry_set_rdev(entry, makedev(1, 3));
            archive_entry_set_size(entry, e.type == AE_IFREG ? static_cast<la_int64_t>(e.data.size()) : 0);
        }
        REQUIRE(archive_write_header(a, entry) == ARCHIVE_OK);
        if (e.type == AE_IFREG && e.hardlink.empty() && !e.data.empty())
            REQUIRE(archive_write_data(a, e.data.data(), e.data.size()) == static_cast<la_ssize_t>(e.data.size()));
        archive_entry_free(entry);
    }
    REQUIRE(archive_write_close(a) == ARCHIVE_OK);
    archive_write_free(a);
    return std::string(buffer.data(), used);
}

std::string gzip_bytes(const std::string& in) {
    z_stream s{};
    REQUIRE(deflateInit2(&s, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(in.size() + 1024, '\0');
    s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    s.avail_in = static_cast<uInt>(in.size());
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
    out.resize(s.total_out);
    deflateEnd(&s);
    return out;
}

// A layer: a small tar holding one file.
std::string layer_tar(const std::string& file, const std::string& content) { return make_tar({{file, content}}); }

std::string config_for(const std::vector<std::string>& layers) {
    json diff_ids = json::array();
    for (const auto& l : layers)
        diff_ids.push_back(Digest::of(l).str());
    return json{{"architecture", "amd64"}, {"os", "linux"}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}.dump();
}

// The entries of a classic `docker save` archive of one image: <id>/layer.tar, <config>.json, manifest.json.
std::vector<TarEntry> docker_save(const std::vector<std::string>& layers, const std::string& repo_tag = "app:1") {
    std::vector<TarEntry> entries;
    json layer_names = json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
        auto dir = std::string(Digest::of(layers[i]).hex());
        entries.push_back({dir, "", AE_IFDIR});
        entries.push_back({dir + "/layer.tar", layers[i]});
        layer_names.push_back(dir + "/layer.tar");
    }
    auto config = config_for(layers);
    auto config_name = std::string(Digest::of(config).hex()) + ".json";
    entries.push_back({config_name, config});
    entries.push_back({"manifest.json", json::array({{{"Config", config_name}, {"RepoTags", {repo_tag}}, {"Layers", layer_names}}}).dump()});
    entries.push_back({"repositories", "{}"});
    return entries;
}

// TMPDIR pointed at a fresh directory for the test; checks it is empty at the end (no spool left).
struct TempDir {
    fs::path dir;
    std::string previous;
    bool had_previous = false;
    TempDir() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("tw-spool-test-" + std::to_string(rd()));
        fs::create_directories(dir);
        if (const char* p = std::getenv("TMPDIR")) {
            previous = p;
            had_previous = true;
        }
        ::setenv("TMPDIR", dir.c_str(), 1);
    }
    ~TempDir() {
        if (had_previous)
            ::setenv("TMPDIR", previous.c_str(), 1);
        else
            ::unsetenv("TMPDIR");
        fs::remove_all(dir);
    }
    [[nodiscard]] bool empty() const { return fs::is_empty(dir); }
};

Result<std::unique_ptr<image::ImageSource>> open_stream(const std::string& tar, source::SourceOptions options = {}) {
    return source::open_docker_archive_stream(std::make_unique<MemoryReader>(tar), "docker-archive:test", options);
}

std::string read_blob(image::ImageSource& src, const image::Descriptor& d) {
    auto r = src.open_blob(d);
    REQUIRE(r);
    std::string out;
    char buf[4096];
    while (true) {
        auto n = (*r)->read(buf, sizeof buf);
        REQUIRE(n);
        if (*n == 0)
            break;
        out.append(buf, *n);
    }
    return out;
}

void require_refused(const std::string& tar, const std::string& mention) {
    TempDir tmp;
    auto src = open_stream(tar);
    REQUIRE_FALSE(src);
    CHECK(src.error().kind == ErrorKind::invalid_input);
    CHECK_THAT(src.error().message, Catch::Contains(mention));
    CHECK(tmp.empty());
}

} // namespace

TEST_CASE("a classic docker save archive becomes a Docker schema 2 image with gzip layers", "[source][archive]") {
    TempDir tmp;
    std::vector<std::string> layers{layer_tar("a.txt", "hello"), layer_tar("b.txt", std::string(100000, 'b'))};
    auto tar = make_tar(docker_save(layers));
    auto src = open_stream(tar);
    REQUIRE(src);
    CHECK((*src)->describe() == "docker-archive:test");
    CHECK_FALSE(tmp.empty());  // the spool lives as long as the source
    auto root = (*src)->root();
    REQUIRE(root);
    REQUIRE(root->image);
    CHECK(root->media_type == "application/vnd.docker.distribution.manifest.v2+json");
    CHECK(root->image->config.media_type == "application/vnd.docker.container.image.v1+json");
    auto config = config_for(layers);
    CHECK(root->image->config.digest == Digest::of(config));  // the image ID docker images shows
    CHECK(read_blob(**src, root->image->config) == config);
    REQUIRE(root->image->layers.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        const auto& l = root->image->layers[i];
        CHECK(l.media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip");
        auto bytes = read_blob(**src, l);
        CHECK(Digest::of(bytes) == l.digest);
        CHECK(bytes.size() == l.size);
        CHECK(bytes.substr(0, 2) == "\x1f\x8b");
    }
    auto plan = push::plan_push(**src, {"1.0"});
    REQUIRE(plan);
    CHECK(plan->blobs.size() == 3);
    auto summary = source::summarize_source(**src, "docker-archive:test");
    CHECK(summary.transport == "docker-archive");
    CHECK(summary.compression == "gzip");

    // The same archive read again gives the same manifest bytes: a re-push is "unchanged".
    auto again = open_stream(tar);
    REQUIRE(again);
    CHECK((*again)->root()->digest == root->digest);
    src->reset();
    again->reset();
    CHECK(tmp.empty());
}

TEST_CASE("zstd and none give OCI manifests; already compressed layers are kept", "[source][archive]") {
    TempDir tmp;
    std::vector<std::string> layers{layer_tar("a.txt", "one"), layer_tar("b.txt", "two")};
    auto tar = make_tar(docker_save(layers));
    source::SourceOptions zstd;
    zstd.compression = source::Compression::zstd;
    auto z = open_stream(tar, zstd);
    REQUIRE(z);
    auto zroot = *(*z)->root();
    CHECK(zroot.media_type == "application/vnd.oci.image.manifest.v1+json");
    CHECK(zroot.image->config.media_type == "application/vnd.oci.image.config.v1+json");
    CHECK(zroot.image->layers[0].media_type == "application/vnd.oci.image.layer.v1.tar+zstd");
    CHECK(read_blob(**z, zroot.image->layers[0]).substr(0, 4) == std::string("\x28\xb5\x2f\xfd", 4));

    source::SourceOptions none;
    none.compression = source::Compression::none;
    auto n = open_stream(tar, none);
    REQUIRE(n);
    auto nroot = *(*n)->root();
    CHECK(nroot.image->layers[1].media_type == "application/vnd.oci.image.layer.v1.tar");
    CHECK(nroot.image->layers[1].digest == Digest::of(layers[1]));
    CHECK(read_blob(**n, nroot.image->layers[1]) == layers[1]);

    // A gzip layer in the archive is pushed as it is: its digest is the file's.
    auto entries = docker_save(layers);
    auto gz = gzip_bytes(layers[0]);
    for (auto& e : entries)
        if (e.data == layers[0])
            e.data = gz;
    auto g = open_stream(make_tar(entries));
    REQUIRE(g);
    auto groot = *(*g)->root();
    CHECK(groot.image->layers[0].digest == Digest::of(gz));
    CHECK(groot.media_type == "application/vnd.docker.distribution.manifest.v2+json");
}

TEST_CASE("several images: --source-tag chooses, and errors list what the archive holds", "[source][archive]") {
    TempDir tmp;
    std::vector<std::string> a{layer_tar("a", "a")}, b{layer_tar("b", "b")};
    auto ea = docker_save(a, "app:1");
    auto eb = docker_save(b, "docker.io/library/other:2");
    std::vector<TarEntry> entries;
    json manifest = json::array();
    for (auto* set : {&ea, &eb})
        for (auto& e : *set) {
            if (e.name == "manifest.json")
                manifest.push_back(json::parse(e.data)[0]);
            else if (e.name != "repositories")
                entries.push_back(e);
        }
    entries.push_back({"manifest.json", manifest.dump()});
    auto tar = make_tar(entries);

    auto none = open_stream(tar);
    REQUIRE_FALSE(none);
    CHECK_THAT(none.error().message, Catch::Contains("holds 2 images") && Catch::Contains("app:1") &&
                                         Catch::Contains("docker.io/library/other:2") && Catch::Contains("--source-tag"));
    source::SourceOptions options;
    options.source_tag = "other:2";  // the familiar form of docker.io/library/other:2
    auto other = open_stream(tar, options);
    REQUIRE(other);
    CHECK((*other)->root()->image->config.digest == Digest::of(config_for(b)));
    options.source_tag = "app:9";
    auto wrong = open_stream(tar, options);
    REQUIRE_FALSE(wrong);
    CHECK_THAT(wrong.error().message, Catch::Contains("no image tagged 'app:9'") && Catch::Contains("app:1"));
}

TEST_CASE("links inside the archive are other names for entries (legacy docker save dedup)", "[source][archive]") {
    TempDir tmp;
    std::vector<std::string> layers{layer_tar("a", "same")};
    auto entries = docker_save(layers);
    // The layer stored under blobs/, the legacy path a symlink to it.
    auto dir = std::string(Digest::of(layers[0]).hex());
    for (auto& e : entries)
        if (e.name == dir + "/layer.tar") {
            e = TarEntry{dir + "/layer.tar", "", AE_IFLNK, "../blobs/sha256/" + dir};
        }
    entries.insert(entries.begin(), TarEntry{"blobs/sha256/" + dir, layers[0]});
    auto src = open_stream(make_tar(entries));
    REQUIRE(src);
    CHECK((*src)->root()->image->layers.size() == 1);
}

TEST_CASE("hostile archives are refused and leave nothing behind", "[source][archive][hostile]") {
    std::vector<std::string> layers{layer_tar("a", "x")};
    auto base = docker_save(layers);
    auto with = [&](TarEntry extra) {
        auto e = base;
        e.insert(e.begin(), std::move(extra));
        return make_tar(e);
    };
    SECTION("a .. entry") { require_refused(with({"../evil", "x"}), "'..'"); }
    SECTION("a nested .. entry") { require_refused(with({"a/../../evil", "x"}), "'..'"); }
    SECTION("an absolute path") { require_refused(with({"/tmp/evil", "x"}), "absolute"); }
    SECTION("a symlink escaping") { require_refused(with({"link", "", AE_IFLNK, "../../etc/passwd"}), "outside the archive"); }
    SECTION("an absolute symlink") { require_refused(with({"link", "", AE_IFLNK, "/etc/passwd"}), "absolute"); }
    SECTION("a hard link escaping") { require_refused(with({"hard", "", AE_IFREG, "", "/etc/passwd"}), "outside the archive"); }
    SECTION("a device file") { require_refused(with({"dev", "", AE_IFCHR}), "device"); }
    SECTION("a FIFO") { require_refused(with({"fifo", "", AE_IFIFO}), "FIFO"); }
    SECTION("a duplicate name") { require_refused(with({"manifest.json", "[]"}), "twice"); }
    SECTION("truncated inside an entry") {
        auto tar = make_tar(base);
        require_refused(tar.substr(0, 1536 + 300), "truncated or corrupt");
    }
    SECTION("ending before manifest.json") {
        auto e = base;
        std::erase_if(e, [](const TarEntry& x) { return x.name == "manifest.json" || x.name == "repositories"; });
        require_refused(make_tar(e), "no manifest.json");
    }
    SECTION("empty input") { require_refused("", "docker-archive:test"); }
    SECTION("not a tar") { require_refused(std::string(4096, 'z'), "not a"); }
    SECTION("manifest.json naming a missing layer") {
        auto e = base;
        for (auto& x : e)
            if (x.name == "manifest.json") {
                auto m = json::parse(x.data);
                m[0]["Layers"][0] = "missing/layer.tar";
                x.data = m.dump();
            }
        require_refused(make_tar(e), "does not hold");
    }
    SECTION("a layer that does not match its diff_id") {
        auto e = base;
        for (auto& x : e)
            if (x.name.ends_with("/layer.tar"))
                x.data = layer_tar("a", "y");
        require_refused(make_tar(e), "diff_id");
    }
    SECTION("a blob whose name is not its digest") {
        require_refused(with({"blobs/sha256/" + std::string(64, 'a'), "x"}), "hashes to");
    }
    SECTION("a corrupt gzip stream") {
        auto gz = gzip_bytes(make_tar(base));
        gz[gz.size() / 2] ^= 0x55;
        gz[gz.size() / 2 + 1] ^= 0x55;
        require_refused(gz, "");
    }
}

TEST_CASE("an oci-archive is an OCI layout in a tar, plain or gzip", "[source][archive]") {
    TempDir tmp;
    auto layer = gzip_bytes(layer_tar("a", "oci"));
    auto config = config_for({layer_tar("a", "oci")});
    auto hex = [](const std::string& s) { return std::string(Digest::of(s).hex()); };
    json manifest = {{"schemaVersion", 2},
                     {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"}, {"digest", Digest::of(config).str()}, {"size", config.size()}}},
                     {"layers", {{{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", Digest::of(layer).str()}, {"size", layer.size()}}}}};
    auto mb = manifest.dump(3);
    json index = {{"schemaVersion", 2},
                  {"manifests", {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"}, {"digest", Digest::of(mb).str()},
                                  {"size", mb.size()}, {"annotations", {{"org.opencontainers.image.ref.name", "v1"}}}}}}};
    auto tar = make_tar({{"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
                         {"index.json", index.dump()},
                         {"blobs", "", AE_IFDIR},
                         {"blobs/sha256/" + hex(layer), layer},
                         {"blobs/sha256/" + hex(config), config},
                         {"blobs/sha256/" + hex(mb), mb}});
    for (const auto& bytes : {tar, gzip_bytes(tar)}) {
        auto src = source::open_oci_archive_stream(std::make_unique<MemoryReader>(bytes), "oci-archive:x", "");
        REQUIRE(src);
        CHECK((*src)->describe() == "oci-archive:x");
        CHECK((*src)->root()->digest == Digest::of(mb));  // the manifest as stored, byte for byte
        REQUIRE(push::plan_push(**src, {"1"}));
        CHECK(read_blob(**src, (*src)->root()->image->layers[0]) == layer);
        CHECK(source::summarize_source(**src, "oci-archive:x").compression == "as-is");
    }
    auto missing = source::open_oci_archive_stream(std::make_unique<MemoryReader>(tar), "oci-archive:x", "v2");
    REQUIRE_FALSE(missing);
    CHECK_THAT(missing.error().message, Catch::Contains("oci-archive:x") && Catch::Contains("v1"));
    CHECK(tmp.empty());
}

TEST_CASE("spool directories of dead processes are swept", "[source][archive]") {
    TempDir tmp;
    // PID 2^22+1 is above Linux's pid_max limit: it cannot be running.
    char name[256] = {};
    REQUIRE(::gethostname(name, sizeof name - 1) == 0);
    std::string host;
    for (const char* c = name; *c && host.size() < 24; ++c)
        if (std::isalnum(static_cast<unsigned char>(*c)))
            host += *c;
    auto stale = tmp.dir / ("tagwarden-spool-4194305-" + (host.empty() ? std::string("host") : host) + "-abcdef");
    fs::create_directories(stale / "layout");
    // Another host's spool (a /tmp shared across machines or containers): its pid means nothing here.
    auto elsewhere = tmp.dir / "tagwarden-spool-4194305-otherhost-abcdef";
    fs::create_directories(elsewhere);
    auto src = open_stream(make_tar(docker_save({layer_tar("a", "x")})));
    REQUIRE(src);
    CHECK_FALSE(fs::exists(stale));
    CHECK(fs::exists(elsewhere));
}
