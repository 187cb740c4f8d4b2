#include <tagwarden/policy/tag_match.hpp>

#include <algorithm>

namespace tagwarden::policy {

bool glob_match(std::string_view pattern, std::string_view tag) {
    const auto first = pattern.find('*');
    if (first == std::string_view::npos)
        return pattern == tag;
    const auto last = pattern.rfind('*');
    const std::string_view head = pattern.substr(0, first);
    const std::string_view tail = pattern.substr(last + 1);
    if (tag.size() < head.size() + tail.size() || !tag.starts_with(head) || !tag.ends_with(tail))
        return false;
    // Between the anchored head and tail, the segments separated by '*' must occur in order; taking the leftmost
    // occurrence of each never loses a match.
    std::string_view rest = tag.substr(head.size(), tag.size() - head.size() - tail.size());
    std::string_view middle = pattern.substr(first + 1, last > first ? last - first - 1 : 0);
    while (!middle.empty()) {
        const auto star = middle.find('*');
        const std::string_view segment = middle.substr(0, star);
        if (!segment.empty()) {
            const auto at = rest.find(segment);
            if (at == std::string_view::npos)
                return false;
            rest.remove_prefix(at + segment.size());
        }
        if (star == std::string_view::npos)
            break;
        middle.remove_prefix(star + 1);
    }
    return true;
}

namespace {

template <class Tags>
bool matches(const Selection& selection, const Tags& tags) {
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
                                                  [&](std::string_view tag) { return glob_match(pattern, tag); });
                           });
    }
    if (selection.tag_prefix_list && !selection.tag_prefix_list->empty()) {
        return std::all_of(selection.tag_prefix_list->begin(), selection.tag_prefix_list->end(),
                           [&](const std::string& prefix) {
                               return std::any_of(tags.begin(), tags.end(),
                                                  [&](std::string_view tag) { return tag.starts_with(prefix); });
                           });
    }
    // A tagged rule without a list is invalid (validate_policy() reports it); it selects nothing.
    return false;
}

} // namespace

bool selection_matches(const Selection& selection, const std::vector<std::string>& tags) {
    return matches(selection, tags);
}

bool selection_matches_views(const Selection& selection, std::span<const std::string_view> tags) {
    return matches(selection, tags);
}

} // namespace tagwarden::policy
