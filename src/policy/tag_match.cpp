#include <tagwarden/policy/tag_match.hpp>

#include <algorithm>

namespace tagwarden::policy {

namespace {

// Tags are short (at most 128 characters in OCI, 300 in ECR): plain loops beat the library calls here, which
// dominate when 50 rules scan 20,000 images.
bool same(const char* a, const char* b, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != b[i])
            return false;
    return true;
}

bool begins_with(std::string_view text, std::string_view head) {
    return text.size() >= head.size() && same(text.data(), head.data(), head.size());
}

bool ends_with(std::string_view text, std::string_view tail) {
    return text.size() >= tail.size() &&
           same(text.data() + text.size() - tail.size(), tail.data(), tail.size());
}

std::size_t find_in(std::string_view text, std::string_view segment) {
    if (segment.size() > text.size())
        return std::string_view::npos;
    const std::size_t end = text.size() - segment.size();
    for (std::size_t at = 0; at <= end; ++at)
        if (text[at] == segment[0] && same(text.data() + at, segment.data(), segment.size()))
            return at;
    return std::string_view::npos;
}

} // namespace

Glob::Glob(std::string_view pattern) {
    const auto first = pattern.find('*');
    if (first == std::string_view::npos) {
        m_head = pattern;
        m_min_length = pattern.size();
        return;
    }
    m_wildcard = true;
    const auto last = pattern.rfind('*');
    m_head = pattern.substr(0, first);
    m_tail = pattern.substr(last + 1);
    m_min_length = m_head.size() + m_tail.size();
    std::string_view middle = pattern.substr(first + 1, last > first ? last - first - 1 : 0);
    while (!middle.empty()) {
        const auto star = middle.find('*');
        const std::string_view segment = middle.substr(0, star);
        if (!segment.empty()) {
            m_segments.push_back(segment);
            m_min_length += segment.size();
        }
        if (star == std::string_view::npos)
            break;
        middle.remove_prefix(star + 1);
    }
}

bool Glob::matches(std::string_view tag) const {
    if (!m_wildcard)
        return tag.size() == m_head.size() && same(tag.data(), m_head.data(), tag.size());
    if (tag.size() < m_min_length || !begins_with(tag, m_head) || !ends_with(tag, m_tail))
        return false;
    // Between the anchored head and tail the segments must occur in order; the leftmost occurrence of each
    // never loses a match.
    std::string_view rest = tag.substr(m_head.size(), tag.size() - m_head.size() - m_tail.size());
    for (auto segment : m_segments) {
        const auto at = find_in(rest, segment);
        if (at == std::string_view::npos)
            return false;
        rest.remove_prefix(at + segment.size());
    }
    return true;
}

bool glob_match(std::string_view pattern, std::string_view tag) {
    return Glob(pattern).matches(tag);
}

TagFilter::TagFilter(const Selection& selection) : m_status(selection.tag_status) {
    if (m_status != TagStatus::tagged)
        return;
    if (selection.tag_pattern_list && !selection.tag_pattern_list->empty()) {
        for (const auto& pattern : *selection.tag_pattern_list)
            m_entries.emplace_back(pattern);
    } else if (selection.tag_prefix_list && !selection.tag_prefix_list->empty()) {
        // A prefix is a pattern with one trailing wildcard, except that '*' in it is literal.
        for (const auto& prefix : *selection.tag_prefix_list)
            m_entries.push_back(Glob::prefix(prefix));
    }
    for (const auto& entry : m_entries) {
        if (entry.head().size() > m_index_prefix.size())
            m_index_prefix = entry.head();
        if (entry.tail().size() > m_index_suffix.size())
            m_index_suffix = entry.tail();
    }
}

Glob Glob::prefix(std::string_view prefix) {
    Glob glob;
    glob.m_wildcard = true;
    glob.m_head = prefix;
    glob.m_min_length = prefix.size();
    return glob;
}

template <class Tags> bool TagFilter::match(const Tags& tags) const {
    switch (m_status) {
    case TagStatus::any:
        return true;
    case TagStatus::untagged:
        return tags.empty();
    case TagStatus::tagged:
        break;
    }
    // A tagged rule without a list is invalid (validate_policy() reports it); it selects nothing.
    if (tags.empty() || m_entries.empty())
        return false;
    return std::all_of(m_entries.begin(), m_entries.end(), [&](const Glob& entry) {
        return std::any_of(tags.begin(), tags.end(),
                           [&](std::string_view tag) { return entry.matches(tag); });
    });
}

bool TagFilter::matches(std::span<const std::string_view> tags) const {
    return match(tags);
}

bool TagFilter::matches(const std::vector<std::string>& tags) const {
    return match(tags);
}

bool selection_matches(const Selection& selection, const std::vector<std::string>& tags) {
    return TagFilter(selection).matches(tags);
}

} // namespace tagwarden::policy
