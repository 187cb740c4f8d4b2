#include <tagwarden/source/source.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace tagwarden::source {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using image::Descriptor;
using image::Manifest;

constexpr std::uint64_t k_max_manifest_size = 4 * 1024 * 1024;
constexpr std::string_view k_ref_name_annotation = "org.opencontainers.image.ref.name";

class FileReader final : public image::BlobReader {
public:
    explicit FileReader(std::FILE* f) : m_file(f) {}
    ~FileReader() override { std::fclose(m_file); }
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;

    Result<std::size_t> read(char* buffer, std::size_t size) override {
        auto n = std::fread(buffer, 1, size, m_file);
        if (n == 0 && std::ferror(m_file))
            return fail(ErrorKind::internal, std::string("read error: ") + std::strerror(errno));
        return n;
    }

private:
    std::FILE* m_file;
};

Result<std::string> read_small_file(const fs::path& path, std::uint64_t limit, const std::string& what) {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec)
        return fail(ErrorKind::invalid_input, what + " " + path.string() + " cannot be read: " + ec.message());
    if (size > limit)
        return fail(ErrorKind::invalid_input, what + " " + path.string() + " is larger than " +
                                                  std::to_string(limit) + " bytes");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(ErrorKind::invalid_input, what + " " + path.string() + " cannot be opened");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

class OciLayoutSource final : public image::ImageSource {
public:
    OciLayoutSource(fs::path dir, std::string ref, Manifest root)
        : m_dir(std::move(dir)), m_ref(std::move(ref)), m_root(std::move(root)) {}

    [[nodiscard]] std::string describe() const override {
        return "oci:" + m_dir.string() + (m_ref.empty() ? "" : ":" + m_ref);
    }

    Result<Manifest> root() override { return m_root; }

    Result<Manifest> manifest(const Descriptor& d) override {
        TW_TRY(check_blob(d));
        if (d.size > k_max_manifest_size)
            return fail(ErrorKind::invalid_input, "manifest " + d.digest.str() + " in " + describe() +
                                                      " is larger than 4 MiB, the registries' limit");
        auto bytes = read_small_file(blob_path(d.digest), k_max_manifest_size, "manifest");
        if (!bytes)
            return std::unexpected(bytes.error());
        if (Digest::of(*bytes) != d.digest)
            return fail(ErrorKind::invalid_input, "manifest " + d.digest.str() + " in " + describe() +
                                                      " does not match its digest: the layout is corrupt");
        auto m = image::parse_manifest(std::move(*bytes), d.media_type);
        if (!m)
            return std::unexpected(m.error().with_context(describe()));
        return m;
    }

    Status check_blob(const Descriptor& d) override {
        if (d.digest.algorithm() != "sha256")
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " in " + describe() +
                                                      " uses " + std::string(d.digest.algorithm()) +
                                                      "; tagwarden pushes sha256 content only");
        auto path = blob_path(d.digest);
        std::error_code ec;
        auto size = fs::file_size(path, ec);
        if (ec)
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " is missing from " + describe() +
                                                      " (expected " + path.string() +
                                                      "): re-export the image layout");
        if (size != d.size)
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " in " + describe() + " has " +
                                                      std::to_string(size) + " bytes but its descriptor declares " +
                                                      std::to_string(d.size) + ": the layout is corrupt");
        return {};
    }

    Result<std::unique_ptr<image::BlobReader>> open_blob(const Descriptor& d) override {
        TW_TRY(check_blob(d));
        auto path = blob_path(d.digest);
        std::FILE* f = std::fopen(path.c_str(), "rb");
        if (!f)
            return fail(ErrorKind::invalid_input, "cannot open blob " + path.string() + ": " + std::strerror(errno));
        return std::make_unique<image::VerifyingReader>(std::make_unique<FileReader>(f), d, describe());
    }

private:
    [[nodiscard]] fs::path blob_path(const Digest& d) const {
        return m_dir / "blobs" / std::string(d.algorithm()) / std::string(d.hex());
    }

    fs::path m_dir;
    std::string m_ref;
    Manifest m_root;
};

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_oci_layout(std::string_view dir_text, std::string_view ref) {
    fs::path dir(dir_text);
    std::string where = "oci:" + std::string(dir_text);
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return fail(ErrorKind::invalid_input, where + ": '" + std::string(dir_text) +
                                                  "' is not a directory (expected an OCI image layout)");
    auto layout = read_small_file(dir / "oci-layout", 64 * 1024, "file");
    if (!layout)
        return fail(ErrorKind::invalid_input, where + ": no oci-layout file; is this an OCI image layout? "
                                                      "(skopeo copy ... oci:DIR writes one)");
    try {
        auto lj = json::parse(*layout);
        if (!lj.is_object() || lj.value("imageLayoutVersion", "") != "1.0.0")
            return fail(ErrorKind::invalid_input, where + ": oci-layout must declare imageLayoutVersion 1.0.0");
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, where + ": oci-layout is not valid JSON: " + e.what());
    }

    auto index_bytes = read_small_file(dir / "index.json", k_max_manifest_size, "file");
    if (!index_bytes)
        return std::unexpected(index_bytes.error().with_context(where));
    json index;
    try {
        index = json::parse(*index_bytes);
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, where + ": index.json is not valid JSON: " + e.what());
    }
    if (!index.is_object() || !index.contains("manifests") || !index["manifests"].is_array())
        return fail(ErrorKind::invalid_input, where + ": index.json has no 'manifests' array");

    std::vector<Descriptor> entries;
    for (std::size_t i = 0; i < index["manifests"].size(); ++i) {
        auto d = image::parse_descriptor(index["manifests"][i], "index.json manifests[" + std::to_string(i) + "]");
        if (!d)
            return std::unexpected(d.error().with_context(where));
        entries.push_back(std::move(*d));
    }
    if (entries.empty())
        return fail(ErrorKind::invalid_input, where + ": index.json lists no image");

    std::vector<std::string> names;
    for (const auto& e : entries)
        if (auto it = e.annotations.find(std::string(k_ref_name_annotation)); it != e.annotations.end())
            names.push_back(it->second);
    auto list_names = [&] {
        std::string s;
        for (const auto& n : names)
            s += (s.empty() ? "" : ", ") + n;
        return s.empty() ? std::string("(none named)") : s;
    };

    std::optional<Descriptor> chosen;
    if (!ref.empty()) {
        for (const auto& e : entries) {
            auto it = e.annotations.find(std::string(k_ref_name_annotation));
            if (it != e.annotations.end() && it->second == ref) {
                chosen = e;
                break;
            }
        }
        if (!chosen)
            return fail(ErrorKind::invalid_input, where + ": no image named '" + std::string(ref) +
                                                      "' in index.json; it has: " + list_names());
    } else if (entries.size() == 1) {
        chosen = entries.front();
    } else if (!names.empty()) {
        return fail(ErrorKind::invalid_input, where + ": index.json holds " + std::to_string(entries.size()) +
                                                  " images; name one as oci:DIR:REF (" + list_names() + ")");
    }

    auto tmp = std::make_unique<OciLayoutSource>(dir, std::string(ref), Manifest{});
    Manifest root;
    if (chosen) {
        if (!image::is_index_media_type(chosen->media_type) && !image::is_manifest_media_type(chosen->media_type))
            return fail(ErrorKind::invalid_input, where + ": entry " + chosen->digest.str() +
                                                      " has unsupported media type '" + chosen->media_type + "'");
        auto m = tmp->manifest(*chosen);
        if (!m)
            return std::unexpected(m.error());
        root = std::move(*m);
    } else {
        // Several unnamed entries (a multi-platform layout): index.json itself is the image index.
        auto m = image::parse_manifest(*index_bytes, image::media_type::oci_index);
        if (!m)
            return std::unexpected(m.error().with_context(where));
        root = std::move(*m);
    }
    return std::make_unique<OciLayoutSource>(dir, std::string(ref), std::move(root));
}

} // namespace tagwarden::source
