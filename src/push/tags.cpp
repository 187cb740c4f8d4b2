#include <tagwarden/core/reference.hpp>
#include <tagwarden/push/tags.hpp>

#include <algorithm>

namespace tagwarden::push {

namespace {

// Whether `tag` equals the template with {env} = env and {version} = some non-empty string.
bool matches(const std::string& tmpl, const std::string& env, const std::string& tag) {
    std::string pattern = tmpl;
    for (auto pos = pattern.find("{env}"); pos != std::string::npos; pos = pattern.find("{env}"))
        pattern.replace(pos, 5, env);
    auto v = pattern.find("{version}");
    if (v == std::string::npos)
        return pattern == tag;
    auto prefix = pattern.substr(0, v);
    auto suffix = pattern.substr(v + 9);
    return tag.size() > prefix.size() + suffix.size() && tag.starts_with(prefix) && tag.ends_with(suffix);
}

} // namespace

Result<std::string> expand_tag(const TagNaming& naming, const std::string& version, const std::string& env) {
    if (version.empty())
        return fail(ErrorKind::invalid_input, "--version is empty");
    if (env.empty())
        return fail(ErrorKind::invalid_input, "--env is empty");
    if (!naming.environments.empty() &&
        std::find(naming.environments.begin(), naming.environments.end(), env) == naming.environments.end()) {
        std::string known;
        for (const auto& e : naming.environments)
            known += (known.empty() ? "" : ", ") + e;
        return fail(ErrorKind::invalid_input,
                    "unknown environment '" + env + "': tagwarden.yaml lists " + known);
    }
    std::string tag = naming.tag_template;
    for (auto pos = tag.find("{version}"); pos != std::string::npos; pos = tag.find("{version}"))
        tag.replace(pos, 9, version);
    for (auto pos = tag.find("{env}"); pos != std::string::npos; pos = tag.find("{env}"))
        tag.replace(pos, 5, env);
    if (!is_valid_tag(tag))
        return fail(ErrorKind::invalid_input, "version '" + version + "' and environment '" + env + "' make tag '" +
                                                  tag + "', " + validate_tag(tag).error().message.substr(
                                                                    validate_tag(tag).error().message.find(':') + 2));
    return tag;
}

std::optional<std::string> environment_of(const TagNaming& naming, const std::string& tag) {
    // Longest environment names first, so "prod" does not claim a tag of "preprod" by accident.
    std::vector<std::string> envs = naming.protected_environments;
    envs.insert(envs.end(), naming.environments.begin(), naming.environments.end());
    std::sort(envs.begin(), envs.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& env : envs)
        if (matches(naming.tag_template, env, tag))
            return env;
    return std::nullopt;
}

bool is_protected_tag(const TagNaming& naming, const std::string& tag) {
    auto env = environment_of(naming, tag);
    return env && std::find(naming.protected_environments.begin(), naming.protected_environments.end(), *env) !=
                      naming.protected_environments.end();
}

} // namespace tagwarden::push
