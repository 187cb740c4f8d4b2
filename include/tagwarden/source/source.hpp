#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/source/compress.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace tagwarden::source {

struct SourceOptions {
    std::string source_tag;                       // --source-tag NAME:TAG, selects an image in a multi-image archive
    Compression compression = Compression::gzip;  // --compress
    int compression_level = 0;                    // --compress-level; 0: the algorithm's default
    int jobs = 4;                                 // layers compressed at once
};

// Opens an image source from its transport spelling (skopeo's): "oci:DIR[:REF]", "oci-archive:FILE[:REF]",
// "docker-archive:FILE[:NAME:TAG]", "docker-archive:-" (standard input), "docker-daemon:NAME[:TAG]".
// Returns Error{invalid_input} for an unknown transport or an unreadable, malformed or unsafe source.
// Archives are read completely (and their layers compressed) before this returns: nothing downstream
// starts writing to a registry before the whole source has been validated.
Result<std::unique_ptr<image::ImageSource>> open_source(std::string_view spec, const SourceOptions& options = {});

// The OCI image layout transport: oci-layout, index.json and blobs/<alg>/<hex> under `dir`.
// `ref` selects the index.json entry whose org.opencontainers.image.ref.name equals it.
Result<std::unique_ptr<image::ImageSource>> open_oci_layout(std::string_view dir, std::string_view ref);

// Reads a docker-archive (classic docker save, or OCI layout in tar) from a byte stream, once, in order.
// `origin` is used in describe() and errors (e.g. "docker-archive:-" or "docker-daemon:app:1").
// Files are spooled to a private directory under $TMPDIR (removed when the source is destroyed);
// uncompressed layers are compressed with options.compression on options.jobs threads.
Result<std::unique_ptr<image::ImageSource>> open_docker_archive_stream(std::unique_ptr<image::BlobReader> stream,
                                                                        std::string origin, const SourceOptions& options);

// The docker-daemon: transport: `name` (NAME[:TAG], default tag latest, or an image ID sha256:<hex>) exported
// by the Docker Engine API at DOCKER_HOST (default unix:///var/run/docker.sock; tcp:// with DOCKER_TLS_VERIFY
// and DOCKER_CERT_PATH) and streamed into the docker-archive reader, which selects it by its tag.
// No daemon and errors mid-stream are Error{registry}; a socket the user may not open Error{auth}; no
// such image or an unusable DOCKER_HOST Error{invalid_input}.
Result<std::unique_ptr<image::ImageSource>> open_docker_daemon(std::string_view name, const SourceOptions& options);

// Reads an OCI image layout in a tar (plain or compressed) from a byte stream, once, in order.
// `ref` selects the index.json entry by org.opencontainers.image.ref.name.
Result<std::unique_ptr<image::ImageSource>> open_oci_archive_stream(std::unique_ptr<image::BlobReader> stream,
                                                                     std::string origin, std::string ref);

// What a source did to the layers, for reports: the transport ("oci", "docker-archive", ...) and the
// compression it applied ("gzip", "zstd", "none"), or "as-is" when it pushes the layers as stored.
struct SourceSummary {
    std::string transport;
    std::string compression;
    int compression_level = 0;  // the level layers were compressed at; 0 when none were
};
SourceSummary summarize_source(const image::ImageSource& source, std::string_view spec);

} // namespace tagwarden::source
