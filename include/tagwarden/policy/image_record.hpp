#pragma once

// What the lifecycle evaluator knows of one image (one manifest digest) in a repository.

#include <tagwarden/core/error.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>
#include <tagwarden/policy/time.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

// DescribeImages imageStatus: ACTIVE (standard storage), ARCHIVED, ACTIVATING (being restored from archive).
enum class ImageStatus { active, archived, activating };

struct ImageRecord {
    std::string digest;                         // "sha256:..."
    std::vector<std::string> tags;              // empty: untagged
    TimePoint pushed_at{};                      // imagePushedAt
    std::optional<TimePoint> last_pulled_at;    // lastRecordedPullTime; absent if never pulled
    ImageStatus status = ImageStatus::active;   // imageStatus
    std::optional<TimePoint> transitioned_at;   // lastArchivedAt
    std::optional<TimePoint> last_activated_at; // lastActivatedAt: last restore from archive
    std::string media_type;                     // imageManifestMediaType
    std::string artifact_media_type;            // artifactMediaType
    std::optional<std::string> subject_digest;  // subjectManifestDigest: set on referrers (signatures, SBOMs)
    // Manifests this image (an index / manifest list) references. DescribeImages does not report them;
    // callers that read the index fill them in (JSON extension field "childDigests").
    std::vector<std::string> child_digests;
    // Indexes known to reference this image (JSON extension field "parentIndexDigests"); either side
    // suffices.
    std::vector<std::string> parent_index_digests;

    [[nodiscard]] bool tagged() const { return !tags.empty(); }
    [[nodiscard]] bool is_index() const;
    // Storage class the lifecycle rules see: archive for ARCHIVED, standard for ACTIVE, none while
    // ACTIVATING.
    [[nodiscard]] std::optional<StorageClass> storage_class() const;
    // The time images are ordered by and aged from: lastActivatedAt when the image was restored from archive
    // ([LP]: "the image's last_activated_at is used instead of pushed_at_time"), else imagePushedAt.
    [[nodiscard]] TimePoint effective_pushed_at() const;
    // sinceImagePulled's reference: the last pull, or the push/restore time when not pulled since then.
    [[nodiscard]] TimePoint effective_pulled_at() const;
};

// Parses the output of `aws ecr describe-images` ({"imageDetails": [...]}; a bare array of image details is
// also accepted). Timestamps may be epoch seconds (numbers, possibly fractional, as on the wire) or ISO 8601
// strings (as the AWS CLI prints them). Fails with Error{invalid_input} naming the entry and field, on a
// missing or malformed digest or push time, or a digest listed twice.
Result<std::vector<ImageRecord>> parse_describe_images(std::string_view json);

} // namespace tagwarden::policy
