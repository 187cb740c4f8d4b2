#pragma once

#include <tagwarden/core/digest.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::push {

// What a run will do with one tag, decided from what the tag points to now.
enum class TagAction {
    create,     // the tag does not exist
    unchanged,  // it already points at the image: nothing to write
    overwrite,  // it points elsewhere and may move (--allow-overwrite, not protected, not registry-immutable)
};

// What happened to a tag, as reports show it.
enum class TagStatus {
    created,
    unchanged,
    overwritten,
    planned,   // a dry run would write it
    removed,   // undone: this run's tag deleted again
    restored,  // undone: an overwritten tag points where it pointed before
    left,      // undo did not touch it (see UndoReport::left for why)
};

std::string_view to_string(TagStatus status);

struct TagOutcome {
    std::string tag;
    TagStatus status = TagStatus::created;
    std::optional<Digest> previous;  // for overwritten: what the tag pointed to before
};

struct BlobStats {
    int uploaded = 0, existing = 0, mounted = 0;
    std::uint64_t uploaded_bytes = 0, existing_bytes = 0, mounted_bytes = 0;
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

// Wall time of each phase of one guarded write, measured where the phase runs (guarded_write(),
// execute_push()). The phases never overlap, so their sum is at most the run's duration: the work beside
// the upload (locks, reads under them) counts only for the time it outlasted the upload.
struct PhaseTimings {
    using Duration = std::chrono::steady_clock::duration;
    // The facts and guards before any upload, the tag preflight, the tags and images read under the locks
    // beside the upload (as far as they outlasted it), and a read of the images again after it.
    Duration guards{};
    Duration lock_wait{};  // acquiring the tag locks, as far as it outlasted the upload
    Duration upload{};     // blobs: existence checks, mounts, uploads
    Duration manifests{};  // the journal, child manifests, the root manifest and its tags
    Duration verify{};     // verify_image() and resolving every written reference after the writes
};

// Adds the time from construction to destruction to `into`.
class PhaseTimer {
public:
    explicit PhaseTimer(PhaseTimings::Duration& into) : m_into(into), m_start(std::chrono::steady_clock::now()) {}
    ~PhaseTimer() { m_into += std::chrono::steady_clock::now() - m_start; }
    PhaseTimer(const PhaseTimer&) = delete;
    PhaseTimer& operator=(const PhaseTimer&) = delete;

private:
    PhaseTimings::Duration& m_into;
    std::chrono::steady_clock::time_point m_start;
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
    // False where the registry refuses DELETE: a failure after the first tag would have left the tags
    // written so far (on the complete, verified image) instead of taking them back.
    bool all_or_none = true;
    PhaseTimings timings;
};

// What an undo did, and what it deliberately or necessarily left, each with the reason.
struct UndoReport {
    struct Item {
        std::string what;    // "tag REG/REPO:T", "manifest REG/REPO@sha256:…"
        std::string reason;  // why it was left
    };
    std::vector<TagOutcome> tags;  // removed / restored / left
    std::vector<std::string> done; // human lines: "removed tag …", "restored …", "removed manifest …"
    std::vector<Item> left;
    // Some of this run's own writes remain (a tag the registry would not delete, a failed request, a lost
    // lock): the journal is kept so `push --resume` can finish or undo the run later. Things left on purpose
    // because they are someone else's (a tag moved by another writer, shared child manifests) do not count.
    bool incomplete = false;
    bool lock_lost = false;  // the lock was lost: nothing more was undone (exit 5)
    // "; rolled back: …" / "; left: …" for an error message.
    [[nodiscard]] std::string summary() const;
};

enum class ResumeOutcome { finished, undone, skipped, would_finish, would_undo };
std::string_view to_string(ResumeOutcome outcome);

// What a resume did with one journal.
struct ResumeReport {
    std::string run_id;
    std::string repository;
    Digest digest;
    ResumeOutcome outcome = ResumeOutcome::skipped;
    std::string reason;  // why it was skipped or undone
    std::vector<TagOutcome> tags;
    std::vector<UndoReport::Item> left;
};

// The report's "timings": {"guards", "lockWait", "upload", "manifests", "verify"} in seconds with
// millisecond resolution (rounded down, so they never add up to more than the run's durationSeconds).
nlohmann::json to_json(const PhaseTimings& timings);
nlohmann::json to_json(const PushReport& report);
nlohmann::json to_json(const ResumeReport& report);
nlohmann::json to_json(const VerifyReport& report);

} // namespace tagwarden::push
