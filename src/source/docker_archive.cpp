#include "archive.hpp"

#include <tagwarden/core/cancel.hpp>
#include <tagwarden/core/log.hpp>
#include <tagwarden/core/parallel.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unistd.h>

namespace tagwarden::source {

namespace fs = std::filesystem;
using image::Descriptor;
using image::Manifest;
using nlohmann::json;

namespace {

namespace media {
constexpr std::string_view docker_config = "application/vnd.docker.container.image.v1+json";
constexpr std::string_view docker_layer_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr std::string_view oci_config = "application/vnd.oci.image.config.v1+json";
constexpr std::string_view oci_layer_tar = "application/vnd.oci.image.layer.v1.tar";
constexpr std::string_view oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr std::string_view oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
} // namespace media

constexpr std::size_t k_copy_chunk = 256 * 1024;

struct SpooledBlob {
    fs::path file;
    std::uint64_t size = 0;
};

class FileReader final : public image::BlobReader {
public:
    explicit FileReader(int fd) : m_fd(fd) {}
    ~FileReader() override { ::close(m_fd); }
    FileReader(const FileReader&) = delete;
    FileReader& operator=(const FileReader&) = delete;
    Result<std::size_t> read(char* buffer, std::size_t size) override {
        while (true) {
            auto n = ::read(m_fd, buffer, size);
            if (n >= 0)
                return static_cast<std::size_t>(n);
            if (errno != EINTR)
                return fail(ErrorKind::internal, std::string("read error: ") + std::strerror(errno));
        }
    }

private:
    int m_fd;
};

// An image whose manifest tagwarden wrote and whose blobs are files in the spool directory.
class SpooledImageSource final : public ArchiveSource {
public:
    SpooledImageSource(std::shared_ptr<SpoolDir> spool, std::string origin, Manifest root,
                       std::map<Digest, SpooledBlob> blobs, SourceSummary summary)
        : m_spool(std::move(spool)), m_origin(std::move(origin)), m_root(std::move(root)), m_blobs(std::move(blobs)),
          m_summary(std::move(summary)) {}

    [[nodiscard]] std::string describe() const override { return m_origin; }
    [[nodiscard]] SourceSummary summary() const override { return m_summary; }
    Result<Manifest> root() override { return m_root; }
    Result<Manifest> manifest(const Descriptor& d) override {
        return fail(ErrorKind::invalid_input, m_origin + " holds no manifest " + d.digest.str());
    }
    Status check_blob(const Descriptor& d) override {
        auto it = m_blobs.find(d.digest);
        if (it == m_blobs.end())
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " is missing from " + m_origin);
        if (it->second.size != d.size)
            return fail(ErrorKind::invalid_input, "blob " + d.digest.str() + " in " + m_origin + " has " +
                                                      std::to_string(it->second.size) + " bytes, not " + std::to_string(d.size));
        return {};
    }
    Result<std::unique_ptr<image::BlobReader>> open_blob(const Descriptor& d) override {
        TW_TRY(check_blob(d));
        int fd = ::open(m_blobs.at(d.digest).file.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return fail(ErrorKind::internal, "cannot open a spooled blob of " + m_origin + ": " + std::strerror(errno));
        return std::make_unique<image::VerifyingReader>(std::make_unique<FileReader>(fd), d, m_origin);
    }

private:
    std::shared_ptr<SpoolDir> m_spool;
    std::string m_origin;
    Manifest m_root;
    std::map<Digest, SpooledBlob> m_blobs;
    SourceSummary m_summary;
};

// "docker.io/library/app:1", "localhost/app:1" and "app:1" name the same image; no tag means latest.
std::string familiar_name(std::string_view name) {
    std::string s(name);
    for (std::string_view prefix : {"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/", "localhost/"})
        if (s.starts_with(prefix)) {
            s = s.substr(prefix.size());
            break;
        }
    auto slash = s.rfind('/');
    auto colon = s.rfind(':');
    if (s.find('@') == std::string::npos && (colon == std::string::npos || (slash != std::string::npos && colon < slash)))
        s += ":latest";
    return s;
}

struct ArchiveImage {
    std::string config;
    std::vector<std::string> repo_tags;
    std::vector<std::string> layers;
};

Result<std::vector<ArchiveImage>> parse_docker_manifest(const std::string& text, const std::string& origin) {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, origin + ": manifest.json is not valid JSON: " + e.what());
    }
    if (!doc.is_array() || doc.empty())
        return fail(ErrorKind::invalid_input, origin + ": manifest.json must be a non-empty array of images");
    std::vector<ArchiveImage> images;
    for (std::size_t i = 0; i < doc.size(); ++i) {
        const auto& item = doc[i];
        auto where = origin + ": manifest.json[" + std::to_string(i) + "]";
        if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string())
            return fail(ErrorKind::invalid_input, where + " has no Config file name");
        ArchiveImage img;
        img.config = item["Config"].get<std::string>();
        if (item.contains("RepoTags") && !item["RepoTags"].is_null()) {
            if (!item["RepoTags"].is_array())
                return fail(ErrorKind::invalid_input, where + ": RepoTags must be an array");
            for (const auto& t : item["RepoTags"]) {
                if (!t.is_string())
                    return fail(ErrorKind::invalid_input, where + ": RepoTags must hold strings");
                img.repo_tags.push_back(t.get<std::string>());
            }
        }
        if (!item.contains("Layers") || !item["Layers"].is_array())
            return fail(ErrorKind::invalid_input, where + " has no Layers array");
        for (const auto& l : item["Layers"]) {
            if (!l.is_string())
                return fail(ErrorKind::invalid_input, where + ": Layers must hold file names");
            img.layers.push_back(l.get<std::string>());
        }
        images.push_back(std::move(img));
    }
    return images;
}

std::string list_images(const std::vector<ArchiveImage>& images) {
    std::string out;
    for (const auto& img : images) {
        std::string names;
        for (const auto& t : img.repo_tags)
            names += (names.empty() ? "" : ", ") + t;
        out += (out.empty() ? "" : "; ") + (names.empty() ? "an untagged image (" + img.config + ")" : names);
    }
    return out;
}

Result<const ArchiveImage*> choose_image(const std::vector<ArchiveImage>& images, const std::string& source_tag,
                                         const std::string& origin) {
    if (source_tag.empty()) {
        if (images.size() == 1)
            return &images.front();
        return fail(ErrorKind::invalid_input, origin + " holds " + std::to_string(images.size()) +
                                                  " images; choose one with --source-tag NAME:TAG (it holds: " +
                                                  list_images(images) + ")");
    }
    auto wanted = familiar_name(source_tag);
    for (const auto& img : images)
        for (const auto& t : img.repo_tags)
            if (t == source_tag || familiar_name(t) == wanted)
                return &img;
    return fail(ErrorKind::invalid_input, origin + " holds no image tagged '" + source_tag + "'; it holds: " + list_images(images));
}

struct LayerPlan {
    const SpooledEntry* entry = nullptr;
    Descriptor descriptor;  // filled once compressed (or as stored)
    fs::path file;
    bool compress = false;
};

struct Compressed {
    fs::path file;
    Descriptor descriptor;  // digest and size of the compressed bytes
};

// Compresses the spooled file `entry` into `out_path`, hashing the output as it is written.
Result<Compressed> compress_to(const SpooledEntry& entry, Compression compression, int level,
                               const fs::path& out_path, const std::string& origin) {
    int in = ::open(entry.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(ErrorKind::internal, "cannot read " + entry.file.string() + ": " + std::strerror(errno));
    FileReader reader(in);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        return fail(ErrorKind::internal, "cannot create " + out_path.string() + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{out};
    Sha256 hash;
    std::uint64_t written = 0;
    auto compressor = make_compressor(compression, [&](const char* data, std::size_t size) -> Status {
        hash.update(data, size);
        written += size;
        while (size > 0) {
            auto n = ::write(out, data, size);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return fail(ErrorKind::internal, "cannot write " + out_path.string() + ": " + std::strerror(errno) +
                                                     " (TMPDIR needs room for the compressed image)");
            }
            data += n;
            size -= static_cast<std::size_t>(n);
        }
        return {};
    }, level);
    std::vector<char> buffer(k_copy_chunk);
    std::uint64_t seen = 0;
    while (true) {
        if (cancel::should_stop())
            return fail(cancel::cancelled_error("compressing the layers of " + origin));
        auto n = reader.read(buffer.data(), buffer.size());
        if (!n)
            return std::unexpected(n.error());
        if (*n == 0)
            break;
        seen += *n;
        TW_TRY(compressor->write(buffer.data(), *n));
    }
    TW_TRY(compressor->finish());
    if (seen != entry.size)
        return fail(ErrorKind::internal, "the spooled layer " + entry.file.string() + " changed size");
    Compressed c;
    c.file = out_path;
    c.descriptor.digest = hash.finish();
    c.descriptor.size = written;
    return c;
}

// Compresses uncompressed tars while the archive is still being read: docker save writes manifest.json
// last, so which files are layers is known only at the end, but only layers are tars, and a stream (a
// pipe, the daemon) leaves the CPU idle while it waits. Each spooled tar is handed to a worker as soon as
// it has passed; wait() returns the results by spooled file. The workers are joined before the spool
// directory can go (the destructor waits too).
class LayerCompressor {
public:
    LayerCompressor(Compression compression, int level, int threads, std::string origin)
        : m_compression(compression), m_level(level), m_origin(std::move(origin)) {
        for (int i = 0; i < threads; ++i)
            m_workers.emplace_back([this] { work(); });
    }
    ~LayerCompressor() { stop(); }
    LayerCompressor(const LayerCompressor&) = delete;
    LayerCompressor& operator=(const LayerCompressor&) = delete;

    void add(const SpooledEntry& entry, const std::shared_ptr<SpoolDir>& spool) {
        std::lock_guard lock(m_mutex);
        m_queue.push_back(Job{entry, spool->new_file("c"), spool});
        m_changed.notify_one();
    }

    // Every job finished; the results by the spooled file they came from.
    std::map<fs::path, Result<Compressed>> wait() {
        stop();
        return std::move(m_results);
    }

private:
    struct Job {
        SpooledEntry entry;
        fs::path out;
        std::shared_ptr<SpoolDir> spool;  // the directory stays until the job is done with it
    };

    void work() {
        for (;;) {
            Job job;
            {
                std::unique_lock lock(m_mutex);
                m_changed.wait(lock, [&] { return m_closing || !m_queue.empty(); });
                if (m_queue.empty())
                    return;
                job = std::move(m_queue.front());
                m_queue.pop_front();
            }
            auto result = compress_to(job.entry, m_compression, m_level, job.out, m_origin);
            std::lock_guard lock(m_mutex);
            m_results.emplace(job.entry.file, std::move(result));
        }
    }

    void stop() {
        {
            std::lock_guard lock(m_mutex);
            m_closing = true;
        }
        m_changed.notify_all();
        for (auto& w : m_workers)
            if (w.joinable())
                w.join();
    }

    Compression m_compression;
    int m_level;
    std::string m_origin;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::deque<Job> m_queue;
    bool m_closing = false;
    std::map<fs::path, Result<Compressed>> m_results;
    std::vector<std::thread> m_workers;
};

int compression_threads(const SourceOptions& options) {
    // Compression is CPU-bound: more threads than cores only add memory (a zstd context is a few MiB).
    return std::max(1, std::min(options.jobs, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
}

json descriptor_json(std::string_view media_type, const Digest& digest, std::uint64_t size) {
    json d = json::object();
    d["mediaType"] = media_type;
    d["size"] = size;
    d["digest"] = digest.str();
    return d;
}

Result<std::unique_ptr<image::ImageSource>> build_from_docker_manifest(SpooledArchive archive, const std::string& origin,
                                                                        const SourceOptions& options,
                                                                        const ArchiveLimits& limits,
                                                                        const std::map<fs::path, Result<Compressed>>& early) {
    const auto* manifest_entry = archive.find("manifest.json");
    auto text = archive.read_text(*manifest_entry, limits.max_metadata_bytes, origin);
    if (!text)
        return std::unexpected(text.error());
    auto images = parse_docker_manifest(*text, origin);
    if (!images)
        return std::unexpected(images.error());
    auto chosen = choose_image(*images, options.source_tag, origin);
    if (!chosen)
        return std::unexpected(chosen.error());
    const ArchiveImage& img = **chosen;

    auto entry_for = [&](const std::string& raw, const std::string& what) -> Result<const SpooledEntry*> {
        auto name = normalize_entry_name(raw);
        if (!name)
            return fail(name.error().with_context(origin + ": manifest.json names an unsafe " + what));
        const auto* e = archive.find(*name);
        if (!e)
            return fail(ErrorKind::invalid_input, origin + ": manifest.json names the " + what + " '" + raw +
                                                      "', which the archive does not hold (an incomplete or corrupt archive)");
        return e;
    };

    auto config_entry = entry_for(img.config, "config");
    if (!config_entry)
        return std::unexpected(config_entry.error());
    auto config_text = archive.read_text(**config_entry, limits.max_metadata_bytes, origin);
    if (!config_text)
        return std::unexpected(config_text.error());
    std::vector<std::string> diff_ids;
    try {
        auto config = json::parse(*config_text);
        if (!config.is_object() || !config.contains("rootfs") || !config["rootfs"].is_object() ||
            !config["rootfs"].contains("diff_ids") || !config["rootfs"]["diff_ids"].is_array())
            return fail(ErrorKind::invalid_input, origin + ": the config " + img.config + " has no rootfs.diff_ids");
        for (const auto& d : config["rootfs"]["diff_ids"]) {
            if (!d.is_string())
                return fail(ErrorKind::invalid_input, origin + ": the config " + img.config + " has a diff_id that is not a string");
            diff_ids.push_back(d.get<std::string>());
        }
    } catch (const json::exception& e) {
        return fail(ErrorKind::invalid_input, origin + ": the config " + img.config + " is not valid JSON: " + e.what());
    }
    if (img.layers.size() > limits.max_layers)
        return fail(ErrorKind::invalid_input, origin + ": the image has more than " + std::to_string(limits.max_layers) + " layers");
    if (diff_ids.size() != img.layers.size())
        return fail(ErrorKind::invalid_input, origin + ": manifest.json lists " + std::to_string(img.layers.size()) +
                                                  " layers but the config has " + std::to_string(diff_ids.size()) + " diff_ids");

    // One plan per distinct layer file; an image may list the same layer twice.
    std::vector<LayerPlan> plans;
    std::map<const SpooledEntry*, std::size_t> plan_of;
    std::vector<std::size_t> layer_plan;
    for (std::size_t i = 0; i < img.layers.size(); ++i) {
        auto e = entry_for(img.layers[i], "layer");
        if (!e)
            return std::unexpected(e.error());
        const SpooledEntry* entry = *e;
        if (entry->kind != ContentKind::gzip && entry->kind != ContentKind::zstd && entry->digest.str() != diff_ids[i])
            return fail(ErrorKind::invalid_input, origin + ": layer " + img.layers[i] + " hashes to " + entry->digest.str() +
                                                      " but the config's diff_id " + std::to_string(i) + " is " + diff_ids[i] +
                                                      ": the archive is corrupt; nothing was pushed");
        if (auto it = plan_of.find(entry); it != plan_of.end()) {
            layer_plan.push_back(it->second);
            continue;
        }
        LayerPlan plan;
        plan.entry = entry;
        plan.file = entry->file;
        plan.descriptor.size = entry->size;
        plan.descriptor.digest = entry->digest;
        plan.compress = entry->kind != ContentKind::gzip && entry->kind != ContentKind::zstd &&
                        options.compression != Compression::none;
        plan_of[entry] = plans.size();
        layer_plan.push_back(plans.size());
        plans.push_back(std::move(plan));
    }

    std::vector<std::size_t> to_compress;
    for (std::size_t i = 0; i < plans.size(); ++i)
        if (plans[i].compress)
            to_compress.push_back(i);
    // Most layers were compressed while the archive was read; any other (a layer that did not look like
    // a tar then) is compressed now.
    std::vector<std::size_t> now;
    for (auto i : to_compress) {
        auto& plan = plans[i];
        auto it = early.find(plan.entry->file);
        if (it == early.end()) {
            now.push_back(i);
            continue;
        }
        if (!it->second)
            return std::unexpected(it->second.error());
        plan.file = it->second->file;
        plan.descriptor = it->second->descriptor;
    }
    if (!now.empty())
        log::info("compressing " + std::to_string(now.size()) + " layer(s) of " + origin + " with " +
                  std::string(to_string(options.compression)) + " level " +
                  std::to_string(effective_compression_level(options.compression, options.compression_level)));
    std::vector<fs::path> outputs;
    for (std::size_t i = 0; i < now.size(); ++i)
        outputs.push_back(archive.spool->new_file("c"));
    TW_TRY(parallel_for(now.size(), compression_threads(options), [&](std::size_t k) -> Status {
        auto& plan = plans[now[k]];
        auto c = compress_to(*plan.entry, options.compression, options.compression_level, outputs[k], origin);
        if (!c)
            return std::unexpected(c.error());
        plan.file = c->file;
        plan.descriptor = c->descriptor;
        return {};
    }));
    // The uncompressed copies are no longer needed: free TMPDIR early.
    for (auto i : to_compress) {
        std::error_code ec;
        fs::remove(plans[i].entry->file, ec);
    }

    // Docker schema 2 (what docker push writes) when every layer is gzip; otherwise OCI, which has the
    // zstd and uncompressed layer types Docker's schema lacks.
    bool all_gzip = true;
    auto layer_kind = [&](const LayerPlan& p) {
        if (p.compress)
            return options.compression == Compression::gzip ? ContentKind::gzip : ContentKind::zstd;
        return p.entry->kind == ContentKind::gzip || p.entry->kind == ContentKind::zstd ? p.entry->kind : ContentKind::tar;
    };
    for (const auto& p : plans)
        if (layer_kind(p) != ContentKind::gzip)
            all_gzip = false;
    bool docker = all_gzip;

    json doc = json::object();
    doc["schemaVersion"] = 2;
    doc["mediaType"] = docker ? image::media_type::docker_manifest : image::media_type::oci_manifest;
    auto config_digest = (*config_entry)->digest;
    doc["config"] = descriptor_json(docker ? media::docker_config : media::oci_config, config_digest, (*config_entry)->size);
    doc["layers"] = json::array();
    std::map<Digest, SpooledBlob> blobs;
    blobs[config_digest] = SpooledBlob{(*config_entry)->file, (*config_entry)->size};
    for (auto index : layer_plan) {
        const auto& p = plans[index];
        auto kind = layer_kind(p);
        std::string_view type = docker                      ? media::docker_layer_gzip
                                : kind == ContentKind::gzip ? media::oci_layer_gzip
                                : kind == ContentKind::zstd ? media::oci_layer_zstd
                                                            : media::oci_layer_tar;
        doc["layers"].push_back(descriptor_json(type, p.descriptor.digest, p.descriptor.size));
        blobs[p.descriptor.digest] = SpooledBlob{p.file, p.descriptor.size};
    }
    // nlohmann's object keys are sorted, so the same image always serializes to the same bytes.
    auto bytes = doc.dump();
    auto media_type = doc["mediaType"].get<std::string>();
    auto root = image::parse_manifest(std::move(bytes), media_type);
    if (!root)
        return std::unexpected(root.error().with_context(origin));

    SourceSummary summary;
    summary.transport = origin.substr(0, origin.find(':'));
    summary.compression = to_compress.empty() ? (options.compression == Compression::none ? "none" : "as-is")
                                              : std::string(to_string(options.compression));
    if (!to_compress.empty())
        summary.compression_level = effective_compression_level(options.compression, options.compression_level);
    log::debug(origin + ": image " + config_digest.str() + " (" + std::to_string(img.layers.size()) + " layers), manifest " +
               root->digest.str());
    return std::make_unique<SpooledImageSource>(archive.spool, origin, std::move(*root), std::move(blobs), std::move(summary));
}

} // namespace

Result<std::unique_ptr<image::ImageSource>> open_docker_archive_stream(std::unique_ptr<image::BlobReader> stream,
                                                                        std::string origin, const SourceOptions& options) {
    ArchiveLimits limits;
    std::optional<LayerCompressor> compressor;
    SpooledFileHook hook;
    if (options.compression != Compression::none) {
        compressor.emplace(options.compression, options.compression_level, compression_threads(options), origin);
        hook = [&](const SpooledEntry& entry, const std::shared_ptr<SpoolDir>& spool) {
            if (entry.kind == ContentKind::tar)
                compressor->add(entry, spool);
        };
    }
    auto archive = spool_tar(*stream, origin, limits, hook);
    // Joined on every path, before the spool directory may go.
    auto early = compressor ? compressor->wait() : std::map<fs::path, Result<Compressed>>{};
    if (!archive)
        return std::unexpected(archive.error());
    if (archive->find("manifest.json"))
        return build_from_docker_manifest(std::move(*archive), origin, options, limits, early);
    if (archive->find("index.json"))
        return open_spooled_oci_layout(std::move(*archive), origin, options.source_tag,
                                       origin.substr(0, origin.find(':')));
    return fail(ErrorKind::invalid_input, origin + ": no manifest.json (docker save) or index.json (OCI layout) in the archive; "
                                                   "is it an image archive? (docker save IMAGE -o FILE writes one)");
}

} // namespace tagwarden::source
