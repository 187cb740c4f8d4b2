#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/image/image_source.hpp>
#include <tagwarden/lock/lock.hpp>
#include <tagwarden/push/journal.hpp>
#include <tagwarden/push/plan.hpp>
#include <tagwarden/push/report.hpp>
#include <tagwarden/push/tags.hpp>
#include <tagwarden/push/undo.hpp>
#include <tagwarden/registry/client.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace tagwarden::push {

struct PushOptions {
    int jobs = 4;
    bool dry_run = false;
    // Tag rules: a tag on another digest is refused unless allow_overwrite is set and the tag is not in
    // a protected environment (per `naming`); then the previous digest is reported.
    TagNaming naming;
    bool allow_overwrite = false;
    // When set, every tag is locked (sorted order) before any manifest is written, tag states are read
    // again under the locks, and every manifest write (each send, retries included) is fenced.
    lock::LockSet* locks = nullptr;
    std::chrono::seconds lock_timeout{60};
    // Where the run's journal is kept so `push --resume` can finish or undo a killed run (null: none).
    lock::JournalStore* journals = nullptr;
    std::string run_id;
    // Bound of one manifest or tag write; the lease must have more time left than this before each send.
    std::chrono::milliseconds write_timeout{15000};
    // The destination already holds every blob (a promotion within one repository): no blob request.
    bool blobs_present = false;
    // A repository of the same registry to mount missing blobs from (?mount=&from=) before uploading.
    std::string mount_from;
    // The registry's own tag immutability (ECR IMMUTABLE and *_WITH_EXCLUSION modes): such a tag on another
    // digest is a conflict even with allow_overwrite. Null when the registry has no such setting.
    std::function<bool(const std::string& tag)> registry_immutable;
    // Runs while the blobs upload, on its own thread: under the tag locks when `locks` is set (taken as the
    // upload starts; lock_timeout runs only once the upload has ended), after the tags were read again,
    // and before the first manifest write. The guarded write reads the images here and judges the guards
    // that need them. An error stops the upload (blobs that finished stay, referenced by nothing) and the
    // run, with no manifest written.
    std::function<Status()> beside_upload;
    // Runs once the upload and beside_upload both ended, under the locks, right before the first manifest
    // write (not in a dry run): the guarded write reads the images again here when its read beside the
    // upload has grown old. An error stops the run with no manifest written.
    std::function<Status()> after_upload;
};

// Pushes `plan` to `repo`. Order: tag preflight (a tag on another digest is refused with
// Error{tag_conflict} before anything is uploaded; a failed lookup is an error, never "absent"), blobs
// in parallel (HEAD, upload missing) and beside them the locks, a second tag check under them and
// options.beside_upload; options.after_upload; then the journal, child manifests by digest, the root manifest under its first tag (so it is never left
// untagged), the other tags — each tag read again right before its write (a tag moved meanwhile by a
// writer that does not use the locks is a conflict) — then verify_image(). The tags are written all or
// none: on a failure, a lost lock or a cancellation, undo_writes() takes back what this run wrote.
// `client` must have been pinged.
Result<PushReport> execute_push(const PushPlan& plan, image::ImageSource& source, registry::Client& client,
                                const std::string& repo, const PushOptions& options);

// Checks that `reference` (tag or digest) resolves, optionally to `expected`, and that every child
// manifest and blob it references exists in the repository with the declared size.
// Returns Error{verification} naming the first missing or wrong piece.
Result<VerifyReport> verify_image(registry::Client& client, const std::string& repo, const std::string& reference,
                                  const std::optional<Digest>& expected, int jobs = 4);

// Writes a manifest (fenced) and checks the registry computed the same digest from the same bytes.
Status put_manifest_checked(registry::Client& client, const std::string& repo, const std::string& reference,
                            const image::Manifest& manifest, const registry::WriteFence& fence);

// What `tag` points at now (nullopt: absent). A failed lookup is an error, never "absent".
Result<std::optional<Digest>> tag_digest(registry::Client& client, const std::string& repo, const std::string& tag);

// Writes `manifest` under `tag` as a journaled write: the journal says "written" before the PUT is sent (it
// may land even if the run dies), and takes it back when the registry refused it (4xx) or the fence stopped
// it unsent.
Status journaled_tag_write(registry::Client& client, const std::string& repo, Journal& journal, JournalKeeper& keeper,
                           const std::string& tag, const image::Manifest& manifest, const registry::WriteFence& fence);

// The fence of one write: the locks (when held) must still be ours with more than `timeout` left.
registry::WriteFence write_fence(lock::LockSet* locks, std::chrono::milliseconds timeout);

} // namespace tagwarden::push
