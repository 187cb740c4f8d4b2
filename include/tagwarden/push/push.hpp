#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/registry/client.hpp>

#include <nlohmann/json_fwd.hpp>

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
Result<PushPlan> plan_push(image::ImageSource& source, const std::vector<std::string>& tags);

struct BlobStats {
    int uploaded = 0, existing = 0, mounted = 0;
    std::uint64_t uploaded_bytes = 0, existing_bytes = 0, mounted_bytes = 0;
};

struct TagOutcome {
    std::string tag;
    std::string status;  // "created" or "unchanged" (or "planned" in a dry run)
};

struct VerifyReport {
    std::string repository;  // registry/repo
    Digest digest;
    std::string media_type;
    int manifests_checked = 0;
    int blobs_checked = 0;
    std::uint64_t bytes_checked = 0;
    std::vector<std::string> tags_checked;
};

struct PushReport {
    std::string repository;  // registry/repo
    Digest digest;
    std::string media_type;
    std::vector<TagOutcome> tags;
    BlobStats blobs;
    int manifests_written = 0;
    bool dry_run = false;
    bool verified = false;
};

struct PushOptions {
    int jobs = 4;
    bool dry_run = false;
};

// Pushes `plan` to `target` (its tag, if any, must already be in plan.tags). Order: tag preflight (an
// existing tag on another digest is refused with Error{tag_conflict} before anything is uploaded), blobs
// in parallel (HEAD, upload missing), child manifests by digest, the root manifest under its first tag
// (so it is never left untagged), the other tags, then verify_image(). `client` must have been pinged.
Result<PushReport> execute_push(const PushPlan& plan, image::ImageSource& source, registry::Client& client,
                                const std::string& repo, const PushOptions& options);

// Checks that `reference` (tag or digest) resolves, optionally to `expected`, and that every child
// manifest and blob it references exists in the repository with the declared size.
// Returns Error{verification} naming the first missing or wrong piece.
Result<VerifyReport> verify_image(registry::Client& client, const std::string& repo, const std::string& reference,
                                  const std::optional<Digest>& expected, int jobs = 4);

nlohmann::json to_json(const PushReport& report);
nlohmann::json to_json(const VerifyReport& report);

} // namespace tagwarden::push
