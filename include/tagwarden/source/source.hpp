#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>

#include <memory>
#include <string_view>

namespace tagwarden::source {

// Opens an image source from its transport spelling (skopeo's): "oci:DIR[:REF]".
// Returns Error{invalid_input} for an unknown transport or an unreadable source.
Result<std::unique_ptr<image::ImageSource>> open_source(std::string_view spec);

// The OCI image layout transport: oci-layout, index.json and blobs/<alg>/<hex> under `dir`.
// `ref` selects the index.json entry whose org.opencontainers.image.ref.name equals it.
Result<std::unique_ptr<image::ImageSource>> open_oci_layout(std::string_view dir, std::string_view ref);

} // namespace tagwarden::source
