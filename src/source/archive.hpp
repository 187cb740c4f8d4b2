#pragma once

// Shared by the archive transports (docker-archive, oci-archive, and docker-daemon on top of the
// docker-archive stream reader): the private spool directory, the tar reader that fills it, and
// the sources that serve blobs from it. Not a public header.

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/source/compress.hpp>
#include <tagwarden/source/source.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace tagwarden::source {

// Bounds on what an archive may hold; past any of them the archive is refused (exit 2).
struct ArchiveLimits {
    std::uint64_t max_entries = 100'000;                       // tar entries of any type
    std::uint64_t max_entry_bytes = 64ULL << 30;               // one file: 64 GiB
    std::uint64_t max_total_bytes = 256ULL << 30;              // all files together: 256 GiB
    std::size_t max_path_length = 4096;                        // bytes of an entry name or link target
    std::uint64_t max_metadata_bytes = 8ULL << 20;             // manifest.json, index.json, a config: 8 MiB
    std::size_t max_layers = 1000;                             // layers of one image
};

// A private directory (mode 0700) under $TMPDIR, named tagwarden-spool-<pid>-<host>-XXXXXX, removed with
// everything in it when the last owner lets go. Creating one first removes the spool directories that
// dead tagwarden processes of this host (SIGKILL) left behind; another host's are never touched.
class SpoolDir {
public:
    static Result<std::shared_ptr<SpoolDir>> create();
    ~SpoolDir();
    SpoolDir(const SpoolDir&) = delete;
    SpoolDir& operator=(const SpoolDir&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const { return m_path; }
    // A fresh file name inside the directory: <prefix><ordinal>. Never derived from archive content.
    [[nodiscard]] std::filesystem::path new_file(std::string_view prefix);

private:
    explicit SpoolDir(std::filesystem::path path) : m_path(std::move(path)) {}
    std::filesystem::path m_path;
    std::atomic<std::uint64_t> m_next{0};
};

// One regular file of the archive, copied into the spool directory.
struct SpooledEntry {
    std::string name;             // the normalized entry name, e.g. "blobs/sha256/ab…" or "abc/layer.tar"
    std::filesystem::path file;   // where its bytes are
    std::uint64_t size = 0;
    Digest digest;                // sha256 of the bytes
    ContentKind kind = ContentKind::other;
};

struct SpooledArchive {
    std::shared_ptr<SpoolDir> spool;
    std::vector<SpooledEntry> entries;
    std::map<std::string, std::size_t> by_name;  // normalized name -> index in entries
    // Links inside the archive (symlinks resolved against their directory, hard links): name -> target name.
    // No link is ever created on disk; a link is only another name for an entry.
    std::map<std::string, std::string> links;

    // The entry named `name` (links followed); nullptr when absent.
    [[nodiscard]] const SpooledEntry* find(const std::string& name) const;
    // The bytes of a small entry (metadata), refused past `limit`.
    [[nodiscard]] Result<std::string> read_text(const SpooledEntry& entry, std::uint64_t limit,
                                                const std::string& origin) const;
};

// Reads a tar (plain, gzip or zstd) from `stream` once, in order, spooling each regular file to a new
// spool directory as it passes and hashing it. Refuses absolute names, "..", links that leave the
// archive, device files, FIFOs, sparse files, duplicate names and anything past `limits` with
// Error{invalid_input} naming the entry; a truncated or corrupt tar is Error{invalid_input} too.
// Honours cancellation (SIGINT/SIGTERM) between reads.
// `on_file`, when given, is called with each regular file right after it is spooled (and before the next
// entry is read), so work on it can start while the rest of the stream arrives.
// The hook may keep the spool directory alive (its work then outlives a failed read safely).
using SpooledFileHook = std::function<void(const SpooledEntry&, const std::shared_ptr<SpoolDir>&)>;
Result<SpooledArchive> spool_tar(image::BlobReader& stream, const std::string& origin, const ArchiveLimits& limits = {},
                                 const SpooledFileHook& on_file = {});

// Entry names: "./a//b/" -> "a/b". Absolute names and any ".." component are refused.
Result<std::string> normalize_entry_name(std::string_view raw);
// A symlink target, resolved against the directory of the link's name; refused when it leaves the root.
Result<std::string> resolve_link_target(std::string_view link_name, std::string_view target);

// A reader over a file descriptor; retries reads interrupted by a signal unless the run is cancelled.
std::unique_ptr<image::BlobReader> make_fd_reader(int fd, bool owned);

// Base of the sources that live in a spool directory: what they report in --output json.
class ArchiveSource : public image::ImageSource {
public:
    [[nodiscard]] virtual SourceSummary summary() const = 0;
};

// An OCI image layout found in a spooled archive (oci-archive, or a docker-archive without
// manifest.json): its blobs are moved into <spool>/layout and served by the oci: transport.
Result<std::unique_ptr<image::ImageSource>> open_spooled_oci_layout(SpooledArchive archive, std::string origin,
                                                                     std::string ref, std::string transport);

} // namespace tagwarden::source
