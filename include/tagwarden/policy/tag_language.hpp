#pragma once

// Sets of possible image tags, for reasoning about what a rule CAN select (lint), not what it does select.
// A shape is a sequence of tokens, each one character from a set, or any run (zero or more) of characters
// from a set. Only valid OCI tags count: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.

#include <bitset>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tagwarden::policy {

class TagShape {
  public:
    using CharSet = std::bitset<128>;

    // A tagPatternList entry: '*' is any run, everything else literal.
    static TagShape from_pattern(std::string_view pattern);
    // A tagPrefixList entry: the prefix literally, then any run.
    static TagShape from_prefix(std::string_view prefix);
    // The tags a tag template produces for one environment: "{env}" becomes `env`, "{version}" a version (a
    // digit, 'v' or 'V', then any run; with `loose`, any run), any other "{name}" any run, everything else
    // literal.
    // "{version}-{env}" + "prod" = "[0-9vV]*-prod" (loose: "*-prod").
    static TagShape from_template(std::string_view tag_template, std::string_view env, bool loose = false);

    // Readable form: "prod*", "?*-prod".
    [[nodiscard]] const std::string& text() const { return m_text; }

    struct Token {
        CharSet chars;
        bool repeat = false; // zero or more
    };
    [[nodiscard]] const std::vector<Token>& tokens() const { return m_tokens; }

  private:
    void literal(char c);
    void any_run();
    void one_of(std::string_view chars, std::string_view text);

    std::vector<Token> m_tokens;
    std::string m_text;
};

// A valid tag matched by every shape (the shortest; nullopt when there is none).
std::optional<std::string> common_tag(std::span<const TagShape> shapes);
// A valid tag matched by `inner` and by none of `outer` (the shortest; nullopt when inner is a subset of
// their union).
std::optional<std::string> tag_outside(const TagShape& inner, std::span<const TagShape> outer);

inline bool shapes_intersect(const TagShape& a, const TagShape& b) {
    const TagShape both[] = {a, b};
    return common_tag(both).has_value();
}
// Whether every valid tag matched by `inner` is matched by `outer`.
inline bool shape_covers(const TagShape& outer, const TagShape& inner) {
    const TagShape outers[] = {outer};
    return !tag_outside(inner, outers).has_value();
}

} // namespace tagwarden::policy
