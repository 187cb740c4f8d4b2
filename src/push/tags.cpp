#include <tagwarden/core/reference.hpp>
#include <tagwarden/core/tag_template.hpp>
#include <tagwarden/push/tags.hpp>

#include <algorithm>

namespace tagwarden::push {


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
        if (tag_matches_template(naming.tag_template, env, tag))
            return env;
    return std::nullopt;
}

bool is_protected_tag(const TagNaming& naming, const std::string& tag) {
    auto env = environment_of(naming, tag);
    return env && std::find(naming.protected_environments.begin(), naming.protected_environments.end(), *env) !=
                      naming.protected_environments.end();
}

} // namespace tagwarden::push
