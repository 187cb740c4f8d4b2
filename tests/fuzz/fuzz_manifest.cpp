// libFuzzer target: image::parse_manifest on arbitrary bytes. The first byte picks the declared media type
// (each OCI and Docker type, or none); the rest is the document.
#include <tagwarden/image/manifest.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {
constexpr std::array<std::string_view, 5> k_declared = {
    tagwarden::image::media_type::oci_manifest, tagwarden::image::media_type::oci_index,
    tagwarden::image::media_type::docker_manifest, tagwarden::image::media_type::docker_manifest_list, ""};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    std::string_view declared = k_declared[data[0] % k_declared.size()];
    std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
    auto manifest = tagwarden::image::parse_manifest(bytes, declared);
    if (!manifest)
        return 0;
    if (manifest->image) {
        for (const auto& layer : manifest->image->layers)
            (void)tagwarden::image::descriptor_to_json(layer);
        (void)tagwarden::image::descriptor_to_json(manifest->image->config);
    }
    if (manifest->index)
        for (const auto& child : manifest->index->manifests)
            if (child.platform)
                (void)child.platform->str();
    return 0;
}
