#include <tagwarden/core/tag_template.hpp>

namespace tagwarden {

bool tag_matches_template(std::string_view tmpl, std::string_view env, std::string_view tag) {
    std::string pattern(tmpl);
    for (auto pos = pattern.find("{env}"); pos != std::string::npos; pos = pattern.find("{env}"))
        pattern.replace(pos, 5, env);
    auto v = pattern.find("{version}");
    if (v == std::string::npos)
        return pattern == tag;
    auto prefix = pattern.substr(0, v);
    auto suffix = pattern.substr(v + 9);
    return tag.size() > prefix.size() + suffix.size() && tag.starts_with(prefix) && tag.ends_with(suffix);
}

} // namespace tagwarden
