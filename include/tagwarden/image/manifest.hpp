#pragma once

#include <tagwarden/core/digest.hpp>
#include <tagwarden/core/error.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::image {

namespace media_type {
inline constexpr std::string_view oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view docker_manifest_list = "application/vnd.docker.distribution.manifest.list.v2+json";
} // namespace media_type

bool is_index_media_type(std::string_view media_type);
bool is_manifest_media_type(std::string_view media_type);
// The Accept header value listing every manifest type tagwarden reads.
std::string manifest_accept_header();

struct Platform {
    std::string os;
    std::string architecture;
    std::string variant;
    [[nodiscard]] std::string str() const;
};

// An OCI content descriptor.
struct Descriptor {
    std::string media_type;
    Digest digest;
    std::uint64_t size = 0;
    std::optional<Platform> platform;
    std::string artifact_type;
    std::map<std::string, std::string> annotations;
};

// An image manifest (OCI or Docker v2 schema 2).
struct ImageManifest {
    std::string media_type;
    Descriptor config;
    std::vector<Descriptor> layers;
    std::optional<Descriptor> subject;
};

// An image index (OCI) or manifest list (Docker).
struct ImageIndex {
    std::string media_type;
    std::vector<Descriptor> manifests;
    std::optional<Descriptor> subject;
};

// A manifest as bytes plus what was parsed from them. The bytes are authoritative (their digest is the
// manifest's identity); the parsed view is for walking the graph.
struct Manifest {
    std::string bytes;
    Digest digest;
    std::string media_type;
    std::optional<ImageManifest> image;  // set for image manifests
    std::optional<ImageIndex> index;     // set for indexes

    [[nodiscard]] bool is_index() const { return index.has_value(); }
};

// Parses manifest bytes. `declared_media_type` is what the descriptor or Content-Type said; the document's
// own mediaType must agree with it when both are present. Returns Error{invalid_input} naming the field.
Result<Manifest> parse_manifest(std::string bytes, std::string_view declared_media_type);

// Parses one descriptor object; `where` names it in errors ("manifests[1]").
Result<Descriptor> parse_descriptor(const nlohmann::json& object, std::string_view where);
nlohmann::json descriptor_to_json(const Descriptor& d);

} // namespace tagwarden::image
