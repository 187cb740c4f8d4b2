#pragma once

// How a rule's selection picks images by their tags ([LP] "Lifecycle policy evaluation rules").

#include <tagwarden/policy/lifecycle_policy.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

// Whole-tag wildcard match: '*' matches any run of characters (also none), every other character matches
// itself, case-sensitively. "prod*" = begins with "prod", "*prod*" = contains "prod" ([LP]).
bool glob_match(std::string_view pattern, std::string_view tag);

// A pattern split once into its anchored head and tail and the segments between them. Refers to the pattern's
// characters, which must outlive it.
class Glob {
  public:
    explicit Glob(std::string_view pattern);
    // A tagPrefixList entry: `prefix` then anything ('*' in it is literal).
    static Glob prefix(std::string_view prefix);

    [[nodiscard]] bool matches(std::string_view tag) const;
    // Text every matching tag begins / ends with.
    [[nodiscard]] std::string_view head() const { return m_head; }
    [[nodiscard]] std::string_view tail() const { return m_tail; }

  private:
    Glob() = default;
    bool m_wildcard = false;
    std::string_view m_head;
    std::string_view m_tail;
    std::vector<std::string_view> m_segments;
    std::size_t m_min_length = 0;
};

// A rule's tag selection (tagStatus and tag lists; not storage class or age), compiled. Refers to the
// selection's strings, which must outlive it.
// - any: every image; untagged: images with no tag; tagged: images with at least one tag that satisfy the
// list.
// - A list with several entries is ANDed and each entry is matched against ANY of the image's tags ([LP]: "An
//   image is successfully matched if all of the tags in the tagPatternList or tagPrefixList value are matched
//   against any of the image's tags"; [EX] "Filtering on multiple tags in a single rule"). Two entries may be
//   satisfied by two different tags, or by the same tag.
// - One matching tag is enough: an image tagged dev-1 and prod-1 is selected by a "dev-" rule.
class TagFilter {
  public:
    explicit TagFilter(const Selection& selection);

    [[nodiscard]] bool matches(std::span<const std::string_view> tags) const;
    [[nodiscard]] bool matches(const std::vector<std::string>& tags) const;
    // Only an image with a tag beginning with index_prefix() (ending with index_suffix()) can be selected:
    // the longest such text over the entries; empty when there is none. Lets a caller look candidates up in
    // an index.
    [[nodiscard]] std::string_view index_prefix() const { return m_index_prefix; }
    [[nodiscard]] std::string_view index_suffix() const { return m_index_suffix; }

  private:
    template <class Tags> bool match(const Tags& tags) const;

    TagStatus m_status;
    std::vector<Glob> m_entries;
    std::string_view m_index_prefix;
    std::string_view m_index_suffix;
};

// TagFilter(selection).matches(tags).
bool selection_matches(const Selection& selection, const std::vector<std::string>& tags);

} // namespace tagwarden::policy
