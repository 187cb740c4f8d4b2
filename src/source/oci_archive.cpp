#include "archive.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tagwarden::source {

namespace fs = std::filesystem;

namespace {

bool is_sha256_hex(std::string_view s) {
    if (s.size() != 64)
        return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

// The oci: transport over the layout rebuilt in the spool directory, reporting the archive as its origin.
class SpooledLayoutSource final : public ArchiveSource {
public:
    SpooledLayoutSource(std::shared_ptr<SpoolDir> spool, std::string origin, std::string layout_origin,
                        std::unique_ptr<image::ImageSource> inner, SourceSummary summary)
        : m_spool(std::move(spool)), m_origin(std::move(origin)), m_layout_origin(std::move(layout_origin)),
          m_inner(std::move(inner)), m_summary(std::move(summary)) {}

    [[nodiscard]] std::string describe() const override { return m_origin; }
    [[nodiscard]] SourceSummary summary() const override { return m_summary; }
    Result<image::Manifest> root() override { return rename(m_inner->root()); }
    Result<image::Manifest> manifest(const image::Descriptor& d) override { return rename(m_inner->manifest(d)); }
    Status check_blob(const image::Descriptor& d) override { return rename(m_inner->check_blob(d)); }
    Result<std::unique_ptr<image::BlobReader>> open_blob(const image::Descriptor& d) override {
        return rename(m_inner->open_blob(d));
    }

private:
    // Errors of the inner source name the spool directory; users know the archive.
    template <class T> T rename(T result) const {
        if (!result) {
            auto& message = result.error().message;
            for (auto pos = message.find(m_layout_origin); pos != std::string::npos; pos = message.find(m_layout_origin, pos))
                message.replace(pos, m_layout_origin.size(), m_origin);
        }
        return result;
    }

    std::shared_ptr<SpoolDir> m_spool;
    std::string m_origin;
    std::string m_layout_origin;
    std::unique_ptr<image::ImageSource> m_inner;
    SourceSummary m_summary;
};

Status move_into(const SpooledEntry& entry, const fs::path& to) {
    if (std::rename(entry.file.c_str(), to.c_str()) != 0)
        return fail(ErrorKind::internal, "cannot move " + entry.file.string() + " to " + to.string() + ": " + std::strerror(errno));
    return {};
}

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_spooled_oci_layout(SpooledArchive archive, std::string origin,
                                                                     std::string ref, std::string transport) {
    const auto* index = archive.find("index.json");
    const auto* layout_file = archive.find("oci-layout");
    if (!index || !layout_file)
        return fail(ErrorKind::invalid_input, origin + ": no " + std::string(!index ? "index.json" : "oci-layout") +
                                                  " in the archive: not an OCI image layout");
    auto layout = archive.spool->path() / "layout";
    auto blob_dir = layout / "blobs" / "sha256";
    std::error_code ec;
    fs::create_directories(blob_dir, ec);
    if (ec)
        return fail(ErrorKind::internal, "cannot create " + blob_dir.string() + ": " + ec.message());
    // Files are named by their verified digest (spool_tar checked each blobs/sha256/<hex> against its bytes).
    for (const auto& entry : archive.entries) {
        if (!entry.name.starts_with("blobs/sha256/"))
            continue;
        auto hex = entry.name.substr(13);
        if (!is_sha256_hex(hex) || entry.digest.str() != "sha256:" + hex)
            continue;
        TW_TRY(move_into(entry, blob_dir / hex));
    }
    TW_TRY(move_into(*index, layout / "index.json"));
    TW_TRY(move_into(*layout_file, layout / "oci-layout"));
    auto inner = open_oci_layout(layout.string(), ref);
    auto layout_origin = "oci:" + layout.string();
    if (!inner) {
        auto e = inner.error();
        for (auto pos = e.message.find(layout_origin); pos != std::string::npos; pos = e.message.find(layout_origin, pos))
            e.message.replace(pos, layout_origin.size(), origin);
        return fail(e);
    }
    SourceSummary summary{std::move(transport), "as-is"};
    return std::make_unique<SpooledLayoutSource>(archive.spool, std::move(origin), std::move(layout_origin),
                                                 std::move(*inner), std::move(summary));
}

Result<std::unique_ptr<image::ImageSource>> open_oci_archive_stream(std::unique_ptr<image::BlobReader> stream,
                                                                     std::string origin, std::string ref) {
    auto archive = spool_tar(*stream, origin);
    if (!archive)
        return std::unexpected(archive.error());
    return open_spooled_oci_layout(std::move(*archive), std::move(origin), std::move(ref), "oci-archive");
}

} // namespace tagwarden::source
