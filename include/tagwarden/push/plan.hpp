#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/image/manifest.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace tagwarden::push {

// What a push will do, computed from the source alone (no network): every blob once, manifests in
// dependency order (index children before the index), then the tags.
struct PushPlan {
    std::vector<image::Descriptor> blobs;      // unique by digest, in first-seen order
    std::vector<image::Manifest> children;     // manifests referenced by an index, deepest first
    image::Manifest root;
    std::vector<std::string> tags;             // validated, unique, in the order given
    [[nodiscard]] std::uint64_t blob_bytes() const;
};

// Reads the image graph from `source`, checks that every blob is present with its declared size and that
// every tag is valid. Returns Error{invalid_input} naming the first problem; nothing is sent anywhere.
// With check_blobs false the blobs are listed but not checked (a source whose manifests guarantee them,
// such as the same registry repository).
Result<PushPlan> plan_push(image::ImageSource& source, const std::vector<std::string>& tags, bool check_blobs = true);

} // namespace tagwarden::push
