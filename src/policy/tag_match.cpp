#include <tagwarden/policy/tag_match.hpp>

#include <algorithm>

namespace tagwarden::policy {

bool glob_match(std::string_view pattern, std::string_view tag) {
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (t < tag.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = t;
        } else if (p < pattern.size() && pattern[p] == tag[t]) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

bool selection_matches(const Selection& selection, const std::vector<std::string>& tags) {
    switch (selection.tag_status) {
    case TagStatus::any: return true;
    case TagStatus::untagged: return tags.empty();
    case TagStatus::tagged: break;
    }
    if (tags.empty())
        return false;
    if (selection.tag_pattern_list && !selection.tag_pattern_list->empty()) {
        return std::all_of(selection.tag_pattern_list->begin(), selection.tag_pattern_list->end(),
                           [&](const std::string& pattern) {
                               return std::any_of(tags.begin(), tags.end(),
                                                  [&](const std::string& tag) { return glob_match(pattern, tag); });
                           });
    }
    if (selection.tag_prefix_list && !selection.tag_prefix_list->empty()) {
        return std::all_of(selection.tag_prefix_list->begin(), selection.tag_prefix_list->end(),
                           [&](const std::string& prefix) {
                               return std::any_of(tags.begin(), tags.end(), [&](const std::string& tag) {
                                   return tag.starts_with(prefix);
                               });
                           });
    }
    // A tagged rule without a list is invalid (validate_policy() reports it); it selects nothing.
    return false;
}

} // namespace tagwarden::policy
