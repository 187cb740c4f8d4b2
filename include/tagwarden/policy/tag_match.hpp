#pragma once

// How a rule's selection picks images by their tags ([LP] "Lifecycle policy evaluation rules").

#include <tagwarden/policy/lifecycle_policy.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

// Whole-tag wildcard match: '*' matches any run of characters (also none), every other character matches itself,
// case-sensitively. "prod*" = begins with "prod", "*prod*" = contains "prod" ([LP]).
bool glob_match(std::string_view pattern, std::string_view tag);

// Whether a rule's selection (tagStatus and tag lists; not storage class or age) selects an image with these tags.
// - any: every image; untagged: images with no tag; tagged: images with at least one tag that satisfy the list.
// - A list with several entries is ANDed and each entry is matched against ANY of the image's tags ([LP]: "An
//   image is successfully matched if all of the tags in the tagPatternList or tagPrefixList value are matched
//   against any of the image's tags"; [EX] "Filtering on multiple tags in a single rule"). Two entries may be
//   satisfied by two different tags, or by the same tag.
// - One matching tag is enough: an image tagged dev-1 and prod-1 is selected by a "dev-" rule.
bool selection_matches(const Selection& selection, const std::vector<std::string>& tags);
// The same over views of the tags (the evaluator keeps them contiguous).
bool selection_matches_views(const Selection& selection, std::span<const std::string_view> tags);

} // namespace tagwarden::policy
