#pragma once

// What ECR's lifecycle evaluator would do to each image of a repository at a given instant.

#include <tagwarden/policy/image_record.hpp>
#include <tagwarden/policy/lifecycle_policy.hpp>
#include <tagwarden/policy/time.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

enum class ImageAction { keep, expire, transition };

std::string_view to_string(ImageAction action);

struct ImageDecision {
    ImageAction action = ImageAction::keep;
    // The rule whose action applies (GetLifecyclePolicyPreview's appliedRulePriority); none for keep and for
    // a referrer that follows its subject.
    std::optional<std::int64_t> rule_priority;
    // The highest-priority rule whose selection matched the image, even if it kept it: lower rules cannot act
    // on the image ([LP]).
    std::optional<std::int64_t> selected_by;
    // The decision depends on something ECR does not document: images with equal push times straddling an
    // imageCountMoreThan boundary, or untagged images that may belong to an index whose children are unknown.
    bool ambiguous = false;
    // Why, for people.
    std::string note;
};

// Evaluates `policy` over `images` at `now`. Returns one decision per image, in the order of `images`.
// Semantics ([LP] "Lifecycle policy evaluation rules"; spec section 4.2):
// - Rules of each storage class see only images of that class (standard = ACTIVE, archive = ARCHIVED;
// ACTIVATING
//   images are seen by none). All rules select at once over all images; then in rulePriority order (lowest
//   number first) each rule acts on the images it marks unless a higher-priority rule's selection matched
//   them. So an image is acted on by at most one rule, and imageCountMoreThan counts images a higher rule
//   expired
//   ("can still identify them as if they haven't been expired").
// - imageCountMoreThan keeps the countNumber newest matches by effective_pushed_at() and marks the rest;
// equal
//   push times are ordered by digest (ascending digest = newer) and flagged `ambiguous` at the boundary.
// - since* rules mark an image when now - reference > countNumber days (exactly N days old is kept; [EX]
//   "Filtering on all images, Example B" keeps an untagged image pushed 1 day ago under a 1-day rule).
//   sinceImagePushed: effective_pushed_at(); sinceImagePulled: effective_pulled_at(); sinceImageTransitioned:
//   lastArchivedAt (the push time when absent, which can only make it older).
// - An image referenced by an index is not expired while the index stays, nor archived while the index stays
// in
//   standard storage ([LP]: "it cannot be expired or archived without the manifest list being deleted or
//   archived first"). A referrer (subjectManifestDigest) whose subject is expired or archived follows it
//   ([LP]: referrers are expired or archived "within 24 hours of the deletion or archival of the subject
//   image").
// Complexity: O(rules x images x tag checks + images log images).
std::vector<ImageDecision> evaluate(const LifecyclePolicy& policy, const std::vector<ImageRecord>& images,
                                    TimePoint now);

} // namespace tagwarden::policy
