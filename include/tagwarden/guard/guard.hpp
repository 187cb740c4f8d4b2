#pragma once

#include <tagwarden/core/error.hpp>
#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>
#include <tagwarden/policy/time.hpp>

#include <nlohmann/json_fwd.hpp>

#include <chrono>
#include <map>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tagwarden::guard {

// What the guards know of the destination repository, read before anything is uploaded.
struct RepositoryFacts {
    std::string repository;                  // "registry/repo", for messages
    bool is_ecr = false;
    std::optional<std::string> policy_text;  // the lifecycle policy JSON; nullopt when there is none
    std::string policy_source;               // "ECR GetLifecyclePolicy", "tagwarden.yaml", ...
    // ECR: the repository does not exist yet, and this CREATE_ON_PUSH repository creation template (its
    // prefix) will create it on push: the policy and tag mutability are the template's, the image count 0.
    std::optional<std::string> creation_template;
    std::optional<std::int64_t> quota;       // images per repository; nullopt when unknown
    std::string quota_source;                // "Service Quotas (applied)", "--quota", ...
    std::int64_t image_count = 0;            // every image, tagged or not, index children included
    std::string count_source;                // "DescribeImages", "tag list"
    // Every image with its tags and push time (ECR); empty when the registry cannot say (then the
    // survival simulation is skipped, and says so).
    std::vector<policy::ImageRecord> images;
    bool images_known = false;
    // The images (and the count) are still to be read: gather_facts(ImageRead::later) left them for
    // read_images(), which the guarded write runs beside the upload, under the tag locks.
    bool images_pending = false;
    // DescribeImages refused the imageStatus filter (older endpoints, emulators): the re-read under the
    // locks lists without it at once instead of sending the refused request again.
    bool image_status_refused = false;
};

// What the push or promotion is about to do.
struct Intent {
    std::string digest;                     // the image pushed or promoted
    std::vector<std::string> tags;          // the tags it will carry afterwards (old and new)
    std::vector<std::string> child_digests; // for an index: its children
    std::int64_t images_added = 0;          // manifests the repository does not hold yet
};

struct GuardSettings {
    bool allow_no_policy = false;
    double quota_threshold = 0.9;            // refuse at or above this share of the quota
    std::optional<std::int64_t> quota;       // --quota / quota: overrides what the registry says
    std::vector<std::string> protected_environments = {"prod"};
    std::string tag_template = "{version}-{env}";
    int keep_releases = 10;                  // the last K images of each protected environment
    std::chrono::hours protection_window{24 * 30};
    std::vector<std::string> protected_digests;  // --protect FILE (e.g. what ECS runs)
    // Judge every guard before the first byte is uploaded (--guards-first), reading the images twice (before
    // the upload, and again under the tag locks), instead of judging the checks that need the images on the
    // one read beside the upload, under the locks.
    bool guards_first = false;
};

struct Finding {
    std::string check;    // "lifecycle-policy", "quota", "survival"
    std::string status;   // "passed", "refused", "overridden", "skipped"
    std::string message;
};

struct GuardReport {
    std::vector<Finding> findings;
    [[nodiscard]] bool refused() const;
    // Error{guard_refused} listing every refusal; only meaningful when refused().
    [[nodiscard]] Error error() const;
};

// The guards, pure: lifecycle policy present, image count under the quota threshold, and — where the
// images are known — a simulation of the policy over the repository as it will be after the push, now and
// at the end of the protection window, that must keep the pushed image, the last K images of every
// protected environment, and every protected digest.
// The lifecycle-policy check alone: what can be judged before the images are read.
GuardReport evaluate_policy_guard(const RepositoryFacts& facts, const GuardSettings& settings);

GuardReport evaluate_guards(const RepositoryFacts& facts, const Intent& intent, const GuardSettings& settings,
                            policy::TimePoint now);

nlohmann::json to_json(const GuardReport& report);

// The survival simulation, shared by the survival guard and `tagwarden audit`.
// The images that must outlive the lifecycle policy, digest -> why: the last `keep_releases` images (by push
// time) carrying a tag of each protected environment, and every protected digest.
std::map<std::string, std::string> images_to_keep(const std::vector<policy::ImageRecord>& images,
                                                  const GuardSettings& settings);
// What `policy` expires or archives among `must_keep`, simulated over `images` now and, when nothing fails
// now, at the end of the protection window: one sentence per image and instant, naming the rule, the image
// and why it must be kept.
std::vector<std::string> survival_problems(const policy::LifecyclePolicy& policy,
                                           const std::vector<policy::ImageRecord>& images,
                                           const std::map<std::string, std::string>& must_keep,
                                           const GuardSettings& settings, policy::TimePoint now);

} // namespace tagwarden::guard
