#include "archive.hpp"

#include <tagwarden/core/cancel.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <cerrno>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace tagwarden::source {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t k_read_chunk = 256 * 1024;
constexpr std::size_t k_sniff_bytes = 512;
constexpr int k_max_link_hops = 16;
constexpr std::uint64_t k_max_trailing_bytes = 64ULL << 20;

std::vector<std::string_view> split_components(std::string_view path) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        auto slash = path.find('/', start);
        auto part = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (!part.empty() && part != ".")
            parts.push_back(part);
        if (slash == std::string_view::npos)
            break;
        start = slash + 1;
    }
    return parts;
}

std::string join_components(const std::vector<std::string_view>& parts) {
    std::string out;
    for (auto p : parts)
        out += (out.empty() ? "" : "/") + std::string(p);
    return out;
}

// Names are shown in errors; keep them printable and short.
std::string printable(std::string_view name) {
    std::string out;
    for (char c : name.substr(0, 200))
        out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
    return name.size() > 200 ? out + "…" : out;
}

// libarchive is loaded when an archive is first read, not linked: the library and what it pulls in
// (libxml2, ICU, liblzma, liblz4, libbz2, libacl, nettle) added about 1.5 MiB to the resident size of
// every run, archive or not (bench/RESULTS.md).
#define TW_LIBARCHIVE_FUNCTIONS(X) \
    X(archive_entry_filetype) \
    X(archive_entry_hardlink) \
    X(archive_entry_pathname) \
    X(archive_entry_size) \
    X(archive_entry_size_is_set) \
    X(archive_entry_sparse_count) \
    X(archive_entry_symlink) \
    X(archive_error_string) \
    X(archive_read_data) \
    X(archive_read_free) \
    X(archive_read_new) \
    X(archive_read_next_header) \
    X(archive_read_open) \
    X(archive_read_support_filter_gzip) \
    X(archive_read_support_filter_zstd) \
    X(archive_read_support_format_tar) \
    X(archive_set_error)

struct LibArchive {
#define TW_LIBARCHIVE_POINTER(name) decltype(&::name) name = nullptr;
    TW_LIBARCHIVE_FUNCTIONS(TW_LIBARCHIVE_POINTER)
#undef TW_LIBARCHIVE_POINTER
};

constexpr const char* k_libarchive_soname = "libarchive.so.13";

Result<LibArchive> load_libarchive() {
    const std::string fix = " (docker-archive:, oci-archive: and docker-daemon: sources read tar archives with it; "
                            "install it: apt-get install libarchive13)";
    void* handle = ::dlopen(k_libarchive_soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = ::dlerror();
        return fail(ErrorKind::internal, std::string("cannot load ") + k_libarchive_soname + ": " +
                                             (why ? why : "not found") + fix);
    }
    LibArchive lib;
#define TW_LIBARCHIVE_RESOLVE(name)                                                                         \
    lib.name = reinterpret_cast<decltype(lib.name)>(::dlsym(handle, #name));                              \
    if (!lib.name)                                                                                          \
        return fail(ErrorKind::internal, std::string(k_libarchive_soname) + " lacks " #name + fix);
    TW_LIBARCHIVE_FUNCTIONS(TW_LIBARCHIVE_RESOLVE)
#undef TW_LIBARCHIVE_RESOLVE
    return lib;  // the handle stays open for the life of the process
}

// The loaded library, once per process; an error when it cannot be loaded.
Result<const LibArchive*> libarchive() {
    static const Result<LibArchive> loaded = load_libarchive();
    if (!loaded)
        return std::unexpected(loaded.error());
    return &*loaded;
}

struct ReadContext {
    const LibArchive* lib = nullptr;
    image::BlobReader* stream = nullptr;
    std::vector<char> buffer = std::vector<char>(k_read_chunk);
    std::optional<Error> error;
};

la_ssize_t read_callback(struct archive* a, void* opaque, const void** data) {
    auto* ctx = static_cast<ReadContext*>(opaque);
    auto n = ctx->stream->read(ctx->buffer.data(), ctx->buffer.size());
    if (!n) {
        ctx->error = n.error();
        ctx->lib->archive_set_error(a, EIO, "%s", n.error().message.c_str());
        return -1;
    }
    *data = ctx->buffer.data();
    return static_cast<la_ssize_t>(*n);
}

struct ArchiveHandle {
    explicit ArchiveHandle(const LibArchive* library) : lib(library), a(library->archive_read_new()) {}
    ~ArchiveHandle() {
        if (a)
            lib->archive_read_free(a);
    }
    ArchiveHandle(const ArchiveHandle&) = delete;
    ArchiveHandle& operator=(const ArchiveHandle&) = delete;
    const LibArchive* lib;
    struct archive* a;
};

struct FileHandle {
    int fd = -1;
    ~FileHandle() {
        if (fd >= 0)
            ::close(fd);
    }
};

Status write_all(int fd, const char* data, std::size_t size, const fs::path& path) {
    while (size > 0) {
        auto n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(ErrorKind::internal, "cannot write the temporary file " + path.string() + ": " +
                                                 std::strerror(errno) + " (TMPDIR needs room for the whole image)");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return {};
}

} // namespace

Result<std::string> normalize_entry_name(std::string_view raw) {
    if (raw.starts_with('/'))
        return fail(ErrorKind::invalid_input, "entry '" + printable(raw) + "' has an absolute path");
    auto parts = split_components(raw);
    for (auto p : parts)
        if (p == "..")
            return fail(ErrorKind::invalid_input, "entry '" + printable(raw) + "' has a '..' component");
    return join_components(parts);
}

Result<std::string> resolve_link_target(std::string_view link_name, std::string_view target) {
    if (target.starts_with('/'))
        return fail(ErrorKind::invalid_input, "link '" + printable(link_name) + "' points to the absolute path '" +
                                                  printable(target) + "'");
    auto parts = split_components(link_name);
    if (!parts.empty())
        parts.pop_back();  // relative to the link's directory
    for (auto p : split_components(target)) {
        if (p == "..") {
            if (parts.empty())
                return fail(ErrorKind::invalid_input, "link '" + printable(link_name) + "' points outside the archive ('" +
                                                          printable(target) + "')");
            parts.pop_back();
        } else {
            parts.push_back(p);
        }
    }
    return join_components(parts);
}

const SpooledEntry* SpooledArchive::find(const std::string& name) const {
    std::string current = name;
    for (int hop = 0; hop <= k_max_link_hops; ++hop) {
        if (auto it = by_name.find(current); it != by_name.end())
            return &entries[it->second];
        auto link = links.find(current);
        if (link == links.end())
            return nullptr;
        current = link->second;
    }
    return nullptr;
}

Result<std::string> SpooledArchive::read_text(const SpooledEntry& entry, std::uint64_t limit,
                                              const std::string& origin) const {
    if (entry.size > limit)
        return fail(ErrorKind::invalid_input, origin + ": " + entry.name + " has " + std::to_string(entry.size) +
                                                  " bytes, more than the " + std::to_string(limit) + " allowed");
    FileHandle f;
    f.fd = ::open(entry.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0)
        return fail(ErrorKind::internal, "cannot read " + entry.file.string() + ": " + std::strerror(errno));
    std::string out(entry.size, '\0');
    std::size_t done = 0;
    while (done < out.size()) {
        auto n = ::read(f.fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(ErrorKind::internal, "cannot read " + entry.file.string() + ": short read");
        done += static_cast<std::size_t>(n);
    }
    return out;
}

Result<SpooledArchive> spool_tar(image::BlobReader& stream, const std::string& origin, const ArchiveLimits& limits,
                                 const SpooledFileHook& on_file) {
    auto spool = SpoolDir::create();
    if (!spool)
        return std::unexpected(spool.error());
    SpooledArchive out;
    out.spool = std::move(*spool);

    auto loaded = libarchive();
    if (!loaded)
        return std::unexpected(loaded.error());
    const LibArchive* lib = *loaded;
    ArchiveHandle handle(lib);
    auto* a = handle.a;
    if (!a)
        return fail(ErrorKind::internal, "libarchive: out of memory");
    // Only in-library decompressors: support_filter_all could run external programs (lzop, lrzip, ...).
    if (lib->archive_read_support_filter_gzip(a) != ARCHIVE_OK || lib->archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
        lib->archive_read_support_format_tar(a) != ARCHIVE_OK)
        return fail(ErrorKind::internal, std::string("libarchive lacks gzip, zstd or tar support: ") +
                                             (lib->archive_error_string(a) ? lib->archive_error_string(a) : ""));
    ReadContext ctx;
    ctx.lib = lib;
    ctx.stream = &stream;
    auto corrupt = [&](const std::string& what) -> Error {
        if (ctx.error)
            return ctx.error->with_context(origin);
        if (cancel::should_stop())
            return cancel::cancelled_error("reading " + origin);
        const char* text = lib->archive_error_string(a);
        return Error(ErrorKind::invalid_input, origin + ": " + what + ": " + (text ? text : "unreadable archive") +
                                                   " (a truncated or corrupt archive: nothing was pushed)");
    };
    if (lib->archive_read_open(a, &ctx, nullptr, &read_callback, nullptr) != ARCHIVE_OK)
        return fail(corrupt("not a tar archive"));

    std::vector<char> buffer(k_read_chunk);
    std::uint64_t total = 0;
    std::uint64_t count = 0;
    struct archive_entry* entry = nullptr;
    while (true) {
        if (cancel::should_stop())
            return fail(cancel::cancelled_error("reading " + origin));
        int rc = lib->archive_read_next_header(a, &entry);
        if (rc == ARCHIVE_EOF)
            break;
        if (rc < ARCHIVE_WARN)
            return fail(corrupt(count == 0 ? "not a readable tar archive" : "after entry " + std::to_string(count)));
        if (++count > limits.max_entries)
            return fail(ErrorKind::invalid_input, origin + ": more than " + std::to_string(limits.max_entries) +
                                                      " entries; refusing the archive");
        const char* raw_name = lib->archive_entry_pathname(entry);
        if (!raw_name)
            return fail(ErrorKind::invalid_input, origin + ": entry " + std::to_string(count) + " has no name");
        std::string_view raw(raw_name);
        if (raw.size() > limits.max_path_length)
            return fail(ErrorKind::invalid_input, origin + ": entry " + std::to_string(count) + " has a name longer than " +
                                                      std::to_string(limits.max_path_length) + " bytes");
        auto name = normalize_entry_name(raw);
        if (!name)
            return fail(name.error().with_context(origin + ": refusing the archive"));

        if (const char* hard = lib->archive_entry_hardlink(entry)) {
            std::string_view target(hard);
            if (target.size() > limits.max_path_length)
                return fail(ErrorKind::invalid_input, origin + ": hard link '" + printable(raw) + "' has a target longer than " +
                                                          std::to_string(limits.max_path_length) + " bytes");
            auto resolved = normalize_entry_name(target);
            if (!resolved || resolved->empty())
                return fail(ErrorKind::invalid_input, origin + ": refusing the archive: hard link '" + printable(raw) +
                                                          "' points outside the archive ('" + printable(target) + "')");
            if (out.by_name.contains(*name) || out.links.contains(*name))
                return fail(ErrorKind::invalid_input, origin + ": entry '" + printable(*name) + "' appears twice");
            out.links[*name] = *resolved;
            continue;
        }
        auto type = lib->archive_entry_filetype(entry);
        if (type == AE_IFDIR)
            continue;  // nothing is created for directories: files are named by ordinal
        if (type == AE_IFLNK) {
            const char* target = lib->archive_entry_symlink(entry);
            std::string_view t(target ? target : "");
            if (t.size() > limits.max_path_length)
                return fail(ErrorKind::invalid_input, origin + ": symlink '" + printable(raw) + "' has a target longer than " +
                                                          std::to_string(limits.max_path_length) + " bytes");
            auto resolved = resolve_link_target(*name, t);
            if (!resolved)
                return fail(resolved.error().with_context(origin + ": refusing the archive"));
            if (out.by_name.contains(*name) || out.links.contains(*name))
                return fail(ErrorKind::invalid_input, origin + ": entry '" + printable(*name) + "' appears twice");
            out.links[*name] = *resolved;
            continue;
        }
        if (type != AE_IFREG)
            return fail(ErrorKind::invalid_input, origin + ": refusing the archive: entry '" + printable(raw) +
                                                      "' is a device, FIFO or socket; an image archive holds only files and directories");
        if (lib->archive_entry_sparse_count(entry) > 0)
            return fail(ErrorKind::invalid_input, origin + ": refusing the archive: entry '" + printable(raw) + "' is a sparse file");
        if (name->empty())
            return fail(ErrorKind::invalid_input, origin + ": refusing the archive: a file entry names the archive root");
        if (out.by_name.contains(*name) || out.links.contains(*name))
            return fail(ErrorKind::invalid_input, origin + ": refusing the archive: entry '" + printable(*name) + "' appears twice");
        auto declared = lib->archive_entry_size_is_set(entry) ? lib->archive_entry_size(entry) : 0;
        if (declared < 0 || static_cast<std::uint64_t>(declared) > limits.max_entry_bytes)
            return fail(ErrorKind::invalid_input, origin + ": entry '" + printable(*name) + "' is larger than " +
                                                      std::to_string(limits.max_entry_bytes >> 30) + " GiB; refusing the archive");
        if (total + static_cast<std::uint64_t>(declared) > limits.max_total_bytes)
            return fail(ErrorKind::invalid_input, origin + ": the archive holds more than " +
                                                      std::to_string(limits.max_total_bytes >> 30) + " GiB; refusing it");

        SpooledEntry spooled;
        spooled.name = *name;
        spooled.file = out.spool->new_file("e");
        FileHandle f;
        f.fd = ::open(spooled.file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f.fd < 0)
            return fail(ErrorKind::internal, "cannot create " + spooled.file.string() + ": " + std::strerror(errno));
        Sha256 hash;
        std::string head;
        while (true) {
            if (cancel::should_stop())
                return fail(cancel::cancelled_error("reading " + origin));
            auto n = lib->archive_read_data(a, buffer.data(), buffer.size());
            if (n < 0)
                return fail(corrupt("entry '" + printable(*name) + "'"));
            if (n == 0)
                break;
            auto got = static_cast<std::size_t>(n);
            spooled.size += got;
            if (spooled.size > static_cast<std::uint64_t>(declared))
                return fail(ErrorKind::invalid_input, origin + ": entry '" + printable(*name) + "' is longer than its header says");
            if (head.size() < k_sniff_bytes)
                head.append(buffer.data(), std::min(got, k_sniff_bytes - head.size()));
            hash.update(buffer.data(), got);
            TW_TRY(write_all(f.fd, buffer.data(), got, spooled.file));
        }
        if (spooled.size != static_cast<std::uint64_t>(declared))
            return fail(corrupt("entry '" + printable(*name) + "' ends early"));
        total += spooled.size;
        spooled.digest = hash.finish();
        spooled.kind = sniff_content(head);
        // A blob stored under its digest must have that digest: check now, before anything is pushed.
        if (name->starts_with("blobs/sha256/")) {
            auto expected = "sha256:" + name->substr(13);
            if (spooled.digest.str() != expected)
                return fail(ErrorKind::invalid_input, origin + ": " + printable(*name) + " hashes to " + spooled.digest.str() +
                                                          ": the archive is corrupt; nothing was pushed");
        }
        out.by_name[*name] = out.entries.size();
        out.entries.push_back(std::move(spooled));
        if (on_file)
            on_file(out.entries.back(), out.spool);
    }
    // The rest of the stream (tar padding after the end-of-archive blocks): read it so a producer writing
    // into a pipe (docker save | tagwarden) does not fail on a closed pipe.
    std::uint64_t trailing = 0;
    while (trailing < k_max_trailing_bytes) {
        auto n = stream.read(buffer.data(), buffer.size());
        if (!n || *n == 0)
            break;
        trailing += *n;
    }
    for (const auto& [name, target] : out.links)
        if (!out.find(name) && (out.links.contains(target) || out.by_name.contains(target)))
            return fail(ErrorKind::invalid_input, origin + ": refusing the archive: link '" + printable(name) + "' is part of a loop");
    return out;
}

} // namespace tagwarden::source
