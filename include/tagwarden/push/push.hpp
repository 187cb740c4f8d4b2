#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/core/reference.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/tags.hpp>
#include <tagwarden/registry/client.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
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

struct BlobStats {
    int uploaded = 0, existing = 0, mounted = 0;
    std::uint64_t uploaded_bytes = 0, existing_bytes = 0, mounted_bytes = 0;
};

struct TagOutcome {
    std::string tag;
    std::string status;  // "created", "unchanged", "overwritten" (or "planned" in a dry run)
    std::optional<Digest> previous;  // for "overwritten": what the tag pointed to before
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
    // Tag rules: a tag on another digest is refused unless allow_overwrite is set and the tag is not in
    // a protected environment (per `naming`); then the previous digest is reported.
    TagNaming naming;
    bool allow_overwrite = false;
    // When set, every tag is locked (sorted order) before any manifest is written, tag states are read
    // again under the locks, and each tag write is fenced by a lease check.
    lock::LockSet* locks = nullptr;
    std::chrono::seconds lock_timeout{60};
    // When set, a journal is kept there so `push --resume` can finish or undo a killed run.
    std::string journal_dir;
    std::string run_id;
    // The destination already holds every blob (a promotion within one repository): no blob request.
    bool blobs_present = false;
    // A repository of the same registry to mount missing blobs from (?mount=&from=) before uploading.
    std::string mount_from;
    // The registry's own tag immutability (ECR IMMUTABLE and *_WITH_EXCLUSION modes): such a tag on another
    // digest is a conflict even with allow_overwrite. Null when the registry has no such setting.
    std::function<bool(const std::string& tag)> registry_immutable;
};

// Pushes `plan` to `repo`. Order: tag preflight (a tag on another digest is refused with
// Error{tag_conflict} before anything is uploaded; a failed lookup is an error, never "absent"), blobs
// in parallel (HEAD, upload missing), locks and a second tag check under them, child manifests by digest,
// the root manifest under its first tag (so it is never left untagged), the other tags, then
// verify_image(). The tags are written all or none: when a tag write or the verification fails, the tags
// this run wrote are removed (or restored) again. `client` must have been pinged.
Result<PushReport> execute_push(const PushPlan& plan, image::ImageSource& source, registry::Client& client,
                                const std::string& repo, const PushOptions& options);

// Checks that `reference` (tag or digest) resolves, optionally to `expected`, and that every child
// manifest and blob it references exists in the repository with the declared size.
// Returns Error{verification} naming the first missing or wrong piece.
Result<VerifyReport> verify_image(registry::Client& client, const std::string& repo, const std::string& reference,
                                  const std::optional<Digest>& expected, int jobs = 4);

// What a resume did with one journal.
struct ResumeReport {
    std::string run_id;
    std::string repository;
    Digest digest;
    std::string outcome;  // "finished" or "undone"
    std::vector<TagOutcome> tags;
};

// Finishes the journal's run when every tag it had yet to write is still as the run found it (then
// verifies), and undoes it otherwise. Takes the tags' locks when `locks` is set. Removes the journal
// when done.
Result<ResumeReport> resume_run(Journal journal, registry::Client& client, lock::LockSet* locks,
                                std::chrono::seconds lock_timeout, int jobs);

nlohmann::json to_json(const PushReport& report);
nlohmann::json to_json(const ResumeReport& report);
nlohmann::json to_json(const VerifyReport& report);

} // namespace tagwarden::push
